"""Counted load: devices on raw sockets publishing numbered readings at a steady rate
(LoadDevice, Load), and the upstream tally matching arrivals against what was PUBACKed
(Tally, wait_tally).

Reading number n (1, 2, ...) of a device travels as the plain-number payload "n/100" (two
decimals, e.g. n = 1234 -> "12.34"): the gateway forwards temperature_c = n / 100 exactly
(it rounds to hundredths), so every upstream message names the reading it came from, and
the device is the message's "device" (the MQTT client id on a plaintext listener). The
gateway's per-device seq is checked separately: readings can arrive twice (a re-sent
PUBLISH, a re-sent upstream message), so seq cannot be the key."""

import select
import socket
import threading
import time

from .env import WAIT
from .gateway import Gateway
from .packets import CONNACK_OK, PINGREQ, PINGRESP, connect_pkt, publish_pkt
from .util import wait_until


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
