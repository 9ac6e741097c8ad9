#!/usr/bin/python3
"""iotgw under hostile load (issue 12, item 5): honest devices measured beside each attack.

For every scenario it starts a fresh iotgw (a mutual-TLS device listener, a plaintext one and
a server-TLS password one) in front of a real upstream mosquitto, connects 20 honest
mutual-TLS devices publishing 10 QoS 1 readings/s each (bench/loadgen.c, `pub --rate
--phases`), and measures them through three phases: before (no load), during (the hostile
load) and after (the load stopped). Per phase it prints the honest devices' PUBACK latency
p50/p99/max (each PUBACK counted in the phase its PUBLISH was sent in), how many new honest
devices could connect (a `loadgen conn` probe halfway through the phase) and their
connect-to-CONNACK p99, the gateway's CPU % (of one core), VmRSS and open fds (from /proc,
at the end and the maximum sampled every 0.25 s), the bytes it logged, and the CPU the rest
of the machine used. At the end every honest reading the gateway acknowledged must have
arrived upstream (a `loadgen sub` counter on the upstream broker, subscribed to the honest
devices' topic only), and the gateway must have survived: alive through every phase,
serving honest devices in the after phase, exit status 0 on SIGTERM.

The honest devices connect from 127.0.0.1, the attackers from other loopback addresses
(127.0.0.2, 127.0.1.x, ...), so the per-address limits apply to the attacker as they would
on a network. Limits are iotgw's defaults unless a scenario is about one (it says so).

Figures are printed, never asserted; slowness is not a failure. Exit status: 0 when every
scenario ran and in each the gateway survived and lost nothing it acknowledged, 1 otherwise,
2 on bad usage. Every process started here (gateways, brokers, load generators, attackers)
is stopped by PID, also on failure, SIGTERM and Ctrl-C; every loop and wait is bounded in
count and time.

The attackers are this file run as `hostile.py --attack KIND --params JSON` (Python,
raw sockets, where speed does not matter) or loadgen modes (where it does: a valid device
flooding, SUBSCRIBE floods over TLS).
"""

import argparse
import base64
import collections
import hashlib
import json
import math
import os
import re
import selectors
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the benchmark's process, PKI and /proc helpers)
from bench import BenchError, log_tail, read_json_line  # noqa: E402

ROOT = bench.ROOT
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
HONEST_ADDR = "127.0.0.1"
HONEST_TOPIC = "iot-2/evt/status/fmt/json"   # {event} = status: the counter's filter
HOSTILE_TOPIC = "iot-2/evt/flood/fmt/json"   # {event} = flood: not counted
PHASES = ("before", "during", "after")


# ---- MQTT packets ---------------------------------------------------------------------

def varint(n):
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def mstr(s):
    b = s.encode() if isinstance(s, str) else s
    return len(b).to_bytes(2, "big") + b


def connect_pkt(client_id, username=None, password=None, keepalive=60):
    flags = 0x02 | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    body = mstr("MQTT") + bytes([4, flags]) + keepalive.to_bytes(2, "big") + mstr(client_id)
    if username is not None:
        body += mstr(username)
    if password is not None:
        body += mstr(password)
    return b"\x10" + varint(len(body)) + body


def publish_stream(count, qos=1):
    """count QoS 1 PUBLISHes (packet ids 1..count), or QoS 0 ones, of a valid reading, back to
    back."""
    out = bytearray()
    for i in range(1, count + 1):
        payload = b'{"d":{"temp":%d.5,"humidity":40}}' % (15 + i % 10)
        body = mstr(HOSTILE_TOPIC) + (i.to_bytes(2, "big") if qos else b"") + payload
        out += (b"\x32" if qos else b"\x30") + varint(len(body)) + body
    return bytes(out)


def partial_connect(remaining, send_max):
    """The first bytes of a CONNECT whose remaining length is `remaining`: all of it but
    its last byte, at most send_max bytes."""
    head = mstr("MQTT") + bytes([4, 0x02, 0, 60])
    body = head + min(remaining - len(head) - 2, 0xffff).to_bytes(2, "big")
    pkt = b"\x10" + varint(remaining) + body
    total = len(pkt) - len(body) + remaining
    return pkt + b"a" * (min(total - 1, send_max) - len(pkt))


def canned_client_hello():
    """One TLS 1.3 ClientHello, made once and replayed: the attacker does no crypto."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, outg, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outg.read()


# ---- attackers (run as `hostile.py --attack KIND --params JSON`) ----------------------

def tcp_socket(src, linger_reset=False):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    if linger_reset:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.bind((src, 0))
    return s


def paced_workers(p, stop, deadline, attempt, threads):
    """Call attempt(i) at p["rate"] per second from `threads` threads, at most p["max"] times,
    until stop or deadline. A slot more than 1 s late is skipped (counted), not bunched.
    Returns the attacker's summary: how many attempts gave each result, attempts, skipped,
    per_s."""
    lock = threading.Lock()
    k = [0]
    res = collections.Counter()
    skipped = [0]
    t0 = time.monotonic()

    def worker():
        while not stop.is_set():
            with lock:
                i = k[0]
                k[0] += 1
            due = t0 + i / p["rate"]
            if i >= p["max"] or due >= deadline:
                return
            wait = due - time.monotonic()
            if wait > 0 and stop.wait(wait):
                return
            if time.monotonic() - due > 1.0:
                with lock:
                    skipped[0] += 1
                continue
            r = attempt(i)
            with lock:
                res[r] += 1

    ts = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in ts:
        t.start()
    while any(t.is_alive() for t in ts) and not stop.is_set() and time.monotonic() < deadline:
        stop.wait(0.2)
    stop.set()
    for t in ts:
        t.join(3)
    secs = time.monotonic() - t0
    n = sum(res.values())
    out = dict(res)
    out.update(attempts=n, skipped=skipped[0], per_s=round(n / secs, 1) if secs else 0)
    return out


def attack_noread(p, stop, deadline):
    """p["n"] plaintext connections from p["src"]: CONNECT, then QoS 1 PUBLISHes (QoS 0 with
    p["qos"] = 0) as fast as the socket takes them, never reading anything (PUBACKs pile up
    unread)."""
    stream = memoryview(publish_stream(4096, p.get("qos", 1)))
    sel = selectors.DefaultSelector()
    st = collections.Counter()
    for i in range(p["n"]):
        if stop.is_set() or time.monotonic() >= deadline:
            break
        s = tcp_socket(p["src"])
        try:
            s.settimeout(5)
            s.connect(("127.0.0.1", p["port"]))
            s.sendall(connect_pkt("noread%05d" % i))
        except OSError:
            st["connect_failed"] += 1
            s.close()
            continue
        s.setblocking(False)
        st["connections"] += 1
        sel.register(s, selectors.EVENT_WRITE, {"off": 0, "sent": 0, "last": time.monotonic()})
    per_conn = p["max_bytes"]
    while sel.get_map() and not stop.is_set() and time.monotonic() < deadline:
        for key, _ in sel.select(0.2):
            c = key.data
            end = min(len(stream), c["off"] + 65536)
            try:
                n = key.fileobj.send(stream[c["off"]:end])
            except BlockingIOError:
                continue
            except OSError:
                st["closed_by_gateway"] += 1
                sel.unregister(key.fileobj)
                key.fileobj.close()
                continue
            c["off"] = (c["off"] + n) % len(stream)
            c["sent"] += n
            c["last"] = time.monotonic()
            st["bytes"] += n
            if c["sent"] >= per_conn:
                st["byte_budget_reached"] += 1
                sel.unregister(key.fileobj)
                key.fileobj.close()
    now = time.monotonic()
    for key in list(sel.get_map().values()):
        if now - key.data["last"] > 1.0:
            st["stalled"] += 1  # the gateway stopped reading it
        key.fileobj.close()
    out = dict(st)
    out["publishes"] = st["bytes"] * 4096 // len(stream)
    return out


def attack_passwords(p, stop, deadline):
    """CONNECTs with a wrong password at p["rate"]/s from p["srcs"] in turn, one connection
    each (TLS without verifying the gateway when p["tls"]), waiting for the CONNACK.
    Results: connack_N, closed (before a CONNACK: refused at accept or in the handshake),
    timeout."""
    ctx = None
    if p["tls"]:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE

    srcs = p["srcs"]

    def attempt(i):
        s = tcp_socket(srcs[i % len(srcs)])
        try:
            s.settimeout(5)
            s.connect(("127.0.0.1", p["port"]))
            if ctx:
                s = ctx.wrap_socket(s)
            s.sendall(connect_pkt(p["device"], p["device"], "wrong-password-%d" % i))
            s.settimeout(max(0.5, min(10.0, deadline + 2 - time.monotonic())))
            data = b""
            while len(data) < 4:
                chunk = s.recv(4 - len(data))
                if not chunk:
                    return "closed"
                data += chunk
            return "connack_%d" % data[3]
        except socket.timeout:
            return "timeout"
        except (OSError, ssl.SSLError):
            return "closed"
        finally:
            s.close()

    return paced_workers(p, stop, deadline, attempt, p.get("threads", 32))


def attack_connflood(p, stop, deadline):
    """New TCP connections at p["rate"]/s, source addresses p["srcs"] in turn, each closed
    at once after connecting: with a FIN (p["reset"] false) or an RST (SO_LINGER 0)."""
    srcs = p["srcs"]

    def attempt(i):
        s = tcp_socket(srcs[i % len(srcs)], linger_reset=p["reset"])
        try:
            s.settimeout(1.0)
            s.connect(("127.0.0.1", p["port"]))
            return "connected"
        except socket.timeout:
            return "connect_timeout"
        except OSError:
            return "connect_error"
        finally:
            s.close()

    return paced_workers(p, stop, deadline, attempt, p.get("threads", 4))


def attack_hellos(p, stop, deadline):
    """A canned TLS 1.3 ClientHello replayed at p["rate"]/s from p["srcs"]: connect, send
    it, read the gateway's first flight (its key exchange and signature are done by then),
    close."""
    hello = canned_client_hello()
    srcs = p["srcs"]

    def attempt(i):
        s = tcp_socket(srcs[i % len(srcs)], linger_reset=True)
        try:
            s.settimeout(2.0)
            s.connect(("127.0.0.1", p["port"]))
            s.sendall(hello)
            return "answered" if s.recv(65536) else "closed"
        except socket.timeout:
            return "timeout"
        except OSError:
            return "closed"
        finally:
            s.close()

    out = paced_workers(p, stop, deadline, attempt, p.get("threads", 8))
    out["hello_bytes"] = len(hello)
    return out


def attack_swarm(p, stop, deadline):
    """Hold up to p["per_src"] connections from each of p["srcs"], each sending p["payload"]
    (idle: nothing; a partial ClientHello; a partial CONNECT) and then nothing more; a
    connection the gateway closes is opened again. New connections at most p["open_rate"]
    per second and p["max_opens"] in all, at most 256 connecting at once."""
    kind = p["payload"]
    if kind == "idle":
        payload = b""
    elif kind == "hello":
        payload = canned_client_hello()[:p.get("hello_bytes", 100)]
    elif kind == "connect":
        payload = partial_connect(p["remaining"], p["send_max"])
    else:
        raise ValueError(kind)
    view = memoryview(payload)
    sel = selectors.DefaultSelector()
    per_src = {s: 0 for s in p["srcs"]}
    st = collections.Counter()
    connecting = [0]
    held = [0]
    max_held = 0
    tokens, last = 0.0, time.monotonic()
    target = p["per_src"] * len(p["srcs"])
    rr = 0

    def close(key, counter):
        c = key.data
        sel.unregister(key.fileobj)
        key.fileobj.close()
        per_src[c["src"]] -= 1
        if c["phase"] == "connecting":
            connecting[0] -= 1
        else:
            held[0] -= 1
        st[counter] += 1

    while not stop.is_set() and time.monotonic() < deadline:
        now = time.monotonic()
        tokens = min(p["open_rate"], tokens + (now - last) * p["open_rate"])
        last = now
        srcs = p["srcs"]
        tries = 0
        while (tokens >= 1 and connecting[0] < 256 and st["opened"] < p["max_opens"]
               and held[0] + connecting[0] < target and tries < len(srcs)):
            src = srcs[rr % len(srcs)]
            rr += 1
            if per_src[src] >= p["per_src"]:
                tries += 1
                continue
            tries = 0
            tokens -= 1
            s = tcp_socket(src)
            s.setblocking(False)
            st["opened"] += 1
            try:
                s.connect(("127.0.0.1", p["port"]))
            except BlockingIOError:
                pass
            except OSError:
                st["connect_error"] += 1
                s.close()
                continue
            per_src[src] += 1
            connecting[0] += 1
            sel.register(s, selectors.EVENT_WRITE, {"src": src, "phase": "connecting",
                                                    "off": 0})
        for key, ev in sel.select(0.05):
            c = key.data
            s = key.fileobj
            if c["phase"] == "connecting":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    close(key, "connect_error")
                    continue
                connecting[0] -= 1
                held[0] += 1
                c["phase"] = "sending" if payload else "holding"
                sel.modify(s, selectors.EVENT_READ | (selectors.EVENT_WRITE if payload else 0),
                           c)
                continue
            if ev & selectors.EVENT_READ:
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    data = None
                except OSError:
                    data = b""
                if data == b"":
                    close(key, "closed_by_gateway")
                    continue
            if c["phase"] == "sending" and ev & selectors.EVENT_WRITE:
                try:
                    c["off"] += s.send(view[c["off"]:c["off"] + 262144])
                except BlockingIOError:
                    pass
                except OSError:
                    close(key, "closed_by_gateway")
                    continue
                if c["off"] >= len(view):
                    c["phase"] = "holding"
                    sel.modify(s, selectors.EVENT_READ, c)
        max_held = max(max_held, held[0])
    out = dict(st)
    out.update(held_at_end=held[0], max_held=max_held, target=target,
               payload_bytes=len(payload))
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    return out


def attack_churn(p, stop, deadline):
    """Client ids rotated: at p["rate"]/s, from p["srcs"] in turn, a plaintext connection
    with a client id never used before (p["prefix"] + i) that publishes one QoS 1 reading,
    waits for its PUBACK, sends DISCONNECT and closes, so that each id becomes a device the
    gateway remembers (its seq, its last-seen time). Results: acked, refused (a CONNACK
    other than 0), closed, timeout."""
    srcs = p["srcs"]
    reading = publish_stream(1)

    def attempt(i):
        s = tcp_socket(srcs[i % len(srcs)])
        try:
            s.settimeout(5)
            s.connect(("127.0.0.1", p["port"]))
            s.sendall(connect_pkt("%s%07d" % (p["prefix"], i)) + reading)
            data = b""
            while len(data) < 8:  # CONNACK, PUBACK
                chunk = s.recv(8 - len(data))
                if not chunk:
                    return "closed" if len(data) < 4 or data[3] == 0 else "refused"
                data += chunk
            s.sendall(b"\xe0\x00")
            return "acked" if data[3] == 0 and data[4] == 0x40 else "refused"
        except socket.timeout:
            return "timeout"
        except OSError:
            return "closed"
        finally:
            s.close()

    return paced_workers(p, stop, deadline, attempt, p.get("threads", 16))


ATTACKS = {"noread": attack_noread, "passwords": attack_passwords,
           "connflood": attack_connflood, "hellos": attack_hellos, "swarm": attack_swarm,
           "churn": attack_churn}


def attack_main(kind, params):
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    deadline = time.monotonic() + params["seconds"]
    t0 = time.monotonic()
    out = ATTACKS[kind](params, stop, deadline)
    out["seconds"] = round(time.monotonic() - t0, 2)
    print(json.dumps(out), flush=True)
    return 0


# ---- measuring ------------------------------------------------------------------------

def free_ports(n):
    """n different free ports (bench.free_port() called n times may return one twice)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def result_line(proc, timeout):
    """loadgen's result line (the JSON line with "mode"), skipping event lines, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ev = read_json_line(proc, max(0.1, deadline - time.monotonic()))
        if ev is None or "mode" in ev:
            return ev
    return None


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


class Sampler:
    """Every 0.25 s: the gateway's VmRSS and open fds, the maximum per phase."""

    def __init__(self, pid):
        self.pid = pid
        self.lock = threading.Lock()
        self.cur = {}
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop.wait(0.25):
            try:
                rss = bench.rss_kib(self.pid)["VmRSS"]
            except (OSError, KeyError):
                continue
            n = fds(self.pid)
            with self.lock:
                self.cur["rss_max"] = max(self.cur.get("rss_max", 0), rss)
                if n is not None:
                    self.cur["fds_max"] = max(self.cur.get("fds_max", 0), n)

    def take(self):
        """The maxima since the last take()."""
        with self.lock:
            out, self.cur = self.cur, {}
        return out

    def close(self):
        self.stop.set()
        self.t.join(2)


def tree_cpu(procs):
    """CPU seconds of this process, its reaped children and every live child we started."""
    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    for p in list(procs.procs):
        if p.poll() is None:
            try:
                total += bench.cpu_seconds(p.pid)
            except (OSError, IndexError):
                pass
    return total


EVENT_RE = re.compile(rb"event=([a-z0-9_]+)")


def log_events(path, start, end, cap=64 << 20):
    """Counter of event names in the log between byte offsets start and end."""
    c = collections.Counter()
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read(min(end - start, cap))
    except OSError:
        return c
    for m in EVENT_RE.finditer(data):
        c[m.group(1).decode()] += 1
    return c


def pct(values, q):
    """The q-quantile of values (nearest rank), or None."""
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, math.ceil(q * len(v)) - 1))]


# ---- scenarios ------------------------------------------------------------------------

class Scenario:
    """One hostile load. sizes: {name: (full, smoke)}, the numbers in the title and the
    attack (h.sz[name] while it runs); attack(h) starts it and returns an Attack."""

    def __init__(self, key, num, title, attack, answer, sizes=None, gateway=None,
                 devices=None, downlink=None, note=None, password_probe=False, spool=None,
                 upstream=None, plain=None):
        self.key, self.num, self.title, self.attack, self.answer = key, num, title, attack, answer
        self.sizes = sizes or {}
        self.gateway = gateway or {}    # [gateway] keys changed from their defaults
        self.devices = devices or {}    # [listener devices] keys changed
        self.downlink = downlink or {}  # [downlink] keys set
        self.spool = spool or {}        # [spool] keys changed
        self.plain = plain or {}        # [listener plain] keys changed
        self.upstream = upstream or {}  # [upstream] keys changed
        self.note = note                # which limit differs from its default, and why
        self.password_probe = password_probe

    def sized(self, smoke):
        return {k: v[1] if smoke else v[0] for k, v in self.sizes.items()}

    def describe(self, smoke):
        return self.title.format(**self.sized(smoke))


def addrs(prefix, n):
    return [f"{prefix}.{i}" for i in range(1, n + 1)]


def flood(h):
    return h.loadgen_attack("pub", ["-n", "1", "-w", "1000", "-m", "1000000000",
                                    "--prefix", "flood", "--topic", HOSTILE_TOPIC])


def subflood(h):
    return h.loadgen_attack("subflood", ["-n", str(h.sz["n"]), "-w", "8", "--filters", "256",
                                         "-m", "1000000000", "--prefix", "subflood",
                                         "--filter", "iot-2/cmd/c{i}/fmt/json"])


def swarm(h, listener, srcs, per_src, open_rate=2000, **payload):
    """The swarm attacker (attack_swarm): per_src connections held from each of srcs."""
    return h.engine("swarm", port=h.ports[listener], srcs=srcs, per_src=per_src,
                    open_rate=open_rate, max_opens=h.opens(open_rate), **payload)


def partial_connects(net, per_src, remaining, send_max):
    """Partial CONNECTs (remaining length `remaining`, at most send_max bytes sent) held on
    the plaintext listener, per_src from each of h.sz["addrs"] addresses net.1, net.2..."""
    return lambda h: swarm(h, "plain", addrs(net, h.sz["addrs"]), per_src, payload="connect",
                           remaining=remaining, send_max=send_max)


def passwords(h):
    return h.engine("passwords", port=h.ports["pw"], tls=True, rate=h.sz["rate"],
                    max=100000, srcs=addrs("127.0.5", 4), device="victim")


SCENARIOS = [
    Scenario("noread", "1", "{n} plaintext connections publishing QoS 1 without reading "
             "their PUBACKs",
             lambda h: h.engine("noread", port=h.ports["plain"], n=h.sz["n"], src="127.0.0.2",
                                max_bytes=1 << 30),
             "max_message_rate (1000/s per device, rate_limit_action = slow: each is read "
             "more slowly); device_not_reading once 16 KiB of PUBACKs are unread",
             sizes={"n": (100, 10)}),
    Scenario("flood", "2a", "one valid device flooding with window 1000 "
             "(max_message_rate = 1000, the default)", flood,
             "max_message_rate (1000/s) and max_byte_rate (1M/s) per device, "
             "rate_limit_action = slow"),
    Scenario("flood-unlimited", "2b", "the same flood with max_message_rate = 0 and "
             "max_byte_rate = 0", flood,
             "nothing per device (the limits are off): only the spool's bounds",
             devices={"max_message_rate": "0", "max_byte_rate": "0"},
             note="max_message_rate = 0, max_byte_rate = 0 on the device listener"),
    Scenario("flood-qos0", "2c", "one plaintext connection sending QoS 0 readings as fast as "
             "its socket takes them, with the rate limits off",
             lambda h: h.engine("noread", port=h.ports["plain"], n=1, src="127.0.0.2",
                                max_bytes=1 << 40, qos=0),
             "a connection is read at most 64 KiB per loop turn (READ_BUDGET), then the others "
             "are served and the turn's group commit runs",
             plain={"max_message_rate": "0", "max_byte_rate": "0"},
             note="max_message_rate = 0, max_byte_rate = 0 on the plaintext listener"),
    Scenario("subscribe", "3a", "{n} valid devices sending SUBSCRIBE with 256 filters in a "
             "loop, 8 unanswered each (no [downlink]: every filter refused)", subflood,
             "256 filters per SUBSCRIBE at most; refusals logged at most 1000 per 10 s "
             "(log_suppressed); no rate limit on SUBSCRIBE",
             sizes={"n": (4, 2)}),
    Scenario("subscribe-downlink", "3b", "the same SUBSCRIBE flood ({n} devices) with "
             "[downlink] on (16 subscriptions per device kept, the rest refused)", subflood,
             "16 subscriptions per device, 256 filters per SUBSCRIBE; log_suppressed; no rate "
             "limit on SUBSCRIBE",
             sizes={"n": (4, 2)},
             downlink={"topic": "commands/{gateway}/{device}/{command}"},
             note="[downlink] topic = commands/{gateway}/{device}/{command}"),
    Scenario("passwords", "4a", "{rate} wrong passwords/s on the server-TLS password "
             "listener, from 4 addresses", passwords,
             "PBKDF2 on 2 worker threads, at most 64 waiting (CONNACK 3 beyond); "
             "auth_backoff_after = 10 per address",
             sizes={"rate": (200, 100)}, password_probe=True),
    Scenario("passwords-nobackoff", "4b", "the same {rate} wrong passwords/s with "
             "auth_backoff_after = 0", passwords,
             "PBKDF2 on 2 worker threads, at most 64 waiting (CONNACK 3 beyond)",
             sizes={"rate": (200, 100)}, gateway={"auth_backoff_after": "0"},
             note="auth_backoff_after = 0", password_probe=True),
    Scenario("connect-close", "5a", "{rate} new TCP connections/s from one address, closed "
             "at once (device listener)",
             lambda h: h.engine("connflood", port=h.ports["devices"], rate=h.sz["rate"],
                                max=10 ** 6, srcs=["127.0.0.2"], reset=False),
             "max_connection_rate_per_address (100/s), max_handshakes_per_address (128)",
             sizes={"rate": (2000, 500)}),
    Scenario("connect-idle", "5b", "idle TCP connections from one address, up to {n} "
             "(opened at 1000/s, again when closed; device listener)",
             lambda h: swarm(h, "devices", ["127.0.0.2"], h.sz["n"], open_rate=1000,
                             payload="idle"),
             "max_connection_rate_per_address (100/s), max_handshakes_per_address (128), "
             "handshake_timeout (10 s)",
             sizes={"n": (5000, 500)}),
    Scenario("hello-replay", "6a", "a canned TLS 1.3 ClientHello replayed {rate}/s from one "
             "address (device listener)",
             lambda h: h.engine("hellos", port=h.ports["devices"], rate=h.sz["rate"],
                                max=10 ** 6, srcs=["127.0.0.2"]),
             "max_connection_rate_per_address (100/s), max_handshakes_per_address (128)",
             sizes={"rate": (2000, 500)}),
    Scenario("slow-hello", "6b", "{total} partial ClientHellos (100 bytes) held open, 100 "
             "from each of {addrs} addresses (device listener)",
             lambda h: swarm(h, "devices", addrs("127.0.1", h.sz["addrs"]), 100,
                             payload="hello"),
             "max_handshakes (1024 in all: a new connection evicts the oldest handshake "
             "without a complete ClientHello), max_handshakes_per_address (128), "
             "handshake_timeout (10 s)",
             sizes={"addrs": (50, 5), "total": (5000, 500)}),
    Scenario("partial-connect", "7a", "{total} partial CONNECTs of 16 KiB (all but the last "
             "byte) held open, 100 from each of {addrs} addresses (plaintext listener)",
             partial_connects("127.0.2", 100, 16384, 1 << 20),
             "max_preauth_memory (64M for all connections before CONNECT), 16 KiB at most "
             "each; connect_timeout (10 s)",
             sizes={"addrs": (50, 5), "total": (5000, 500)}),
    Scenario("partial-connect-1m", "7b", "{total} partial CONNECTs announcing 1 MiB "
             "(256 KiB sent) with max_packet_size = 1M, 30 from each of {addrs} addresses",
             partial_connects("127.0.3", 30, 1 << 20, 256 << 10),
             "the first packet before CONNECT is at most 16 KiB whatever max_packet_size "
             "says",
             sizes={"addrs": (50, 5), "total": (1500, 150)},
             gateway={"max_packet_size": "1M"}, note="max_packet_size = 1M"),
    Scenario("reset-storm", "8", "TCP connect+reset storm, {rate}/s from 40 addresses "
             "(device listener)",
             lambda h: h.engine("connflood", port=h.ports["devices"], rate=h.sz["rate"],
                                max=10 ** 6, srcs=addrs("127.0.4", 40), reset=True),
             "log lines of one event limited to 1000 per 10 s (log_suppressed); "
             "max_connection_rate_per_address",
             sizes={"rate": (2000, 500)}),
    Scenario("id-churn", "9", "client ids rotated: {rate} plaintext connections/s from 20 "
             "addresses, each with a client id never used before, publishing one QoS 1 "
             "reading",
             lambda h: h.engine("churn", port=h.ports["plain"], rate=h.sz["rate"],
                                max=10 ** 6, srcs=addrs("127.0.6", 20), prefix="churn-"),
             "client ids and devices in SipHash tables with a random key (no chosen "
             "collisions); each new id is a device kept until forget_devices_after (90d) "
             "without it: memory and spool grow per id until then (see RSS)",
             sizes={"rate": (1000, 200)}),
    Scenario("spool-hog", "10a", "a runaway device flooding (window 1000, rate limits off) "
             "while the upstream drains slowly (inflight = 1) into a spool of {max} readings",
             flood,
             "fair_share (default): from half full, a device holding more than max_messages "
             "/ devices competing is not read; the others are",
             sizes={"max": (200000, 20000)},
             devices={"max_message_rate": "0", "max_byte_rate": "0"},
             spool={"max_messages": "{max}"}, upstream={"inflight": "1"},
             note="max_message_rate = 0, max_byte_rate = 0; [spool] max_messages = 200000 "
                  "(smoke: 20000); [upstream] inflight = 1"),
    Scenario("spool-hog-unfair", "10b", "the same runaway with fair_share = no",
             flood,
             "only the spool's limit: at it every device is held back, and read again in "
             "turns as the upstream drains",
             sizes={"max": (200000, 20000)},
             devices={"max_message_rate": "0", "max_byte_rate": "0"},
             spool={"max_messages": "{max}", "fair_share": "no"},
             upstream={"inflight": "1"},
             note="as 10a, and [spool] fair_share = no"),
]


# ---- the harness ----------------------------------------------------------------------

class Attack:
    """A hostile process whose last stdout line is its JSON summary."""

    def __init__(self, h, proc, out_path):
        self.h, self.proc, self.out_path = h, proc, out_path

    def stop(self):
        cpu = None
        try:
            cpu = bench.cpu_seconds(self.proc.pid)
        except (OSError, IndexError):
            pass
        status = self.h.procs.stop(self.proc, timeout=15)
        res = None
        try:
            with open(self.out_path) as f:
                res = bench.last_json(f.read())
        except OSError:
            pass
        res = dict(res or {})
        res["exit_status"] = status
        res["cpu_s"] = cpu
        return res


class Hostile(bench.Env):
    """bench.Env's upstream and device helpers, without its syscall counter."""

    def __init__(self, args, tmp, procs, loadgen, pki):
        self.args = argparse.Namespace(tls="1.3", json=False)
        self.opts = args
        self.tmp, self.procs, self.loadgen, self.pki = tmp, procs, loadgen, pki
        self.state_root = args.state_dir or tmp
        os.makedirs(self.state_root, exist_ok=True)
        self.up_port = self.upstream = None
        self.ports = {}
        self.pwfile = self.make_pwfile()

    def make_pwfile(self):
        """victim (the attacker's target) and pwhonest, at iotgw passwd's 20 000 iterations."""
        lines = []
        for dev, pw in (("victim", "victim-right-password"),
                        ("pwhonest", "pwhonest-right-password")):
            salt = os.urandom(16)
            h = hashlib.pbkdf2_hmac("sha256", pw.encode(), salt, 20000, 32)
            lines.append(f"{dev}:$iotgw-pbkdf2-sha256$20000$"
                         f"{base64.b64encode(salt).decode()}${base64.b64encode(h).decode()}")
        path = os.path.join(self.tmp, "devices.passwd")
        bench.write(path, "\n".join(lines) + "\n")
        os.chmod(path, 0o640)
        return path

    # -- processes --

    def start_gateway(self, sc, name):
        binary = self.opts.iotgw
        if not binary or not os.access(binary, os.X_OK):
            raise BenchError(f"iotgw binary not found: {binary!r} (set IOTGW_BIN or run make)")
        self.ports = dict(zip(("devices", "plain", "pw"), free_ports(3)))
        state = os.path.join(self.state_root, f"state-{name}")
        shutil.rmtree(state, ignore_errors=True)
        gwx = "".join(f"{k} = {v}\n" for k, v in sc.gateway.items())
        devx = "".join(f"{k} = {v}\n" for k, v in sc.devices.items())
        plx = "".join(f"{k} = {v}\n" for k, v in sc.plain.items())
        spx = "".join(f"{k} = {str(v).format(**self.sz)}\n" for k, v in sc.spool.items())
        upx = "".join(f"{k} = {v}\n" for k, v in sc.upstream.items())
        dl = ""
        if sc.downlink:
            dl = "\n[downlink]\n" + "".join(f"{k} = {v}\n" for k, v in sc.downlink.items())
        conf = f"""# iotgw hostile-load configuration (generated); limits at their defaults
[gateway]
name = {name}
{gwx}
[listener devices]
bind = 127.0.0.1:{self.ports['devices']}
tls = mutual
cert = {self.p('gateway.pem')}
key = {self.p('gateway.key')}
ca = {self.p('devices-ca.pem')}
{devx}
[listener plain]
bind = 127.0.0.1:{self.ports['plain']}
tls = off
{plx}
[listener pw]
bind = 127.0.0.1:{self.ports['pw']}
tls = server
cert = {self.p('gateway.pem')}
key = {self.p('gateway.key')}
password_file = {self.pwfile}

[upstream]
host = 127.0.0.1
port = {self.up_port}
client_id = iotgw-{name}
tls = mutual
ca = {self.p('upstream-ca.pem')}
cert = {self.p('gateway-upstream.pem')}
key = {self.p('gateway-upstream.key')}
topic = sensors/{{gateway}}/{{event}}/{{device}}
{upx}{dl}
[spool]
dir = {state}
{spx}"""
        path = bench.write(os.path.join(self.tmp, f"iotgw-{name}.conf"), conf)
        r = subprocess.run([binary, "-t", "-c", path], capture_output=True, text=True,
                           timeout=30)
        if r.returncode:
            raise BenchError(f"iotgw -t rejected the configuration:\n{r.stderr}")
        gw = self.procs.spawn(f"iotgw ({name})", [binary, "-c", path, "--log-stderr"],
                              os.path.join(self.tmp, f"iotgw-{name}.log"))
        bench.wait_log(gw, "event=gateway_ready", 15)
        return gw

    def start_counter(self, name):
        argv = [self.loadgen, "sub", "-p", str(self.up_port), "--ca", self.p("upstream-ca.pem"),
                "--cert", self.p("counter.pem"), "--key", self.p("counter.key"),
                "--prefix", f"counter-{name}-", "--filter", f"sensors/{name}/status/#",
                "--qos", "1", "-m", "0", "-T", "3600"]
        c = self.procs.spawn("counter", argv, os.path.join(self.tmp, f"counter-{name}.log"),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        if not read_json_line(c, 15, "subscribed"):
            self.procs.stop(c)
            raise BenchError("the counter could not subscribe upstream:\n"
                             + log_tail(c.bench_log))
        return c

    def counted(self, counter):
        try:
            counter.stdin.write(b"count\n")
            counter.stdin.flush()
        except OSError:
            return None
        ev = read_json_line(counter, 5, "count")
        return ev["received"] if ev else None

    def opens(self, rate):
        """A bound on the connections a swarm opens: enough to go on at `rate` per second
        through the whole load."""
        return int(rate * (self.during + 10))

    def engine(self, kind, **params):
        """An attacker of this file (ATTACKS[kind]) with these parameters."""
        params.setdefault("seconds", self.during + 30)
        return self.spawn_attack(f"attack {kind}", [
            sys.executable or "/usr/bin/python3", os.path.abspath(__file__), "--attack", kind,
            "--params", json.dumps(params)])

    def loadgen_attack(self, mode, extra):
        """loadgen as valid devices (minted certificates) from 127.0.0.2."""
        return self.spawn_attack(f"loadgen {mode}", self.device_args(
            mode, self.ports["devices"]) + ["--bind", "127.0.0.2", "-T",
                                           str(self.during + 30)] + extra)

    def spawn_attack(self, name, argv):
        out = os.path.join(self.tmp, f"attack-{self.run_name}.out")
        f = open(out, "wb")
        try:
            proc = self.procs.spawn(name, argv,
                                    os.path.join(self.tmp, f"attack-{self.run_name}.log"),
                                    stdout=f)
        finally:
            f.close()
        return Attack(self, proc, out)

    # -- probes: new honest devices --

    def probe_connect(self, n, tag):
        """n new mutual-TLS devices from 127.0.0.1 (2 at a time): how many got a CONNACK and
        how long it took (connect to CONNACK)."""
        argv = self.device_args("conn", self.ports["devices"]) + [
            "-n", str(n), "--prefix", f"new{tag}-", "--max-handshakes", "2",
            "-T", "30", "--connect-timeout", "15"]
        p = self.procs.spawn("loadgen conn (new devices)", argv,
                             os.path.join(self.tmp, f"probe-{self.run_name}.log"),
                             stdout=subprocess.PIPE)
        try:
            res = result_line(p, 45)
        finally:
            self.procs.stop(p)
        if not res:
            return {"tried": n, "ok": 0, "connack_p99_ms": None}
        return {"tried": n, "ok": res["handshakes"],
                "connack_p50_ms": res["connack_p50_ms"] if res["handshakes"] else None,
                "connack_p99_ms": res["connack_p99_ms"] if res["handshakes"] else None}

    def probe_password(self, n):
        """n logins of pwhonest (right password) from 127.0.0.1, one after the other:
        CONNACK 0 count and connect-to-CONNACK times."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.p("devices-ca.pem"))
        ok, times = 0, []
        for _ in range(n):
            t0 = time.monotonic()
            s = None
            try:
                s = socket.create_connection(("127.0.0.1", self.ports["pw"]), timeout=15)
                s = ctx.wrap_socket(s, server_hostname="localhost")
                s.sendall(connect_pkt("pwhonest", "pwhonest", "pwhonest-right-password"))
                data = b""
                while len(data) < 4:
                    chunk = s.recv(4 - len(data))
                    if not chunk:
                        break
                    data += chunk
                if data[:2] == b"\x20\x02" and data[3] == 0:
                    ok += 1
                    times.append((time.monotonic() - t0) * 1000)
            except (OSError, ssl.SSLError):
                pass
            finally:
                if s:
                    s.close()
        return {"tried": n, "ok": ok, "p50_ms": pct(times, 0.5),
                "max_ms": max(times) if times else None}

    # -- one scenario --

    def run(self, idx, sc):
        a = self.opts
        self.before, self.during, self.after = a.before, a.during, a.after
        name = f"h{idx}-{sc.key}"
        self.run_name = name
        self.sz = sc.sized(a.smoke)
        res = {"key": sc.key, "num": sc.num, "title": sc.describe(a.smoke),
               "answer": sc.answer,
               "limits": sc.note or "defaults", "phases": {}, "problems": []}
        self.log(f"\n[{sc.num}] {sc.key}: {res['title']}"
                 + (f" ({sc.note})" if sc.note else " (default limits)"))
        gw = self.start_gateway(sc, name)
        sampler = Sampler(gw.pid)
        counter = honest = attack = None
        survived = True
        try:
            counter = self.start_counter(name)
            total = self.before + self.during + self.after
            argv = self.device_args("pub", self.ports["devices"]) + [
                "-n", str(a.devices), "-m", "1000000000", "-w", "10", "--rate", str(a.rate),
                "-T", str(total + 300), "--prefix", "honest", "--topic", HONEST_TOPIC,
                "--go-line", "--phases", "--drain", "30"]
            honest = self.procs.spawn("loadgen pub (honest devices)", argv,
                                      os.path.join(self.tmp, f"honest-{name}.log"),
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            up = read_json_line(honest, 60, "connected")
            if not up or up["failed"]:
                raise BenchError(f"the honest devices did not all connect "
                                 f"({up['failed'] if up else '?'} failed):\n"
                                 + log_tail(honest.bench_log) + "\n  gateway log:\n"
                                 + log_tail(gw.bench_log))
            bench.wait_cpu_quiet(gw, max_wait=2.0)
            for phase, secs in zip(PHASES, (self.before, self.during, self.after)):
                def begin():
                    # The honest devices' phase and the gateway's figures start together;
                    # the attack starts (or is stopped) inside the phase.
                    nonlocal attack
                    honest.stdin.write(b"go\n" if phase == "before" else b"next\n")
                    honest.stdin.flush()
                    if phase == "during":
                        attack = sc.attack(self)
                    elif phase == "after" and attack:
                        res["attacker"] = attack.stop()
                        attack = None
                res["phases"][phase] = self.phase(gw, sampler, phase, secs, sc, begin)
                if gw.poll() is not None:
                    survived = False
                    res["problems"].append(f"the gateway died during '{phase}' (status "
                                           f"{gw.returncode}):\n" + log_tail(gw.bench_log))
                    break
            if attack:
                res["attacker"] = attack.stop()
                attack = None
            honest.stdin.write(b"end\n")
            honest.stdin.flush()
            pub = result_line(honest, 60)
            if not pub:
                raise BenchError("the honest devices printed no result:\n"
                                 + log_tail(honest.bench_log))
            honest.stdin.close()
            self.procs.stop(honest)
            honest = None
            for ph, st in zip(PHASES, pub["phases"]):
                res["phases"][ph]["honest"] = {
                    "sent": st["sent"], "acked": st["acked"], "p50_ms": st["lat_p50_ms"],
                    "p99_ms": st["lat_p99_ms"], "max_ms": st["lat_max_ms"]}
            res["honest"] = {"sent": pub["sent"], "acked": pub["acked"],
                             "dropped": pub["dropped"], "failed": pub["failed"],
                             "unacked_at_end": pub["sent"] - pub["acked"]}
            after = res["phases"].get("after", {}).get("honest")
            if after and after["sent"] and not after["acked"]:
                survived = False
                res["problems"].append("no honest reading was acknowledged in the after phase "
                                       "(wedged)")
            # Every acknowledged honest reading must arrive upstream.
            got, last_change, prev = None, time.monotonic(), -1
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                got = self.counted(counter)
                if got is None or got >= pub["acked"]:
                    break
                if got != prev:
                    prev, last_change = got, time.monotonic()
                elif time.monotonic() - last_change > 30:
                    break
                time.sleep(0.25)
            res["honest"]["arrived"] = got
            lost = pub["acked"] - got if got is not None else None
            res["honest"]["lost"] = max(0, lost) if lost is not None else None
            if got is None or lost > 0:
                res["problems"].append(
                    f"{lost if lost is not None else '?'} acknowledged honest readings never "
                    "arrived upstream")
        finally:
            sampler.close()
            for p in (attack, ):
                if p:
                    res.setdefault("attacker", p.stop())
            for p in (honest, counter):
                if p:
                    self.procs.stop(p)
            if gw.poll() is not None:
                survived = False
                status = gw.returncode
            else:
                status = self.procs.stop(gw, timeout=20)
            res["exit_status"] = status
            if status != 0:
                survived = False
                res["problems"].append(f"iotgw did not exit 0 on SIGTERM (status {status}):\n"
                                       + log_tail(gw.bench_log, 6))
            res["survived"] = survived
        return res

    def phase(self, gw, sampler, phase, secs, sc, begin):
        """secs seconds of one phase (begin() starts it): the gateway's figures, the
        new-device probes halfway."""
        procs = self.procs
        sampler.take()
        t0, cpu0 = time.monotonic(), bench.cpu_seconds(gw.pid)
        busy0, tree0 = bench.system_busy_seconds(), tree_cpu(procs)
        log0 = os.path.getsize(gw.bench_log)
        probe = {}
        begin()

        def probes():
            time.sleep(secs * 0.4)
            probe["new_devices"] = self.probe_connect(self.opts.probe, f"{phase[0]}")
            if sc.password_probe:
                probe["password_logins"] = self.probe_password(self.opts.probe)

        t = threading.Thread(target=probes, daemon=True)
        t.start()
        end = t0 + secs
        while time.monotonic() < end and gw.poll() is None:
            time.sleep(min(0.1, max(0.0, end - time.monotonic())))
        t.join(max(1.0, end + 40 - time.monotonic()))
        t1 = time.monotonic()
        alive = gw.poll() is None
        cpu1 = bench.cpu_seconds(gw.pid) if alive else cpu0
        busy1, tree1 = bench.system_busy_seconds(), tree_cpu(procs)
        log1 = os.path.getsize(gw.bench_log)
        mx = sampler.take()
        rss = bench.rss_kib(gw.pid)["VmRSS"] if alive else None
        nfd = fds(gw.pid) if alive else None
        wall = t1 - t0
        out = {
            "seconds": wall,
            "gateway_cpu_pct": (cpu1 - cpu0) / wall * 100 if wall > 0 else None,
            "rss_kib": rss, "rss_max_kib": max(mx.get("rss_max", 0), rss or 0),
            "fds": nfd, "fds_max": max(mx.get("fds_max", 0), nfd or 0),
            "log_bytes": log1 - log0,
            "events": dict(log_events(gw.bench_log, log0, log1).most_common()),
            "other_cpu_s": max(0.0, (busy1 - busy0) - (tree1 - tree0)),
            "ours_cpu_s": tree1 - tree0,
        }
        out.update(probe)
        nd = probe.get("new_devices") or {}
        self.log(f"  {phase:7s} {wall:5.1f} s: gateway CPU {out['gateway_cpu_pct']:5.1f} %, "
                 f"RSS {fmt_mib(rss)} MiB (max {fmt_mib(out['rss_max_kib'])}), fds {nfd} "
                 f"(max {out['fds_max']}), log {out['log_bytes'] / 1024:.0f} KiB, new devices "
                 f"{nd.get('ok', '?')}/{nd.get('tried', '?')}, other processes "
                 f"{out['other_cpu_s']:.1f} CPU s")
        return out


# ---- report ---------------------------------------------------------------------------

def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def fmt_mib(kib):
    return "n/a" if kib is None else f"{kib / 1024:.1f}"


# What the attacker's summary says that is not context (loadgen prints its whole result).
ATTACKER_SKIP = {"exit_status", "cpu_s", "seconds", "mode", "connections", "failed", "refused",
                 "dropped", "timed_out", "wall_seconds", "connect_seconds", "cpu_user",
                 "cpu_sys", "max_rss_kib", "window", "messages", "rate_per_conn", "filters",
                 "seconds", "lat_lost", "lat_unmatched"}


def describe_attacker(r):
    a = r.get("attacker") or {}
    if not a:
        return "n/a"
    parts = [f"{k} {v}" for k, v in a.items() if k not in ATTACKER_SKIP
             and not isinstance(v, (dict, list)) and v is not None
             and not k.startswith("lat_") and not k.startswith("t_")]
    cpu = a.get("cpu_s")
    return ", ".join(parts) + (f"; attacker CPU {cpu:.1f} s" if cpu is not None else "")


# Logged for the new-device probes in every phase (loadgen's minted certificates expire in
# two days: cert_expiring), not for the attack.
PROBE_EVENTS = {"cert_expiring", "device_connected", "device_disconnected"}


def print_scenario(r, out=sys.stdout):
    w = out.write
    w(f"\n== {r['num']} {r['key']}: {r['title']}\n")
    w(f"   limits: {r['limits']}; honest devices from {HONEST_ADDR}\n")
    if r.get("error"):
        w(f"   FAILED: {r['error']}\n")
    if r.get("attacker"):
        w(f"   attacker: {describe_attacker(r)}\n")
    w(f"   {'phase':8}{'secs':>6}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'sent':>7}{'acked':>7}"
      f"{'new dev':>9}{'CONNACK':>9}{'gw CPU':>8}{'RSS MiB':>9}{'(max)':>8}{'fds':>6}"
      f"{'(max)':>7}{'log KiB':>9}{'other':>7}\n")
    w(f"   {'':8}{'':6}{'honest PUBACK':>27}{'':14}{'ok':>9}{'p99 ms':>9}{'%':>8}"
      f"{'':>30}{'CPU s':>16}\n")
    for ph in PHASES:
        x = r["phases"].get(ph)
        if not x:
            continue
        hd = x.get("honest", {})
        nd = x.get("new_devices", {})
        newdev = f"{nd['ok']}/{nd['tried']}" if nd else "n/a"
        w(f"   {ph:8}{x['seconds']:6.1f}{fmt(hd.get('p50_ms'), '.2f'):>9}"
          f"{fmt(hd.get('p99_ms'), '.2f'):>9}{fmt(hd.get('max_ms'), '.1f'):>9}"
          f"{fmt(hd.get('sent'), 'd'):>7}{fmt(hd.get('acked'), 'd'):>7}{newdev:>9}"
          f"{fmt(nd.get('connack_p99_ms'), '.1f'):>9}{fmt(x['gateway_cpu_pct'], '.1f'):>8}"
          f"{fmt_mib(x['rss_kib']):>9}{fmt_mib(x['rss_max_kib']):>8}{fmt(x['fds'], 'd'):>6}"
          f"{fmt(x['fds_max'], 'd'):>7}{x['log_bytes'] / 1024:9.0f}{x['other_cpu_s']:7.1f}\n")
    for ph in PHASES:
        x = r["phases"].get(ph) or {}
        pw = x.get("password_logins")
        if pw:
            w(f"   honest password logins {ph}: {pw['ok']}/{pw['tried']} accepted, "
              f"p50 {fmt(pw['p50_ms'], '.0f')} ms, max {fmt(pw['max_ms'], '.0f')} ms\n")
    ev = {k: v for k, v in ((r["phases"].get("during") or {}).get("events") or {}).items()
          if k not in PROBE_EVENTS}
    if ev:
        w("   events logged during the load: "
          + ", ".join(f"{k} {v}" for k, v in list(ev.items())[:6]) + "\n")
    hn = r.get("honest")
    if hn:
        w(f"   honest readings: {hn['acked']} acknowledged, {fmt(hn.get('arrived'), 'd')} "
          f"arrived upstream, {fmt(hn.get('lost'), 'd')} lost; {hn['unacked_at_end']} never "
          f"acknowledged; {hn['dropped']} honest connections dropped by the gateway\n")
    w(f"   gateway survived: {'yes' if r.get('survived') else 'NO'} (exit status "
      f"{r.get('exit_status')})\n")
    w(f"   answered by: {r['answer']}\n")
    for p in r.get("problems", []):
        w(f"   PROBLEM: {p}\n")
    out.flush()


def summary_rows(results):
    rows = []
    for r in results:
        ph = r["phases"]

        def g(p, *path):
            v = ph.get(p) or {}
            for k in path:
                v = v.get(k) if isinstance(v, dict) else None
            return v
        nd = g("during", "new_devices") or {}
        log = g("during", "log_bytes")
        rows.append({
            "scenario": f"{r['num']} {r['key']}",
            "title": r["title"],
            "p50": [g(p, "honest", "p50_ms") for p in PHASES],
            "p99": [g(p, "honest", "p99_ms") for p in PHASES],
            "new": f"{nd['ok']}/{nd['tried']}" if nd else "n/a",
            "connack_p99": nd.get("connack_p99_ms"),
            "cpu": [g(p, "gateway_cpu_pct") for p in PHASES],
            "rss": [g("before", "rss_kib"), g("during", "rss_max_kib"), g("after", "rss_kib")],
            "fds": [g("before", "fds"), g("during", "fds_max"), g("after", "fds")],
            "log_kib": log / 1024 if log is not None else None,
            "other": sum((g(p, "other_cpu_s") or 0) for p in PHASES),
            "lost": (r.get("honest") or {}).get("lost"),
            "survived": r.get("survived"),
            "answer": r["answer"],
            "limits": r["limits"],
        })
    return rows


def joined(values, spec):
    return " / ".join(fmt(v, spec) if spec != "mib" else fmt_mib(v) for v in values)


def print_summary(results, meta, markdown=False):
    rows = summary_rows(results)
    if markdown:
        print(f"\n`{meta['command']}`, {meta['date']}, commit {meta['commit']}, "
              f"{meta['machine']}, {meta['cpus']} CPUs; {meta['honest']}.\n")
        print("| scenario | honest PUBACK p50 ms before / during / after | p99 ms before / "
              "during / after | new devices during: ok, CONNACK p99 ms | gateway CPU % before "
              "/ during / after | RSS MiB before / max during / after | fds before / max "
              "during / after | log KiB during | other processes CPU s | lost | survived |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['scenario']}: {r['title']} | {joined(r['p50'], '.1f')} | "
                  f"{joined(r['p99'], '.1f')} | {r['new']}, {fmt(r['connack_p99'], '.0f')} | "
                  f"{joined(r['cpu'], '.0f')} | {joined(r['rss'], 'mib')} | "
                  f"{joined(r['fds'], 'd')} | {fmt(r['log_kib'], ',.0f')} | {r['other']:.0f} | "
                  f"{fmt(r['lost'], 'd')} | {'yes' if r['survived'] else '**no**'} |")
        print("\n| scenario | limits changed | answered by |")
        print("|---|---|---|")
        for r in rows:
            print(f"| {r['scenario']} | {r['limits']} | {r['answer']} |")
        return
    print(f"\nsummary ({meta['honest']}; {meta['machine']}, {meta['cpus']} CPUs"
          f"{'; --smoke: tiny numbers, not figures' if meta['smoke'] else ''})")
    print(f"{'':22}{'honest PUBACK p99 ms':>24}{'new devices':>14}{'gateway':>8}"
          f"{'RSS MiB':>22}{'fds':>6}{'log':>9}{'other':>7}")
    print(f"{'scenario':22}{'before/during/after':>24}{'ok, p99 ms':>14}{'CPU %':>8}"
          f"{'before/max/after':>22}{'max':>6}{'KiB':>9}{'CPU s':>7}{'lost':>6}  survived")
    for r in rows:
        print(f"{r['scenario']:22}{joined(r['p99'], '.1f'):>24}"
              f"{r['new'] + ', ' + fmt(r['connack_p99'], '.0f'):>14}{fmt(r['cpu'][1], '.0f'):>8}"
              f"{joined(r['rss'], 'mib'):>22}{fmt(r['fds'][1], 'd'):>6}"
              f"{fmt(r['log_kib'], ',.0f'):>9}{r['other']:7.1f}{fmt(r['lost'], 'd'):>6}  "
              f"{'yes' if r['survived'] else 'NO'}")


def git_commit():
    r = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                       capture_output=True, text=True, timeout=10)
    return r.stdout.strip() or "?"


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--attack":
        ap = argparse.ArgumentParser()
        ap.add_argument("--attack", choices=sorted(ATTACKS), required=True)
        ap.add_argument("--params", required=True)
        a = ap.parse_args()
        return attack_main(a.attack, json.loads(a.params))
    keys = [s.key for s in SCENARIOS]
    ap = argparse.ArgumentParser(
        description="iotgw under hostile load: honest devices measured beside each attack")
    ap.add_argument("--smoke", action="store_true",
                    help="every scenario with tiny numbers and short phases (1.5/2.5/1.5 s): "
                    "checks that the suite works, about 2 minutes (CI)")
    ap.add_argument("--only", action="append", metavar="NAME",
                    help="run these scenarios only (repeat, or comma-separated): "
                    + ", ".join(keys))
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--before", type=float, help="seconds without load (10)")
    ap.add_argument("--during", type=float, help="seconds of hostile load (20)")
    ap.add_argument("--after", type=float, help="seconds after the load (10)")
    ap.add_argument("--devices", type=int, default=20, help="honest devices (20)")
    ap.add_argument("--rate", type=float, default=10.0,
                    help="readings/s per honest device (10)")
    ap.add_argument("--probe", type=int,
                    help="new honest devices connecting in each phase (10; smoke 4)")
    ap.add_argument("--state-dir", help="where the spools go (default: the temporary "
                    "directory)")
    ap.add_argument("--iotgw", default=os.environ.get("IOTGW_BIN",
                                                      os.path.join(ROOT, "build", "iotgw")),
                    help="iotgw binary (default $IOTGW_BIN or build/iotgw)")
    ap.add_argument("--markdown", action="store_true",
                    help="also print the summary as a Markdown table")
    ap.add_argument("--json", metavar="FILE", help="write every figure to FILE as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if args.list:
        for s in SCENARIOS:
            print(f"{s.key:22}{s.num:4}  {s.describe(args.smoke)}")
        return 0
    only = []
    for o in args.only or []:
        only += [x for x in o.split(",") if x]
    bad = [o for o in only if o not in keys]
    if bad:
        ap.error(f"unknown scenario {', '.join(bad)}; one of: {', '.join(keys)}")
    for k, full, smoke in (("before", 10.0, 1.5), ("during", 20.0, 2.5), ("after", 10.0, 1.5),
                           ("probe", 10, 4)):
        if getattr(args, k) is None:
            setattr(args, k, smoke if args.smoke else full)
    if not (0.5 <= args.before <= 600 and 0.5 <= args.during <= 600 and 0.5 <= args.after <= 600
            and 1 <= args.devices <= 1000 and 0.1 <= args.rate <= 1000
            and 1 <= args.probe <= 100):
        ap.error("out of range: --before/--during/--after 0.5..600, --devices 1..1000, "
                 "--rate 0.1..1000, --probe 1..100")
    scenarios = [s for s in SCENARIOS if not only or s.key in only]

    procs = bench.Procs()

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    tmp = tempfile.mkdtemp(prefix="iotgw-hostile.")
    meta = {
        "command": " ".join(["bench/hostile.py"] + sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": git_commit(),
        "machine": f"{os.uname().sysname} {os.uname().release} {os.uname().machine}",
        "cpus": os.cpu_count(), "smoke": args.smoke,
        "honest": f"{args.devices} honest mutual-TLS devices x {args.rate:g} QoS 1 readings/s, "
                  f"phases {args.before:g}/{args.during:g}/{args.after:g} s",
    }
    results = []
    failed = interrupted = False
    t_start = time.monotonic()
    try:
        loadgen = bench.build_loadgen(tmp)
        pki = bench.make_pki(tmp)
        h = Hostile(args, tmp, procs, loadgen, pki)
        h.start_upstream()
        h.log(f"iotgw {args.iotgw}; upstream mosquitto on 127.0.0.1:{h.up_port} (pid "
              f"{h.upstream.pid}); {meta['honest']}; temporary files in {tmp}")
        for i, sc in enumerate(scenarios):
            try:
                r = h.run(i + 1, sc)
            except BenchError as e:
                r = {"key": sc.key, "num": sc.num, "title": sc.describe(args.smoke),
                     "answer": sc.answer,
                     "limits": sc.note or "defaults", "phases": {}, "error": str(e),
                     "problems": [str(e)], "survived": False}
            results.append(r)
            if r.get("problems") or not r.get("survived"):
                failed = True
            print_scenario(r)
            if h.upstream.poll() is not None:
                raise BenchError("the upstream mosquitto died:\n"
                                 + log_tail(h.upstream.bench_log))
    except BenchError as e:
        failed = True
        print(f"hostile: {e}", file=sys.stderr)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        procs.stop_all()
    meta["seconds"] = round(time.monotonic() - t_start, 1)
    if interrupted:
        print("hostile: interrupted", file=sys.stderr)
    elif results:
        report(results, meta, args, len(scenarios), failed)
    code = 130 if interrupted else 1 if failed else 0
    if code == 1 or args.keep:
        print(f"hostile: logs and configuration kept in {tmp}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return code


def report(results, meta, args, planned, failed):
    """The summary (and the Markdown table, the JSON file) after the scenarios."""
    print_summary(results, meta)
    if args.markdown:
        print_summary(results, meta, markdown=True)
    noisy = [r for r in results if any((x.get("other_cpu_s") or 0) > 1.0
                                       for x in r["phases"].values())]
    if noisy:
        print("\nnote: other processes used the CPUs during "
              + ", ".join(r["key"] for r in noisy)
              + " (column 'other'): those figures are noisy.")
    print(f"\n{len(results)} of {planned} scenarios ran in {meta['seconds']:.0f} s"
          + ("; FAILED: " + ", ".join(r["key"] for r in results
                                      if r.get("problems") or not r.get("survived"))
             if failed else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
