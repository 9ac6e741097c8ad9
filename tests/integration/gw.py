"""Helpers for the iotgw integration tests.

Everything here drives real processes over real sockets: the iotgw binary
($IOTGW_BIN), the mosquitto broker as the upstream (mutual TLS), paho-mqtt and
raw sockets as devices, Python's ssl module for TLS. Nothing is mocked.

Rules kept throughout:
  * every wait is bounded (WAIT seconds unless said otherwise);
  * every process started here is recorded by PID and stopped by PID;
  * files live in per-test (or per-module) temporary directories.
"""

import base64
import datetime
import itertools
import json
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import paho.mqtt.client as paho

ROOT = Path(__file__).resolve().parents[2]
IOTGW_BIN = os.environ.get("IOTGW_BIN", str(ROOT / "build" / "iotgw"))
PKI_TOOL = os.environ.get("IOTGW_PKI", str(ROOT / "tools" / "iotgw-pki"))
MOSQUITTO = os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto")
MOSQUITTO_PUB = "/usr/bin/mosquitto_pub"

# Upper bound of every "wait until X happens" (only reached when a test fails).
WAIT = float(os.environ.get("IOTGW_TEST_WAIT", "10"))
# Gateway start-up (READY=1) bound; ASan builds start more slowly.
START_WAIT = float(os.environ.get("IOTGW_TEST_START_WAIT", "20"))
# SIGTERM -> exit bound (the contract: graceful stop, exit 0, within 10 s).
STOP_WAIT = 10.0

LEVELS = ("crit", "err", "warning", "notice", "info", "debug")
# Off the journal every line starts with its UTC time; "<N>" (sd-daemon) into a journal stream.
LOG_LINE_RE = re.compile(r"^(?:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z |<\d>)?"
                         r"iotgw\[(\d+)\]: (crit|err|warning|notice|info|debug) event=([a-z0-9_]+)")
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

# Processes started by the helpers, by PID, so that a crashed test run still
# stops them (conftest calls reap_all() at session end).
_PROCS = {}
_PROCS_LOCK = threading.Lock()

# Objects whose logs are worth showing when a test fails (conftest dumps them).
LOG_SOURCES = []


def _track(proc, what):
    with _PROCS_LOCK:
        _PROCS[proc.pid] = (proc, what)


def _untrack(proc):
    with _PROCS_LOCK:
        _PROCS.pop(proc.pid, None)


def reap_all():
    """Kill (by PID) every process the helpers started and that is still running."""
    with _PROCS_LOCK:
        procs = list(_PROCS.values())
        _PROCS.clear()
    for proc, _ in procs:
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass


def tail(text, n=150):
    lines = text.splitlines()
    if len(lines) > n:
        lines = ["... (%d lines omitted)" % (len(lines) - n)] + lines[-n:]
    return "\n".join(lines)


def wait_until(pred, timeout=WAIT, interval=0.02, what="condition"):
    """Polls pred() until it returns something truthy; returns it. AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A port that was free a moment ago (bind port 0, read it, close)."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def ipv6_loopback_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def wait_port(host, port, timeout=WAIT, proc=None):
    """Until a TCP connect to host:port succeeds (or proc died)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise AssertionError("process exited with %s before %s:%d accepted connections"
                                 % (proc.returncode, host, port))
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(1)
                s.connect((host, port))
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise AssertionError("%s:%d did not accept connections within %.1fs" % (host, port, timeout))
        time.sleep(0.02)


def parse_ts(ts):
    assert TS_RE.match(ts), "ts %r is not RFC 3339 UTC with milliseconds" % ts
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def safe_name(s, n=40):
    return re.sub(r"[^A-Za-z0-9._-]+", "-", s).strip("-")[:n] or "x"


_uniq = itertools.count(1)


def unique(prefix):
    return "%s%d" % (prefix, next(_uniq))


# ---------------------------------------------------------------------------------------
# PKI (tools/iotgw-pki)

class Pki:
    """Certificates for one test session, made with tools/iotgw-pki."""

    DEVICES = ("dev0001", "dev0002", "dev0003", "dev0004")

    def __init__(self, directory):
        self.dir = Path(directory)

    def run(self, *args):
        r = subprocess.run([PKI_TOOL, "-d", str(self.dir), *args], capture_output=True,
                           text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("iotgw-pki %s failed (%d):\n%s%s"
                               % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def build(self):
        with ThreadPoolExecutor(3) as ex:
            for f in [ex.submit(self.run, "ca", ca)
                      for ca in ("devices-ca", "upstream-ca", "other-ca")]:
                f.result()
        leaves = [
            ("server", "gateway", "--ca", "devices-ca"),
            # A second server certificate for the certificate-reload test.
            ("server", "gateway-b", "--ca", "devices-ca"),
            # An RSA server certificate: older device stacks only verify RSA chains.
            ("server", "gateway-rsa", "--ca", "devices-ca", "--rsa"),
            ("server", "broker", "--ca", "upstream-ca"),
            ("client", "gateway-upstream", "--ca", "upstream-ca"),
            ("client", "observer", "--ca", "upstream-ca"),
            ("client", "intruder", "--ca", "other-ca"),
            ("client", "expired", "--ca", "devices-ca", "--cn", "dev0666", "--expired"),
            # identity = san-dns: the device id comes from the DNS SAN, not the CN.
            ("client", "sandev", "--ca", "devices-ca", "--cn", "sandev-cn",
             "--san", "DNS:dev0077"),
        ] + [("client", d, "--ca", "devices-ca") for d in self.DEVICES]
        with ThreadPoolExecutor(4) as ex:
            for f in [ex.submit(self.run, *leaf) for leaf in leaves]:
                f.result()
        return self

    def pem(self, name):
        return str(self.dir / (name + ".pem"))

    def key(self, name):
        return str(self.dir / (name + ".key"))

    def der(self, name):
        return (self.dir / (name + ".der")).read_bytes()

    def client_ctx(self, cert=None, ca="devices-ca", check_hostname=True, max_version=None,
                   min_version=None, ciphers=None, curve=None):
        """A TLS client context like a sensor node's: trusts `ca`, presents `cert` if given."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.pem(ca))
        ctx.check_hostname = check_hostname
        if not check_hostname:
            ctx.verify_mode = ssl.CERT_REQUIRED
        if cert:
            ctx.load_cert_chain(self.pem(cert), self.key(cert))
        if max_version:
            ctx.maximum_version = max_version
        if min_version:
            ctx.minimum_version = min_version
        if ciphers:
            ctx.set_ciphers(ciphers)
        if curve:
            ctx.set_ecdh_curve(curve)
        return ctx


# ---------------------------------------------------------------------------------------
# Upstream: a real mosquitto over mutual TLS, plus an observer subscribed to everything.

class Message:
    __slots__ = ("topic", "payload", "retain", "qos", "t", "_json")

    def __init__(self, topic, payload, retain, qos):
        self.topic = topic
        self.payload = payload
        self.retain = retain
        self.qos = qos
        self.t = time.monotonic()
        try:
            self._json = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            self._json = None

    @property
    def json(self):
        return self._json

    def get(self, key, default=None):
        return self._json.get(key, default) if isinstance(self._json, dict) else default

    def __repr__(self):
        return "<%s %s>" % (self.topic, self.payload[:300].decode("utf-8", "replace"))


class SupervisedClient(paho.Client):
    """A paho.Client whose loop_start() thread survives every exception.

    paho 1.6's network loop turns only some socket errors into a lost connection. Others
    leave loop_forever() and end loop_start()'s thread for good, silently and without
    on_disconnect: an ssl.SSLEOFError while writing (a broker stopped in the middle of a
    write), an SSL alert while reading, an exception in a callback. An observer then stops
    counting, and a device never reports the loss. Here every such exception is recorded in
    loop_errors and handled as a lost connection: on_lost(reason) is called, and with
    keep_reconnecting the client connects again (every 50 ms .. 0.5 s) and loops on; without
    it the thread ends, as a device's must (a dropped device connection is for the test to
    see). Stop it with close(), not loop_stop() alone."""

    def __init__(self, *a, keep_reconnecting=True, on_lost=None, **kw):
        super().__init__(*a, **kw)
        self.keep_reconnecting = keep_reconnecting
        self.on_lost = on_lost
        self.loop_errors = []  # (monotonic time, repr) of every exception the loop raised
        self._closing = threading.Event()

    def _stopping(self):
        # loop_stop() sets paho's _thread_terminate; close() sets _closing first.
        return self._closing.is_set() or getattr(self, "_thread_terminate", False) is True

    def _note(self, what, e):
        self.loop_errors.append((time.monotonic(), "%s: %r" % (what, e)))

    def _drop_socket(self):
        s = self.socket()
        if s is not None:
            try:
                s.close()
            except Exception:  # already broken: closing is all that is left to do
                pass

    def _thread_main(self):
        # The body of loop_start()'s thread (paho calls self._thread_main there).
        while not self._stopping():
            try:
                self.loop_forever(retry_first_connection=True)
                return  # loop_stop(), disconnect(), or a loss without reconnect_on_failure
            except Exception as e:
                self._note("loop", e)
                reason = "exception in the paho loop: %r" % e
            self._drop_socket()
            if self._stopping():
                return
            if self.on_lost is not None:
                try:
                    self.on_lost(reason)
                except Exception as e:
                    self._note("on_lost", e)
            if not self.keep_reconnecting:
                return
            delay = 0.05
            while True:
                self._closing.wait(delay)
                if self._stopping():
                    return
                try:
                    self.reconnect()  # new socket, CONNECT queued; loop_forever reads CONNACK
                    break
                except Exception as e:
                    self._note("reconnect", e)
                    self._drop_socket()
                    delay = min(delay * 2, 0.5)

    def close(self):
        """DISCONNECT if the connection still takes it, then stop the loop thread."""
        self._closing.set()
        try:
            self.disconnect()
        except Exception:  # a dead socket: nothing to say goodbye on
            pass
        self.loop_stop()
        self._drop_socket()


class Observer:
    """A paho subscriber on the upstream broker (mutual TLS, persistent session, QoS 1,
    filter '#'), collecting every message. The persistent session makes messages published
    while it is reconnecting after a broker restart wait for it in the broker, and its loop
    (SupervisedClient) reconnects after any exception, so it keeps counting through every
    restart."""

    def __init__(self, upstream, client_id, clean_session=False):
        self.upstream = upstream
        self.msgs = []
        self.redelivered = 0
        self.connects = 0
        # A harness test's fault: the first message this predicate matches raises in the
        # message callback (before it is collected or acknowledged).
        self.fault = None
        self.cond = threading.Condition()
        self.subscribed = threading.Event()
        self.c = SupervisedClient(client_id=client_id, clean_session=clean_session,
                                  keep_reconnecting=True)
        self.c.tls_set_context(upstream.pki.client_ctx(cert="observer", ca="upstream-ca"))
        self.c.reconnect_delay_set(0.1, 0.5)
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = lambda c, u, mid, q: self.subscribed.set()
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", upstream.port, keepalive=30)
        self.c.loop_start()
        if not self.subscribed.wait(WAIT):
            self.close()
            raise AssertionError("observer could not subscribe on the upstream broker; "
                                 "loop errors: %r" % self.c.loop_errors)

    def _on_connect(self, c, userdata, flags, rc):
        if rc == 0:
            self.connects += 1
            c.subscribe("#", qos=1)

    def _on_message(self, c, userdata, msg):
        m = Message(msg.topic, bytes(msg.payload), bool(msg.retain), msg.qos)
        fault = self.fault
        if fault is not None and fault(m):
            self.fault = None
            raise RuntimeError("fault injected by the test at %r" % m)
        with self.cond:
            # The broker re-sends (DUP) what it sent us just before a restart if our PUBACK
            # did not reach it: that is the broker->observer hop, not the gateway's doing.
            # (A duplicate from the gateway arrives here as a new message without DUP.)
            if msg.dup and any(x.topic == m.topic and x.payload == m.payload
                               for x in self.msgs):
                self.redelivered += 1
                return
            self.msgs.append(m)
            self.cond.notify_all()

    def messages(self, pred=None):
        with self.cond:
            return [m for m in self.msgs if pred is None or pred(m)]

    def wait_for(self, pred, count=1, timeout=WAIT, what=None):
        """Waits until at least `count` collected messages satisfy pred; returns all of them."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = [m for m in self.msgs if pred(m)]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = "\n  ".join(repr(m) for m in self.msgs[-30:]) or "(none)"
                    raise AssertionError(
                        "upstream: %d/%d message(s) %swithin %.1fs; observer connected %s, "
                        "%d connects, loop errors %r; last messages seen:\n  %s"
                        % (len(got), count, ("for %s " % what) if what else "", timeout,
                           self.c.is_connected(), self.connects, self.c.loop_errors[-5:],
                           seen))
                self.cond.wait(min(left, 0.2))

    def readings(self, device, gateway=None, topic_prefix=None):
        """Readings (JSON with temperature_c) of one device, in arrival order."""
        def pred(m):
            return (m.get("device") == device and "temperature_c" in (m.json or {})
                    and (gateway is None or m.get("gateway") == gateway)
                    and (topic_prefix is None or m.topic.startswith(topic_prefix)))
        return self.messages(pred)

    def wait_readings(self, device, gateway=None, count=1, timeout=WAIT):
        def pred(m):
            return (m.get("device") == device and "temperature_c" in (m.json or {})
                    and (gateway is None or m.get("gateway") == gateway))
        return self.wait_for(pred, count, timeout, what="readings of %s/%s" % (gateway, device))

    def wait_deadletters(self, device, gateway=None, count=1, timeout=WAIT):
        def pred(m):
            return (m.get("device") == device and "reason" in (m.json or {})
                    and (gateway is None or m.get("gateway") == gateway))
        return self.wait_for(pred, count, timeout, what="dead letters of %s/%s" % (gateway, device))

    def close(self):
        self.c.close()


class Upstream:
    """mosquitto 2.0 as the upstream broker: one TLS listener on 127.0.0.1, client
    certificates required (CN becomes the user name), no anonymous access. Can be stopped
    and started again on the same port to simulate an outage."""

    def __init__(self, pki, workdir, name="upstream"):
        self.pki = pki
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.port = free_port()
        self.conf = self.dir / "mosquitto.conf"
        self.logfile = self.dir / "mosquitto.log"
        self.proc = None
        self.observer = None
        self.starts = 0
        self.conf.write_text("\n".join([
            "# generated by tests/integration/gw.py",
            "user root",  # the tests run as root; do not drop to 'mosquitto'
            "per_listener_settings false",
            "allow_anonymous false",
            "persistence true",
            "persistence_location %s/" % self.dir,
            "autosave_interval 0",
            "log_dest file %s" % self.logfile,
            "log_type all",
            "connection_messages true",
            "max_queued_messages 100000",
            "listener %d 127.0.0.1" % self.port,
            "cafile %s" % pki.pem("upstream-ca"),
            "certfile %s" % pki.pem("broker"),
            "keyfile %s" % pki.key("broker"),
            "require_certificate true",
            "use_identity_as_username true",
            "",
        ]))
        LOG_SOURCES.append(self)

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "mosquitto already running"
        self.stderr = open(self.dir / ("mosquitto.stderr.%d" % self.starts), "wb")
        self.starts += 1
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=self.stderr, stderr=self.stderr)
        _track(self.proc, "mosquitto")
        try:
            wait_port("127.0.0.1", self.port, WAIT, self.proc)
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, tail(self.log_text(), 40)))

    def start_observer(self):
        self.observer = Observer(self, "observer-%d" % self.port)
        return self.observer

    def stop(self, sig=signal.SIGTERM):
        p = self.proc
        if p is None or p.poll() is not None:
            return
        os.kill(p.pid, sig)
        try:
            p.wait(STOP_WAIT)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(5)
        _untrack(p)
        self.stderr.close()

    def close(self):
        if self.observer is not None:
            self.observer.close()
            self.observer = None
        self.stop()
        if self in LOG_SOURCES:
            LOG_SOURCES.remove(self)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def dump(self):
        text = tail(self.log_text(), 80)
        obs = self.observer
        if obs is not None:
            text += "\n-- observer: connected %s, %d connects, %d messages, loop errors %r" % (
                obs.c.is_connected(), obs.connects, len(obs.messages()), obs.c.loop_errors[-10:])
        return "mosquitto %s (port %d) log" % (self.name, self.port), text

    # Convenience: the observer's collections.
    def wait_for(self, *a, **kw):
        return self.observer.wait_for(*a, **kw)

    def wait_readings(self, *a, **kw):
        return self.observer.wait_readings(*a, **kw)

    def wait_deadletters(self, *a, **kw):
        return self.observer.wait_deadletters(*a, **kw)

    def readings(self, *a, **kw):
        return self.observer.readings(*a, **kw)

    def messages(self, *a, **kw):
        return self.observer.messages(*a, **kw)


# ---------------------------------------------------------------------------------------
# The gateway

def listener(name, tls="off", host="127.0.0.1", port=None, **opts):
    """A [listener NAME] description for Gateway(listeners=[...]). opts are config keys
    (identity, handshake_timeout, max_connections, tls_min_version, ciphers, cert, ...)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return {"name": name, "tls": tls, "host": host,
            "port": port if port is not None else free_port(family, host), "opts": dict(opts)}


class NotifySocket:
    """The NOTIFY_SOCKET end the service manager would hold: an AF_UNIX datagram socket,
    read by a background thread. Kept in a short /tmp path (sun_path is 108 bytes)."""

    def __init__(self):
        import tempfile
        self.dir = tempfile.mkdtemp(prefix="iotgw-n", dir="/tmp")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.datagrams = []  # (monotonic time, text)
        self.synced = set()  # sync() tokens the reader has collected (not in datagrams)
        self.cond = threading.Condition()
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            text = data.decode("utf-8", "replace")
            with self.cond:
                if text.startswith(self.SYNC):
                    self.synced.add(text)
                else:
                    self.datagrams.append((time.monotonic(), text))
                self.cond.notify_all()

    SYNC = "IOTGW_TEST_SYNC="

    def sync(self, timeout=WAIT):
        """Barrier: sends a datagram of our own to the socket and waits until the reader has
        collected it. One socket queues its datagrams in arrival order, so everything sent
        before this call (by a daemon that has exited since, say) is in messages() when it
        returns. The token itself is not."""
        token = "%s%d" % (self.SYNC, next(_uniq))
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(token.encode(), self.path)
        deadline = time.monotonic() + timeout
        with self.cond:
            while token not in self.synced:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("notify socket reader did not collect %s within %.1fs"
                                         % (token, timeout))
                self.cond.wait(min(left, 0.1))

    def times(self):
        """(monotonic arrival time, text) of every datagram, oldest first."""
        with self.cond:
            return list(self.datagrams)

    def messages(self):
        with self.cond:
            return [d for _, d in self.datagrams]

    def wait_for(self, pred, timeout=WAIT, what="notification", start=0):
        """Waits for a datagram (index >= start) satisfying pred; returns its index."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.datagrams)):
                    if pred(self.datagrams[i][1]):
                        return i
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %s within %.1fs; datagrams: %r"
                                         % (what, timeout, [d for _, d in self.datagrams][-20:]))
                self.cond.wait(min(left, 0.1))

    def close(self):
        self._stop = True
        self.thread.join(2)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def notify_fields(datagram):
    """'READY=1\\nSTATUS=x' -> {'READY': '1', 'STATUS': 'x'}"""
    out = {}
    for line in datagram.split("\n"):
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def parse_log_line(line):
    """'iotgw[12]: warning event=x device=d peer=1.2.3.4:5: msg' -> dict, or None.
    Field order after event= is free; the fields end at the first token ending in ':'."""
    m = LOG_LINE_RE.match(line)
    if not m:
        return None
    ev = {"pid": int(m.group(1)), "level": m.group(2), "raw": line, "msg": ""}
    rest = line[m.start(3) - len("event="):]
    tokens = rest.split(" ")
    for i, tok in enumerate(tokens):
        km = re.match(r"^([a-z_]+)=(.*)$", tok)
        if not km:
            ev["msg"] = " ".join(tokens[i:])
            break
        k, v = km.group(1), km.group(2)
        end = v.endswith(":")
        if end:
            v = v[:-1]
        ev[k] = v
        if end:
            ev["msg"] = " ".join(tokens[i + 1:])
            break
    return ev


class Gateway:
    """One iotgw process with its own config file, stderr log and NOTIFY_SOCKET."""

    def __init__(self, workdir, pki, upstream=None, name=None, listeners=None, decode=(),
                 gateway=None, upstream_opts=None, spool=None, extra="", env=None,
                 notify=True, log_level="debug", spool_dir=None, durability=None,
                 max_messages=None, max_bytes=None):
        """spool: extra [spool] keys (a None value leaves the key out). Every gateway gets a
        state directory of its own, WORKDIR/state, unless spool_dir (or spool={"dir": ..})
        names another one; two Gateway objects given the same spool_dir share the spool."""
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pki = pki
        self.upstream = upstream
        self.name = name or unique("gw-")
        self.listeners = listeners if listeners is not None else [listener("plain", "off")]
        self.decode = list(decode)
        self.gateway_opts = dict(gateway or {})
        self.gateway_opts.setdefault("log_level", log_level)
        self.upstream_opts = dict(upstream_opts or {})
        # Every gateway gets its own spool directory: a shared one would be locked by the
        # first gateway and replay its backlog into the next.
        sp = {"dir": str(spool_dir) if spool_dir is not None else str(self.dir / "state"),
              "durability": durability, "max_messages": max_messages, "max_bytes": max_bytes}
        sp.update(spool or {})
        self.spool = sp
        self.extra = extra
        self.env = dict(env or {})
        self.use_notify = notify
        self.conf = self.dir / "iotgw.conf"
        self.logfile = self.dir / "iotgw.stderr"
        self.proc = None
        self.notify = None
        self.expect_exit = None  # set when a test stopped/killed it on purpose
        self.write_config()

    # -- configuration
    def port(self, name=None):
        return self.listener(name)["port"]

    def listener(self, name=None):
        if name is None:
            return self.listeners[0]
        for lst in self.listeners:
            if lst["name"] == name:
                return lst
        raise KeyError(name)

    def render(self):
        out = ["# generated by tests/integration/gw.py", "[gateway]", "name = %s" % self.name]
        out += ["%s = %s" % kv for kv in self.gateway_opts.items()]
        for lst in self.listeners:
            host = lst["host"]
            bind = "[%s]:%d" % (host, lst["port"]) if ":" in host else "%s:%d" % (host, lst["port"])
            out += ["", "[listener %s]" % lst["name"], "bind = %s" % bind, "tls = %s" % lst["tls"]]
            opts = dict(lst["opts"])
            if lst["tls"] != "off":
                opts.setdefault("cert", self.pki.pem("gateway"))
                opts.setdefault("key", self.pki.key("gateway"))
            if lst["tls"] == "mutual":
                opts.setdefault("ca", self.pki.pem("devices-ca"))
            out += ["%s = %s" % kv for kv in opts.items()]
        up = {"host": "127.0.0.1",
              "port": self.upstream.port if self.upstream else free_port(),
              "tls": "mutual",
              "ca": self.pki.pem("upstream-ca"),
              "cert": self.pki.pem("gateway-upstream"),
              "key": self.pki.key("gateway-upstream"),
              "keepalive": "10s",
              "reconnect_min": "100ms",
              "reconnect_max": "1s"}
        up.update(self.upstream_opts)
        out += ["", "[upstream]"] + ["%s = %s" % kv for kv in up.items() if kv[1] is not None]
        out += ["", "[spool]"] + ["%s = %s" % kv for kv in self.spool.items() if kv[1] is not None]
        for name, opts in self.decode:
            out += ["", "[decode %s]" % name] + ["%s = %s" % kv for kv in opts.items()]
        if self.extra:
            out += ["", self.extra]
        return "\n".join(out) + "\n"

    def write_config(self, text=None):
        self.conf.write_text(text if text is not None else self.render())

    # -- process
    def start(self, wait_ready=True, args=()):
        assert self.proc is None or self.proc.poll() is not None, "gateway already running"
        env = {k: v for k, v in os.environ.items()
               if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM",
                            "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")}
        if self.use_notify:
            if self.notify is None:
                self.notify = NotifySocket()
            env["NOTIFY_SOCKET"] = self.notify.path
            self.notify_start = len(self.notify.messages())
        env.update(self.env)
        self.log_fh = open(self.logfile, "ab")
        self.log_offset = self.logfile.stat().st_size
        self.proc = subprocess.Popen([IOTGW_BIN, "-c", str(self.conf), "--log-stderr", *args],
                                     stdin=subprocess.DEVNULL, stdout=self.log_fh,
                                     stderr=self.log_fh, env=env)
        _track(self.proc, "iotgw")
        if self not in LOG_SOURCES:
            LOG_SOURCES.append(self)
        self.expect_exit = None
        if wait_ready:
            self.wait_ready()
        return self

    @property
    def pid(self):
        return self.proc.pid

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout=START_WAIT):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("iotgw exited with %d during start-up:\n%s"
                                     % (self.proc.returncode, tail(self.log_text(), 60)))
            if self.notify is not None:
                return any("READY=1" in d.split("\n")
                           for d in self.notify.messages()[self.notify_start:])
            return any(e["event"] == "gateway_ready" for e in self.events())
        try:
            wait_until(ready, timeout, what="READY=1 from iotgw")
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, tail(self.log_text(), 60)))

    def send_signal(self, sig):
        assert self.running, "iotgw is not running (exit %s)" % self.proc.returncode
        os.kill(self.proc.pid, sig)

    def sighup(self):
        self.send_signal(signal.SIGHUP)

    def stop(self, sig=signal.SIGTERM, timeout=STOP_WAIT, expect_rc=0):
        """Graceful stop; asserts the exit status (0) within timeout."""
        if not self.running:
            rc = self.proc.returncode if self.proc else None
            self._closed()
            assert rc == expect_rc, "iotgw had already exited with %s:\n%s" % (
                rc, tail(self.log_text(), 60))
            return rc
        self.expect_exit = "stop"
        os.kill(self.proc.pid, sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
            self._closed()
            raise AssertionError("iotgw did not exit within %.0fs of %s:\n%s"
                                 % (timeout, signal.Signals(sig).name, tail(self.log_text(), 60)))
        self._closed()
        assert rc == expect_rc, "iotgw exited with %d after %s (expected %d):\n%s" % (
            rc, signal.Signals(sig).name, expect_rc, tail(self.log_text(), 60))
        return rc

    def kill9(self):
        self.expect_exit = "kill"
        if self.running:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self._closed()

    def wait_exit(self, timeout=WAIT):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("iotgw still running after %.1fs:\n%s"
                                 % (timeout, tail(self.log_text(), 40)))
        self.expect_exit = "exited"
        self._closed()
        return rc

    def _closed(self):
        if self.proc is not None:
            _untrack(self.proc)
        fh = getattr(self, "log_fh", None)
        if fh is not None and not fh.closed:
            fh.close()

    def finalize(self):
        """Fixture finalizer: a gateway the test left running must stop cleanly (exit 0),
        and no sanitizer may have complained (ASan/UBSan builds), even after a kill -9."""
        try:
            if self.proc is not None and self.expect_exit is None:
                self.stop()
            elif self.running:
                self.kill9()
            text = self.log_text()
            bad = [ln for ln in text.splitlines()
                   if "Sanitizer" in ln or "runtime error:" in ln]
            assert not bad, "sanitizer report in the iotgw log:\n%s" % tail(text, 80)
        finally:
            if self.notify is not None:
                self.notify.close()
                self.notify = None
            if self in LOG_SOURCES:
                LOG_SOURCES.remove(self)

    # -- logs
    def log_text(self):
        try:
            return self.logfile.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_lines(self):
        """Lines written by the current process (since the last start)."""
        try:
            data = self.logfile.read_bytes()[getattr(self, "log_offset", 0):]
        except FileNotFoundError:
            return []
        return data.decode("utf-8", "replace").splitlines()

    def events(self, event=None, all_runs=False, **fields):
        """Parsed log lines of the current process (all_runs: of every process started on this
        log file, e.g. before a kill -9), filtered by event and exact field values."""
        out = []
        for line in (self.log_text().splitlines() if all_runs else self.log_lines()):
            ev = parse_log_line(line)
            if ev is None:
                continue
            if event is not None and ev["event"] != event:
                continue
            if all(ev.get(k) == str(v) for k, v in fields.items()):
                out.append(ev)
        return out

    def wait_event(self, event, timeout=WAIT, count=1, **fields):
        """Waits until `count` log lines with event=EVENT (and the given field values) exist."""
        def have():
            got = self.events(event, **fields)
            if len(got) >= count:
                return got
            if not self.running:
                raise AssertionError("iotgw exited (%s) while waiting for event=%s %s:\n%s"
                                     % (self.proc.returncode, event, fields,
                                        tail(self.log_text(), 60)))
            return None
        try:
            return wait_until(have, timeout, interval=0.03,
                              what="%d log line(s) event=%s %s" % (count, event, fields))
        except AssertionError as e:
            if "exited" in str(e):
                raise
            raise AssertionError("%s; log:\n%s" % (e, tail(self.log_text(), 60)))

    def wait_log(self, regex, timeout=WAIT):
        rx = re.compile(regex)

        def have():
            return [ln for ln in self.log_lines() if rx.search(ln)]
        try:
            return wait_until(have, timeout, interval=0.03, what="log line /%s/" % regex)
        except AssertionError as e:
            raise AssertionError("%s; log:\n%s" % (e, tail(self.log_text(), 60)))

    def dump(self):
        return "iotgw %s stderr (%s)" % (self.name, self.logfile), tail(self.log_text(), 150)

    # -- barriers: a later, observable event, for checking that something did NOT happen
    def _barrier_listener(self, listener_name):
        lst = self.listener(listener_name)
        assert lst["tls"] == "off" and "password_file" not in lst["opts"], (
            "barriers need a plaintext listener without password_file; add one "
            "(e.g. listener('barrier', 'off')) and name it")
        return lst

    def loop_barrier(self, listener_name=None, timeout=WAIT):
        """Waits until the event loop has gone round at least once more: opens a TCP
        connection to a plaintext listener and waits for the first log line naming it (the
        session's debug state line; so log_level must be debug, the default here). The
        connection is made now, so the gateway accepts it in a later loop iteration than any
        line already in the log: whatever the iteration that logged such a line did, the
        commit that ends it included (PUBACKs released, writes made), is done. Accepted and
        logged even while devices are held back (spool full). Returns that log line."""
        lst = self._barrier_listener(listener_name)
        assert self.gateway_opts.get("log_level") == "debug", "loop_barrier needs debug logs"
        c = RawConn(lst["port"], host=lst["host"])
        try:
            def seen():
                return [e for e in self.events() if e.get("peer") == c.peer_str]
            try:
                return wait_until(seen, timeout, interval=0.01,
                                  what="a log line about barrier connection %s" % c.peer_str)[0]
            except AssertionError as e:
                raise AssertionError("%s; log:\n%s" % (e, tail(self.log_text(), 40)))
        finally:
            c.close()

    def upstream_barrier(self, listener_name=None, observer=None, timeout=WAIT):
        """Waits for a later reading upstream: a device of its own (a fresh client id on a
        plaintext listener without password_file) publishes one QoS 1 reading, and this
        waits until `observer` (the upstream's) has it. The gateway forwards its spool in
        order over one upstream connection and the broker keeps that order, so whatever the
        gateway took in before this reading's PUBLISH has arrived upstream by then, and
        whatever is not there never came in. Returns the barrier's message."""
        lst = self._barrier_listener(listener_name)
        obs = observer if observer is not None else self.upstream.observer
        dev = unique("barrier")
        c = RawConn(lst["port"], host=lst["host"])
        try:
            c.connect(dev)
            c.send(publish_pkt("esp/%s/t" % dev, "1.25", qos=1, pid=1))
            c.expect(b"\x40\x02\x00\x01", what="PUBACK of the barrier reading")
            c.send(DISCONNECT)
        finally:
            c.close()
        return obs.wait_for(lambda m: m.get("device") == dev and m.get("gateway") == self.name,
                            timeout=timeout, what="barrier reading of %s" % dev)[0]

    # -- the durable spool
    @property
    def state_dir(self):
        """[spool] dir: spool.db, iotgw.lock and the status file live there."""
        return Path(self.spool["dir"]) if self.spool.get("dir") else None

    def restart(self, wait_ready=True):
        """kill -9, then start again with the same config, ports and state directory (what
        systemd's Restart= does after a crash)."""
        self.kill9()
        return self.start(wait_ready=wait_ready)

    def spool_stats(self, conf=None):
        """Runs `iotgw --spool-stats -c CONF` (the daemon may or may not be running)."""
        return spool_stats(conf or self.conf)

    def status_file(self):
        """STATE_DIR/status as a dict ({} when absent)."""
        try:
            return parse_kv(Path(self.state_dir, "status").read_text())
        except FileNotFoundError:
            return {}

    def statuses(self):
        """STATUS= texts the current process sent, oldest first."""
        if self.notify is None:
            return []
        out = []
        for d in self.notify.messages()[self.notify_start:]:
            st = notify_fields(d).get("STATUS")
            if st is not None:
                out.append(st)
        return out

    def wait_status(self, pred, timeout=WAIT, what="STATUS="):
        """Waits for a STATUS= of the current process whose parse_status() satisfies pred;
        returns the parsed dict (with the text under "text"). STATUS= comes every 5 s."""
        def have():
            for st in reversed(self.statuses()):
                p = parse_status(st)
                if p is not None and pred(p):
                    return p
            if not self.running:
                raise AssertionError("iotgw exited (%s) while waiting for %s"
                                     % (self.proc.returncode, what))
            return None
        try:
            return wait_until(have, timeout, interval=0.05, what=what)
        except AssertionError as e:
            raise AssertionError("%s; STATUS= seen: %r" % (e, self.statuses()[-5:]))

    # -- device-side helpers
    def pub(self, client_id, topic, payload, qos=1, listener_name=None, extra_args=(),
            host="127.0.0.1"):
        """mosquitto_pub against one of the listeners; asserts it succeeded."""
        lst = self.listener(listener_name)
        args = [MOSQUITTO_PUB, "-h", host, "-p", str(lst["port"]), "-i", client_id,
                "-t", topic, "-m", payload, "-q", str(qos), *extra_args]
        r = subprocess.run(args, capture_output=True, text=True, timeout=WAIT)
        assert r.returncode == 0, "mosquitto_pub failed (%d): %s%s" % (r.returncode, r.stdout,
                                                                        r.stderr)
        return r


def parse_kv(text):
    """'key: value' lines (iotgw --spool-stats, STATE_DIR/status) -> dict of strings."""
    out = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


class SpoolStats:
    """The result of `iotgw --spool-stats`: rc, stdout, stderr and the parsed fields."""

    def __init__(self, r):
        self.rc = r.returncode
        self.stdout = r.stdout
        self.stderr = r.stderr
        self.fields = parse_kv(r.stdout) if r.returncode == 0 else {}

    def __getitem__(self, key):
        assert key in self.fields, "no '%s:' line in iotgw --spool-stats output (rc %d):\n%s%s" % (
            key, self.rc, self.stdout, self.stderr)
        return self.fields[key]

    def int(self, key):
        v = self[key]
        assert re.fullmatch(r"\d+", v), "--spool-stats %s: %r is not a count" % (key, v)
        return int(v)

    def __repr__(self):
        return "<spool-stats rc=%d\n%s%s>" % (self.rc, self.stdout, self.stderr)


def spool_stats(conf):
    r = subprocess.run([IOTGW_BIN, "--spool-stats", "-c", str(conf)], capture_output=True,
                       text=True, timeout=WAIT)
    return SpoolStats(r)


# "3 connections; upstream connected; spool 12 queued (oldest 4s); 100 readings, 2 rejected;
#  57 commits, 57 fsyncs" (" FULL" after "(oldest Ns)" while devices are held back)
STATUS_RE = re.compile(
    r"^(?P<connections>\d+) connections?; upstream (?P<upstream>[a-z_ -]+); "
    r"spool (?P<queued>\d+) queued \(oldest (?P<oldest>\d+)s\)(?P<full> FULL)?; "
    r"(?P<readings>\d+) readings?, (?P<rejected>\d+) rejected; "
    r"(?P<commits>\d+) commits?, (?P<fsyncs>\d+) fsyncs?$")


def parse_status(text):
    """A STATUS= text -> dict (ints for the counts, full: bool, text: the original), or None
    when it does not have the spool format above."""
    m = STATUS_RE.match(text)
    if not m:
        return None
    d = {k: (int(v) if v is not None and v.isdigit() else v) for k, v in m.groupdict().items()}
    d["full"] = bool(m.group("full"))
    d["text"] = text
    return d


def module_gateway(request, tmp_path_factory, pki, **kw):
    """Starts a gateway shared by a module's tests; stopped (exit 0 asserted) at module end.
    Use from a module-scoped fixture: `return gw.module_gateway(request, tmp_path_factory,
    pki, upstream=upstream, listeners=[...])`."""
    mod = request.module.__name__.rsplit(".", 1)[-1]
    kw.setdefault("name", safe_name("gw-" + mod, 50))
    g = Gateway(tmp_path_factory.mktemp("gw-" + mod), pki, **kw)
    request.addfinalizer(g.finalize)
    g.start()
    return g


# ---------------------------------------------------------------------------------------
# Devices

class Device:
    """A paho MQTT 3.1.1 client (the ESP8266/ESP32 side). Does not reconnect by itself, so
    that a dropped connection is seen by the test (unexpected_disconnects): a loss paho
    reports (on_disconnect rc != 0) and one it would not (an exception in its loop, recorded
    as its text) alike."""

    def __init__(self, port, client_id, host="127.0.0.1", tls=None, keepalive=60,
                 clean_session=True, protocol=paho.MQTTv311):
        self.client_id = client_id
        self.connected = threading.Event()
        self.connack_rc = None
        self.disconnects = []
        self.c = SupervisedClient(client_id=client_id, clean_session=clean_session,
                                  protocol=protocol, reconnect_on_failure=False,
                                  keep_reconnecting=False, on_lost=self._on_lost)
        if tls is not None:
            self.c.tls_set_context(tls)
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.connect(host, port, keepalive)
        self.c.loop_start()
        if not self.connected.wait(WAIT) or self.connack_rc != 0:
            self.c.close()
            raise AssertionError("device %s: no successful CONNACK (rc=%s, disconnects %r)"
                                 % (client_id, self.connack_rc, self.disconnects))

    def _on_connect(self, c, userdata, flags, rc):
        self.connack_rc = rc
        self.connected.set()

    def _on_disconnect(self, c, userdata, rc):
        self.disconnects.append(rc)

    def _on_lost(self, reason):
        self.disconnects.append(reason)
        self.connected.set()  # a constructor still waiting for the CONNACK fails at once

    @property
    def unexpected_disconnects(self):
        return [rc for rc in self.disconnects if rc != 0]

    def publish(self, topic, payload, qos=1, retain=False, timeout=WAIT):
        """Publishes; for QoS > 0 waits for the PUBACK/PUBCOMP and asserts it came."""
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        assert info.rc == paho.MQTT_ERR_SUCCESS, "publish failed locally: rc=%d" % info.rc
        if qos > 0:
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError) as e:
                raise AssertionError("device %s: publish not acknowledged: %s"
                                     % (self.client_id, e))
            assert info.is_published(), "device %s: no PUBACK within %.1fs" % (
                self.client_id, timeout)
        return info

    def publish_async(self, topic, payload, qos=1):
        info = self.c.publish(topic, payload, qos=qos)
        assert info.rc == paho.MQTT_ERR_SUCCESS, "publish failed locally: rc=%d" % info.rc
        return info

    def close(self):
        self.c.close()


# ---------------------------------------------------------------------------------------
# Raw MQTT 3.1.1 packets (byte-exact, for protocol tests)

def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def mstr(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return len(b).to_bytes(2, "big") + b


def packet(first_byte, body=b""):
    return bytes([first_byte]) + varint(len(body)) + body


def connect_pkt(client_id, keepalive=60, clean=True, proto="MQTT", level=4, username=None,
                password=None, flags=None, v5_props=False):
    f = 0
    if clean:
        f |= 0x02
    if username is not None:
        f |= 0x80
    if password is not None:
        f |= 0x40
    if flags is not None:
        f = flags
    body = mstr(proto) + bytes([level, f]) + keepalive.to_bytes(2, "big")
    if v5_props:
        body += b"\x00"  # MQTT 5 property length 0
    body += mstr(client_id)
    if username is not None:
        body += mstr(username)
    if password is not None:
        body += mstr(password)
    return packet(0x10, body)


def publish_pkt(topic, payload, qos=0, pid=None, dup=False, retain=False):
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    first = 0x30 | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
    body = mstr(topic)
    if qos > 0:
        body += (pid if pid is not None else 1).to_bytes(2, "big")
    return packet(first, body + payload)


def pubrel_pkt(pid):
    return b"\x62\x02" + pid.to_bytes(2, "big")


def subscribe_pkt(pid, filters):
    body = pid.to_bytes(2, "big")
    for f, q in filters:
        body += mstr(f) + bytes([q])
    return packet(0x82, body)


def unsubscribe_pkt(pid, filters):
    body = pid.to_bytes(2, "big")
    for f in filters:
        body += mstr(f)
    return packet(0xA2, body)


PINGREQ = b"\xc0\x00"
PINGRESP = b"\xd0\x00"
DISCONNECT = b"\xe0\x00"
CONNACK_OK = b"\x20\x02\x00\x00"


class Closed(Exception):
    pass


class RawConn:
    """A device speaking MQTT bytes over TCP (optionally TLS) by hand."""

    def __init__(self, port, host="127.0.0.1", tls=None, server_hostname=None, timeout=WAIT):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(timeout)
        # Taken before the connect: the gateway's timers for this connection (handshake,
        # CONNECT, keepalive) cannot have started earlier than t_open / t_sent.
        self.t_open = self.t_sent = time.monotonic()
        s.connect((host, port))
        self.host = host
        self.local = s.getsockname()
        # How the gateway names us in peer= fields.
        self.peer_str = ("[%s]:%d" % self.local[:2]) if family == socket.AF_INET6 \
            else "%s:%d" % self.local[:2]
        self.sock = s
        self.buf = b""
        self.closed = False
        if tls is not None:
            self.start_tls(tls, server_hostname)

    def start_tls(self, ctx, server_hostname=None):
        """TLS handshake on the connected socket; ssl.SSLError etc. propagate (socket closed)."""
        try:
            self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname or self.host)
        except BaseException:
            self.closed = True
            self.sock.close()
            raise
        return self

    @property
    def local_port(self):
        return self.local[1]

    def send(self, data):
        self.t_sent = time.monotonic()
        self.sock.sendall(data)

    def send_slowly(self, data, delay=0.005):
        for i in range(len(data)):
            self.t_sent = time.monotonic()
            self.sock.sendall(data[i:i + 1])
            time.sleep(delay)

    def _fill(self, deadline):
        """Reads more bytes into buf; raises Closed on EOF/reset, socket.timeout at deadline."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("deadline")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError) as e:
            self.closed = True
            raise Closed(repr(e))
        if not data:
            self.closed = True
            raise Closed("EOF")
        self.buf += data

    def read_exact(self, n, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _take_packet(self):
        """One whole packet from buf (removed from it), or None."""
        if len(self.buf) < 2:
            return None
        mult, n, i = 1, 0, 1
        while i < len(self.buf) and i <= 4:
            b = self.buf[i]
            n += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                if len(self.buf) < i + n:
                    return None
                pkt, self.buf = self.buf[:i + n], self.buf[i + n:]
                return pkt
        return None

    def read_packet(self, timeout=WAIT):
        """Returns one whole packet as bytes (fixed header included)."""
        deadline = time.monotonic() + timeout
        while True:
            pkt = self._take_packet()
            if pkt is not None:
                return pkt
            self._fill(deadline)

    def available_packets(self):
        """Every whole packet received so far, without waiting: what the socket already
        holds is read first. For checking, after a barrier, that something did not come.
        Sets closed if the peer has closed (or reset) the connection."""
        self.sock.settimeout(0)
        try:
            while not self.closed:
                try:
                    data = self.sock.recv(65536)
                except (BlockingIOError, ssl.SSLWantReadError, socket.timeout):
                    break
                except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
                    self.closed = True
                    break
                if not data:
                    self.closed = True
                    break
                self.buf += data
        finally:
            if not self.closed:
                self.sock.settimeout(WAIT)
        out = []
        while True:
            pkt = self._take_packet()
            if pkt is None:
                return out
            out.append(pkt)

    def expect(self, expected, timeout=WAIT, what="packet"):
        try:
            got = self.read_packet(timeout)
        except Closed as e:
            raise AssertionError("connection closed (%s) while waiting for %s %s"
                                 % (e, what, expected.hex(" ")))
        except socket.timeout:
            raise AssertionError("no %s within %.1fs (expected %s)" % (what, timeout,
                                                                         expected.hex(" ")))
        assert got == expected, "%s: got %s, expected %s" % (what, got.hex(" "), expected.hex(" "))
        return got

    def connect(self, client_id, **kw):
        self.send(connect_pkt(client_id, **kw))
        return self.expect(CONNACK_OK, what="CONNACK")

    def wait_closed(self, timeout=WAIT):
        """Waits for the peer to close; returns (seconds waited, bytes received meanwhile).
        AssertionError if still open at the deadline."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        got = b""
        if self.closed:
            return 0.0, got
        while True:
            try:
                self._fill(deadline)
                got += self.buf
                self.buf = b""
            except Closed:
                return time.monotonic() - t0, got
            except socket.timeout:
                raise AssertionError("connection still open after %.1fs (received %r)"
                                     % (timeout, got[:64]))

    def is_open_for(self, seconds):
        """True if the peer has not closed within `seconds` (data received is discarded)."""
        try:
            self.wait_closed(seconds)
            return False
        except AssertionError:
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def assert_reading(m, device, gateway, temperature_c, fmt, seq=None, humidity=None, event=None,
                   raw=None, topic=None):
    """Checks one upstream reading message against the contract (SPEC "Upstream messages")."""
    j = m.json
    assert isinstance(j, dict), "upstream message is not a JSON object: %r" % m
    keys = {"device", "gateway", "ts", "seq", "temperature_c", "format"}
    if humidity is not None:
        keys.add("humidity_pct")
    if event is not None:
        keys.add("event")
    if raw is not None:
        keys.add("raw")
    assert set(j) == keys, "reading keys %s, expected %s: %r" % (sorted(j), sorted(keys), m)
    assert j["device"] == device, m
    assert j["gateway"] == gateway, m
    assert j["format"] == fmt, m
    assert isinstance(j["seq"], int) and not isinstance(j["seq"], bool) and j["seq"] >= 1, m
    if seq is not None:
        assert j["seq"] == seq, m
    assert isinstance(j["temperature_c"], (int, float)), m
    assert abs(j["temperature_c"] - temperature_c) < 1e-9, "temperature_c %r != %r (%r)" % (
        j["temperature_c"], temperature_c, m)
    if humidity is not None:
        assert abs(j["humidity_pct"] - humidity) < 1e-9, m
    if event is not None:
        assert j["event"] == event, m
    if raw is not None:
        assert j["raw"] == raw, m
    assert abs(parse_ts(j["ts"]) - time.time()) < 300, "ts %s is not now" % j["ts"]
    if topic is not None:
        assert m.topic == topic, "topic %s, expected %s" % (m.topic, topic)
    assert not m.retain, "reading forwarded with the retain flag: %r" % m


def b64(data):
    return base64.b64encode(data).decode("ascii")


# ---------------------------------------------------------------------------------------
# Counted load: numbered readings from many devices, matched end to end.
#
# Reading number n (1, 2, ...) of a device travels as the plain-number payload "n/100" (two
# decimals, e.g. n = 1234 -> "12.34"): the gateway forwards temperature_c = n / 100 exactly
# (it rounds to hundredths), so every upstream message names the reading it came from, and
# the device is the message's "device" (the MQTT client id on a plaintext listener). The
# gateway's per-device seq is checked separately: readings can arrive twice (a re-sent
# PUBLISH, a re-sent upstream message), so seq cannot be the key.

MAX_NUMBERED = 12500  # n / 100 must stay within the default decoder range (-40..125 C)


def reading_payload(n):
    assert 1 <= n < MAX_NUMBERED, n
    return "%d.%02d" % (n // 100, n % 100)


def reading_number(m):
    """The reading number n carried by an upstream reading message (None if not one)."""
    t = m.get("temperature_c")
    if not isinstance(t, (int, float)) or isinstance(t, bool):
        return None
    return int(round(t * 100))


class LoadDevice:
    """A device on a raw socket (plaintext MQTT 3.1.1, clean session) publishing readings
    1..count at `rate` per second, QoS 1 (or 0), with at most `window` unacknowledged.

    It records which readings were PUBACKed. When the connection is lost (EOF, or any
    exception on its socket) it connects again (every 50 ms, if reconnect) and re-sends every
    unacknowledged reading in order (DUP set), as a sensor's MQTT library does. When the
    gateway holds it back (no PUBACKs), the window fills and the device stops publishing: it
    falls behind its schedule, without a burst to catch up afterwards. One thread per device;
    every socket operation is bounded."""

    def __init__(self, port, device_id, count, rate, window=20, qos=1, topic="esp/load",
                 host="127.0.0.1", reconnect=True, keepalive=60):
        assert count < MAX_NUMBERED and rate > 0 and 1 <= window < 65535
        self.port, self.host, self.device_id = port, host, device_id
        self.count, self.period, self.window, self.qos = count, 1.0 / rate, window, qos
        self.topic, self.reconnect, self.keepalive = topic, reconnect, keepalive
        self.lock = threading.Lock()
        self.next_n = 1
        self.unacked = {}        # packet id -> n, in send order (dicts keep insertion order)
        self.acked = []          # n, in PUBACK order
        self.ack_time = {}       # n -> monotonic time of its PUBACK
        self.first_sent = {}     # n -> monotonic time it was first written
        self.resent = 0          # PUBLISHes sent again after a reconnect
        self.connects = 0        # successful CONNACKs
        self.refused = []        # CONNACK return codes != 0, connect errors
        self.losses = []         # (monotonic time, reason) of lost connections
        self.stray = []          # packets we did not expect (hex)
        self.errors = []         # exceptions in the thread
        self.sock = None
        self._out = b""
        self._in = b""
        self._last_tx = 0.0
        self._burst = 0          # readings to send at once, ahead of the schedule
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="load-%s" % device_id)

    # -- control
    def start(self):
        self.next_due = time.monotonic()
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(WAIT)

    def burst(self, k):
        """The next k readings go out at once (window permitting), then the rate resumes."""
        with self.lock:
            self._burst = k

    @property
    def done(self):
        """Everything published (and, QoS 1, acknowledged)."""
        with self.lock:
            return self.next_n > self.count and not self.unacked

    @property
    def connected(self):
        return self.sock is not None

    def snapshot(self):
        with self.lock:
            return {"published": self.next_n - 1, "acked": len(self.acked),
                    "unacked": list(self.unacked.values()), "connects": self.connects,
                    "losses": list(self.losses), "refused": list(self.refused),
                    "errors": list(self.errors), "stray": list(self.stray)}

    # -- the thread
    def _run(self):
        try:
            while not self._stop.is_set():
                if self.sock is None:
                    if self.connects and not self.reconnect:
                        return
                    if not self._connect():
                        self._stop.wait(0.05)
                    continue
                try:
                    self._step()
                except (OSError, ValueError) as e:
                    # Whatever the socket raised (select on a dead descriptor included): a
                    # lost connection, reconnected and counted like any other.
                    self._drop("socket: %r" % e)
        except Exception as e:  # a harness bug: reported by Load.check_health() and wait_done()
            with self.lock:
                self.errors.append(repr(e))
        finally:
            self._drop(None)

    def _connect(self):
        try:
            s = socket.create_connection((self.host, self.port), timeout=1.0)
        except OSError:
            return False  # the gateway is (re)starting
        try:
            s.settimeout(2.0)
            s.sendall(connect_pkt(self.device_id, keepalive=self.keepalive))
            got = b""
            while len(got) < 4:
                chunk = s.recv(4 - len(got))
                if not chunk:
                    raise OSError("closed before CONNACK")
                got += chunk
        except OSError as e:
            s.close()
            with self.lock:
                self.refused.append("connect: %r" % e)
            return False
        if got != CONNACK_OK:
            s.close()
            with self.lock:
                self.refused.append("CONNACK %s" % got.hex(" "))
            return False
        try:
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as e:
            s.close()
            with self.lock:
                self.refused.append("connect: %r" % e)
            return False
        with self.lock:
            self.sock = s
            self._out, self._in = b"", b""
            self.connects += 1
            again = list(self.unacked.items())
            self.resent += len(again)
        for pid, n in again:
            self._out += publish_pkt(self.topic, reading_payload(n), qos=self.qos, pid=pid,
                                     dup=True)
        self._last_tx = time.monotonic()
        return True

    def _drop(self, reason):
        s, self.sock = self.sock, None
        if s is not None:
            s.close()
            if reason is not None:
                with self.lock:
                    self.losses.append((time.monotonic(), reason))

    def _step(self):
        now = time.monotonic()
        with self.lock:
            can = self.next_n <= self.count and (self.qos == 0 or len(self.unacked) < self.window)
            if can and (now >= self.next_due or self._burst > 0):
                self._burst = max(0, self._burst - 1)
                n = self.next_n
                self.next_n += 1
                pid = (n - 1) % 65535 + 1
                if self.qos:
                    self.unacked[pid] = n
                self.first_sent[n] = now
                self._out += publish_pkt(self.topic, reading_payload(n), qos=self.qos, pid=pid)
                # Steady rate; after being held back, carry on from now (no burst).
                self.next_due = max(self.next_due + self.period, now - self.period)
        if self.keepalive and not self._out and now - self._last_tx > self.keepalive / 2:
            self._out += PINGREQ
            self._last_tx = now
        wait = 0.05
        if can:
            wait = 0.0 if self._burst else max(0.0, min(wait, self.next_due - now))
        r, w, _ = select.select([self.sock], [self.sock] if self._out else [], [], wait)
        if r:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                data = None
            except OSError as e:
                return self._drop("recv: %r" % e)
            if data == b"":
                return self._drop("EOF")
            if data:
                self._in += data
                self._parse()
        if w and self._out:
            try:
                k = self.sock.send(self._out)
            except BlockingIOError:
                k = 0
            except OSError as e:
                return self._drop("send: %r" % e)
            self._out = self._out[k:]
            self._last_tx = time.monotonic()

    def _parse(self):
        while len(self._in) >= 2:
            mult, n, i = 1, 0, 1
            while True:
                if i >= len(self._in):
                    return
                b = self._in[i]
                n += (b & 0x7F) * mult
                mult *= 128
                i += 1
                if not b & 0x80:
                    break
            if len(self._in) < i + n:
                return
            pkt, self._in = self._in[:i + n], self._in[i + n:]
            if pkt[0] == 0x40 and len(pkt) == 4:
                pid = int.from_bytes(pkt[2:4], "big")
                with self.lock:
                    num = self.unacked.pop(pid, None)
                    if num is None:
                        self.stray.append("PUBACK for unknown id %d" % pid)
                    else:
                        self.acked.append(num)
                        self.ack_time[num] = time.monotonic()
            elif pkt != PINGRESP:
                with self.lock:
                    self.stray.append(pkt[:32].hex(" "))


class Load:
    """Several LoadDevices (ids PREFIX + 00, 01, ...) publishing numbered readings at a steady
    rate to one gateway listener."""

    def __init__(self, port, devices, count, rate, prefix="load", **kw):
        ids = devices if isinstance(devices, (list, tuple)) else \
            ["%s%02d" % (prefix, i) for i in range(devices)]
        self.devices = [LoadDevice(port, d, count, rate, **kw) for d in ids]
        self.t_start = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self.t_start = time.monotonic()
        for d in self.devices:
            d.start()
        return self

    def stop(self):
        for d in self.devices:
            d._stop.set()
        for d in self.devices:
            d.stop()

    def burst(self, k):
        """Every device sends its next k readings at once (see LoadDevice.burst)."""
        for d in self.devices:
            d.burst(k)
        # Until they are written (or the windows are full).
        wait_until(lambda: all(d._burst == 0 or len(d.unacked) >= d.window
                               for d in self.devices), timeout=WAIT, interval=0.001,
                   what="the burst written")

    @property
    def ids(self):
        return [d.device_id for d in self.devices]

    def acked(self):
        """{device: [n, ...]} readings PUBACKed so far."""
        out = {}
        for d in self.devices:
            with d.lock:
                out[d.device_id] = list(d.acked)
        return out

    def published(self):
        """{device: set(n)} readings written at least once."""
        out = {}
        for d in self.devices:
            with d.lock:
                out[d.device_id] = set(range(1, d.next_n))
        return out

    def total_acked(self):
        return sum(len(v) for v in self.acked().values())

    def total_published(self):
        return sum(len(v) for v in self.published().values())

    def unacked(self):
        return sum(len(d.snapshot()["unacked"]) for d in self.devices)

    def first_sent(self):
        out = {}
        for d in self.devices:
            with d.lock:
                out[d.device_id] = dict(d.first_sent)
        return out

    def losses(self):
        return {d.device_id: d.snapshot()["losses"] for d in self.devices if d.losses}

    def check_health(self, allow_losses=False):
        """No thread error, no stray packet, no refused CONNACK; no lost connection unless
        allowed (a gateway killed on purpose)."""
        problems = []
        for d in self.devices:
            s = d.snapshot()
            if s["errors"]:
                problems.append("%s: errors %s" % (d.device_id, s["errors"]))
            if s["stray"]:
                problems.append("%s: unexpected packets %s" % (d.device_id, s["stray"][:5]))
            bad = [r for r in s["refused"] if r.startswith("CONNACK")]
            if bad:
                problems.append("%s: refused %s" % (d.device_id, bad))
            if s["losses"] and not allow_losses:
                problems.append("%s: connection lost %s" % (d.device_id, s["losses"]))
        assert not problems, "load devices:\n  " + "\n  ".join(problems)

    def wait_done(self, timeout=WAIT):
        """Until every device has published all its readings and had them acknowledged."""
        def done():
            for d in self.devices:
                if d.errors:
                    raise AssertionError("%s: %s" % (d.device_id, d.errors))
            return all(d.done for d in self.devices)
        try:
            wait_until(done, timeout, interval=0.05, what="every load reading PUBACKed")
        except AssertionError as e:
            raise AssertionError("%s\n  %s" % (e, "\n  ".join(
                "%s: %s" % (d.device_id, {k: v for k, v in d.snapshot().items()
                                          if k != "unacked"}) for d in self.devices)))

    def wait_acked(self, total, timeout=WAIT):
        return wait_until(lambda: self.total_acked() >= total, timeout, interval=0.05,
                          what="%d load readings PUBACKed (have %d)" % (total, self.total_acked()))

    def stalled_for(self, seconds, timeout=None):
        """Waits until no device has had a PUBACK for `seconds` in a row, for at most
        `seconds` + timeout (WAIT); returns the acked total then, or None if the PUBACKs
        never stopped that long. A PUBACK still on its way when this is called (released by
        the commit that ended the loop iteration which logged what the test waited for) is
        not taken for PUBACKs going on; PUBACKs that keep coming are."""
        limit = time.monotonic() + seconds + (WAIT if timeout is None else timeout)
        last, since = self.total_acked(), time.monotonic()
        while True:
            time.sleep(min(0.05, seconds))
            now, n = time.monotonic(), self.total_acked()
            if n != last:
                last, since = n, now  # seen up to 50 ms late: the quiet span only shrinks
            elif now - since >= seconds:
                return n
            if now >= limit:
                return None


class Tally:
    """Upstream arrivals of numbered readings, per device, matched against what the devices
    saw PUBACKed.

      arrivals[dev]    [(n, seq)] in arrival order (after the observer's own DUP filter)
      missing[dev]     acked numbers that never arrived
      duplicates[dev]  arrivals beyond the first of the same n; of those,
        resent_upstream  ... with the seq of an earlier arrival (the gateway sent an entry
                         again: its broker PUBACK or the delete was lost)
        resent_device    ... with a new seq (the device sent the reading again, e.g. after
                         a crash lost the PUBACK, and the gateway took it as new)
      unexpected[dev]  arrivals of numbers the device never published
      order_errors     after dropping repeats of an n: n or seq not strictly increasing
      seq_conflicts    one seq carrying two different readings (a seq reused)"""

    def __init__(self, observer, gateway, acked, published=None):
        self.acked = {d: set(v) for d, v in acked.items()}
        self.arrivals = {d: [] for d in acked}
        for m in observer.messages(lambda m: m.get("gateway") == gateway
                                   and m.get("device") in self.arrivals
                                   and "temperature_c" in (m.json or {})):
            self.arrivals[m.get("device")].append((reading_number(m), m.get("seq")))
        self.missing, self.duplicates, self.unexpected = {}, {}, {}
        self.resent_upstream, self.resent_device = 0, 0
        self.order_errors, self.seq_conflicts = [], []
        for d, arr in self.arrivals.items():
            seen = [n for n, _ in arr]
            got = set(seen)
            miss = sorted(self.acked[d] - got)
            if miss:
                self.missing[d] = miss
            dup = len(seen) - len(got)
            if dup:
                self.duplicates[d] = dup
            pairs = set()
            for n, seq in arr:
                if (n, seq) in pairs:
                    self.resent_upstream += 1
                elif any(p[0] == n for p in pairs):
                    self.resent_device += 1
                pairs.add((n, seq))
            if published is not None:
                extra = sorted(got - set(published[d]))
                if extra:
                    self.unexpected[d] = extra
            first, prev = set(), None
            for n, seq in arr:
                if n in first:
                    continue
                first.add(n)
                if prev is not None and not (n > prev[0] and seq > prev[1]):
                    self.order_errors.append("%s: reading %s (seq %s) after %s (seq %s)"
                                             % (d, n, seq, prev[0], prev[1]))
                prev = (n, seq)
            by_seq = {}
            for n, seq in arr:
                if by_seq.setdefault(seq, n) != n:
                    self.seq_conflicts.append("%s: seq %s carried readings %s and %s"
                                              % (d, seq, by_seq[seq], n))

    @property
    def total_missing(self):
        return sum(len(v) for v in self.missing.values())

    @property
    def total_duplicates(self):
        return sum(self.duplicates.values())

    @property
    def total_arrived(self):
        return sum(len(v) for v in self.arrivals.values())

    def summary(self):
        short = {d: (v[:10] + ["..."] if len(v) > 10 else v) for d, v in self.missing.items()}
        return ("acked %d, arrived %d (distinct %d), missing %d %s, duplicates %d %s "
                "(same seq %d, new seq %d), unexpected %s, order errors %d %s, "
                "seq conflicts %d %s" % (
                    sum(len(v) for v in self.acked.values()), self.total_arrived,
                    self.total_arrived - self.total_duplicates, self.total_missing, short,
                    self.total_duplicates, self.duplicates, self.resent_upstream,
                    self.resent_device, self.unexpected or "none",
                    len(self.order_errors), self.order_errors[:5], len(self.seq_conflicts),
                    self.seq_conflicts[:5]))


def wait_tally(observer, gateway, load, timeout=WAIT, settle=0.5, barrier=None):
    """Waits until every reading the load's devices saw PUBACKed arrived upstream; returns
    the Tally. AssertionError listing the missing ones at the deadline. Late duplicates
    count too: with barrier (the Gateway, its first listener plaintext), a barrier reading
    is published through it afterwards and the tally taken once that has arrived (see
    Gateway.upstream_barrier: whatever the gateway still had to send, duplicates included,
    came before it); without, the tally is taken once nothing more arrived for `settle` s.
    Call it once the load is done."""
    if barrier is not None:
        assert isinstance(barrier, Gateway) and barrier.name == gateway, barrier
    acked, published = load.acked(), load.published()
    deadline = time.monotonic() + timeout
    while True:
        t = Tally(observer, gateway, acked, published)
        if not t.missing:
            break
        if time.monotonic() >= deadline:
            raise AssertionError("readings PUBACKed but not upstream after %.1fs: %s"
                                 % (timeout, t.summary()))
        time.sleep(0.1)
    if barrier is not None:
        barrier.upstream_barrier(observer=observer)
        return Tally(observer, gateway, acked, published)
    quiet_until = time.monotonic() + settle
    while time.monotonic() < min(quiet_until, deadline + settle):
        time.sleep(0.1)
        t2 = Tally(observer, gateway, acked, published)
        if t2.total_arrived != t.total_arrived:
            t, quiet_until = t2, time.monotonic() + settle
    return t
