#!/usr/bin/python3
"""iotgw benchmark: iotgw against a Mosquitto bridge, side by side, in one run.

Figures (issue 8's goal table, for both systems and the iotgw/bridge ratio): gateway CPU per
100k readings, readings/s, device PUBACK latency (throughput and light load), CPU per 1000
full mutual-TLS handshakes, memory per idle mutual-TLS connection, syscalls and fsyncs per
reading. Everything runs on loopback and is bounded in count and time. In one run it:

  * builds bench/loadgen.c (cc, OpenSSL) into a temporary directory,
  * makes a throw-away PKI there with tools/iotgw-pki,
  * starts an upstream mosquitto with a mutual-TLS listener on a free port,
  * for each system under test (iotgw, then mosquitto configured as a TLS bridge):
      - starts it with a mutual-TLS device listener forwarding to the upstream over mutual TLS,
      - memory: VmRSS with 0 connections, then with K idle mutual-TLS MQTT connections,
      - handshakes: H new connections (full mutual-TLS handshake, no resumption, CONNECT,
        CONNACK, DISCONNECT, close), at most 32 in progress; gateway CPU per 1000,
      - a warm-up run, then a light-load run (20 devices x 10 readings/s for 10 s, QoS 1),
      - R timed throughput runs: loadgen publishes M QoS 1 readings over N device
        connections while a counter subscribed upstream waits for all M to arrive,
      - CPU seconds of the gateway process per 100k readings (/proc/PID/stat), PUBACK
        latency percentiles (loadgen matches every PUBACK to its PUBLISH), and the
        gateway's syscalls in one more run, counted and not timed (perf stat -e
        raw_syscalls:sys_enter -p PID, if perf works; fsync/fdatasync calls as well: perf's
        cost per syscall would tilt the timed figures); for iotgw also the fsyncs its status
        file counts (fsyncs_total) over the light-load run and over the timed runs,
  * durability (group commit): iotgw again, once with [spool] durability = fsync and once
    with durability = os, a fresh spool each: a warm-up, then one run of D readings; the
    commits and fsyncs the gateway issued during the run come from its STATE/status file
    (commits_total, fsyncs_total: real xSync calls counted by its SQLite VFS shim), giving
    commits/s, fsyncs/s and readings per fsync,
  * monitoring cost: iotgw with [metrics] on, one run of S readings each with no scraper,
    with a scrape of /metrics every second, and with one client scraping back to back:
    readings/s against the run without a scraper, gateway CPU, PUBACK p99,
  * reconnect storm: K devices connected, the server restarted; the time until all are back
    and the server's CPU (iotgw with TLS sessions kept and not kept, the bridge),
  * scaling with [gateway] threads (issue 14): for each count in --threads (1,2), a fresh
    iotgw with threads = N: memory per idle connection, the handshake run (concurrent
    handshakes from --threads-loadgens load generator processes, so that neither the
    gateway nor one loadgen thread is handed them one at a time), which thread did the
    work (/proc/PID/task), and the storm with sessions kept and not kept; a table with
    each count's figures and the ratio to the first count's,
  * prints a table (or JSON with --json).

--smoke runs every step with tiny numbers (for CI: it checks that the benchmark still works,
not how fast anything is).

Exit status: 0 when every measurement completed, 1 when something broke (a process died,
a connection failed, readings did not all arrive), 2 on bad usage. Slowness is not a failure.
Every process started here is stopped by PID, also on failure and Ctrl-C.
"""

import argparse
import json
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """Something broke (as opposed to: something was slow)."""


# ---- processes ------------------------------------------------------------------------

class Procs:
    """Every child process, so that all of them can be stopped by PID whatever happens."""

    def __init__(self):
        self.procs = []

    def spawn(self, name, argv, log_path, stdin=subprocess.DEVNULL, stdout=None, env=None):
        log = open(log_path, "ab")
        try:
            p = subprocess.Popen(argv, stdin=stdin, stdout=stdout if stdout else log,
                                 stderr=log, env=env, start_new_session=True)
        finally:
            log.close()
        p.bench_name = name
        p.bench_log = log_path
        self.procs.append(p)
        return p

    def stop(self, p, timeout=10.0):
        """SIGTERM, wait, SIGKILL. Returns the exit status (None if it had to be killed)."""
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
                self.forget(p)
                return None
        self.forget(p)
        return p.returncode

    def forget(self, p):
        for f in (p.stdin, p.stdout):
            if f:
                try:
                    f.close()
                except OSError:
                    pass
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in reversed(list(self.procs)):
            self.stop(p, timeout=5.0)


def log_tail(path, lines=15):
    try:
        with open(path, "rb") as f:
            data = f.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + s for s in data[-lines:])


def share_of(total, parts, i):
    """Part i of total split into parts as evenly as integers allow."""
    return total // parts + (1 if i < total % parts else 0)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout):
    """Wait until something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{proc.bench_name} exited with status {proc.returncode}:\n"
                             + log_tail(proc.bench_log))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{proc.bench_name} is not listening on port {port} after {timeout:.0f} s:\n"
                     + log_tail(proc.bench_log))


def wait_log(proc, needle, timeout, count=1):
    """Wait until the process's log contains needle (count times: a restarted process
    appends to the same log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(proc.bench_log, "rb") as f:
                if f.read().count(needle.encode()) >= count:
                    return
        except OSError:
            pass
        if proc.poll() is not None:
            raise BenchError(f"{proc.bench_name} exited with status {proc.returncode}:\n"
                             + log_tail(proc.bench_log))
        time.sleep(0.05)
    raise BenchError(f"{proc.bench_name}: no '{needle}' in its log after {timeout:.0f} s:\n"
                     + log_tail(proc.bench_log))


def read_json_line(proc, timeout, want=None):
    """Next JSON line on proc.stdout (optionally: the next one with event == want)."""
    deadline = time.monotonic() + timeout
    buf = getattr(proc, "bench_buf", b"")
    while True:
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            proc.bench_buf = buf
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if want is None or obj.get("event") == want:
                return obj
        left = deadline - time.monotonic()
        if left <= 0:
            proc.bench_buf = buf
            return None
        r, _, _ = select.select([proc.stdout], [], [], min(left, 0.5))
        if r:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                proc.bench_buf = buf
                return None
            buf += chunk


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def system_busy_seconds():
    """CPU seconds all CPUs spent not idle since boot (/proc/stat), to spot foreign load."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # Everything but idle and iowait, softirq included: loopback packets are processed in
    # softirq context and (without IRQ time accounting) charged to the processes' stime, so
    # leaving it out would make this run's own CPU exceed the machine's.
    return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK


def self_cpu_seconds():
    t = os.times()
    return t.user + t.system


def rss_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, val = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                out[key] = int(val.split()[0])
    return out


def os_threads(pid):
    """Threads of the process now (/proc/PID/status), or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def thread_cpu(pid):
    """{tid: (name, CPU seconds)} for every thread of the process (/proc/PID/task)."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                head, _, tail = f.read().rpartition(")")
            fields = tail.split()
            out[int(tid)] = (head.partition("(")[2],
                             (int(fields[11]) + int(fields[12])) / CLK_TCK)
        except (OSError, ValueError, IndexError):
            continue  # the thread ended meanwhile
    return out


def thread_cpu_delta(before, after):
    """Per-thread CPU between two thread_cpu() samples, busiest first: [{tid, name, cpu_s}]
    (threads that started in between count from 0, threads that ended are lost)."""
    rows = [{"tid": tid, "name": name, "cpu_s": round(cpu - before.get(tid, ("", 0.0))[1], 3)}
            for tid, (name, cpu) in after.items()]
    return sorted(rows, key=lambda r: -r["cpu_s"])


def settled_rss(proc, settle, max_wait=15.0, interval=1.0):
    """VmRSS once it stops moving: two samples `interval` s apart within 64 KiB, after
    `settle` s."""
    time.sleep(settle)
    deadline = time.monotonic() + max_wait
    prev = rss_kib(proc.pid)
    while True:
        time.sleep(interval)
        if proc.poll() is not None:
            raise BenchError(f"{proc.bench_name} died while measuring memory:\n"
                             + log_tail(proc.bench_log))
        cur = rss_kib(proc.pid)
        if abs(cur["VmRSS"] - prev["VmRSS"]) <= 64 or time.monotonic() > deadline:
            return cur
        prev = cur


def wait_cpu_quiet(proc, quiet=0.3, max_wait=5.0):
    """Wait (at most max_wait s) until the process used no CPU for `quiet` s: lets it finish
    what the previous step left (closing connections, a checkpoint) before a measurement."""
    deadline = time.monotonic() + max_wait
    last = cpu_seconds(proc.pid)
    since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if proc.poll() is not None:
            return
        cur = cpu_seconds(proc.pid)
        if cur != last:
            last, since = cur, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return


class SyscallCounter:
    """perf stat attached to a process, counting its syscalls (all threads, also threads it
    starts later) between start() and stop(). Counting starts disabled and is switched on
    and off through perf's control FIFOs, acknowledged, so the count covers exactly the
    run. Unavailable (reason in .note) when perf is missing or refuses."""

    EVENTS = ["raw_syscalls:sys_enter", "syscalls:sys_enter_fsync",
              "syscalls:sys_enter_fdatasync"]

    def __init__(self, tmp, procs, enabled=True):
        self.tmp, self.procs, self.n = tmp, procs, 0
        self.perf = shutil.which("perf")
        self.events, self.note = None, None
        if not enabled:
            self.note = "syscall counting off (--no-perf)"
            return
        if not self.perf:
            self.note = "perf not found: syscalls per reading not measured"
            return
        # All three events, else the syscall total alone, else nothing.
        for evs in (self.EVENTS, self.EVENTS[:1]):
            out = os.path.join(tmp, "perf-probe.out")
            r = subprocess.run([self.perf, "stat", "-x,", "-e", ",".join(evs), "-o", out,
                                "--", "true"], capture_output=True, text=True, timeout=30)
            if r.returncode == 0 and self._parse(out).get(evs[0]) is not None:
                self.events = evs
                return
        self.note = ("perf stat cannot count raw_syscalls:sys_enter here: syscalls per "
                     "reading not measured (" + (r.stderr.strip().splitlines() or ["?"])[-1]
                     + ")")

    @staticmethod
    def _parse(path):
        """perf stat -x, output: value,unit,event,... per line."""
        out = {}
        try:
            with open(path) as f:
                for line in f:
                    parts = line.strip().split(",")
                    if len(parts) >= 3 and parts[2]:
                        try:
                            out[parts[2]] = int(float(parts[0]))
                        except ValueError:
                            out[parts[2]] = None  # <not counted>, <not supported>
        except OSError:
            pass
        return out

    def _command(self, h, cmd, timeout=10.0):
        os.write(h["ctl"], cmd.encode() + b"\n")
        deadline = time.monotonic() + timeout
        buf = b""
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or h["proc"].poll() is not None:
                raise BenchError(f"perf stat did not acknowledge '{cmd}':\n"
                                 + log_tail(h["proc"].bench_log))
            r, _, _ = select.select([h["ack"]], [], [], min(left, 0.5))
            if r:
                buf += os.read(h["ack"], 64)

    def start(self, pid):
        """Attach to pid and start counting; returns a handle (None when unavailable)."""
        if not self.events:
            return None
        self.n += 1
        base = os.path.join(self.tmp, f"perf-{self.n}")
        ctl, ack, out = base + ".ctl", base + ".ack", base + ".out"
        os.mkfifo(ctl)
        os.mkfifo(ack)
        h = {"out": out, "ctl": None, "ack": os.open(ack, os.O_RDONLY | os.O_NONBLOCK)}
        h["proc"] = self.procs.spawn(
            "perf stat", [self.perf, "stat", "-x,", "-e", ",".join(self.events), "-p", str(pid),
                          "-o", out, "-D", "-1", "--control", f"fifo:{ctl},{ack}"],
            base + ".log")
        try:
            deadline = time.monotonic() + 10
            while h["ctl"] is None:  # perf opens the FIFO once its counters are set up
                try:
                    h["ctl"] = os.open(ctl, os.O_WRONLY | os.O_NONBLOCK)
                except OSError:
                    if h["proc"].poll() is not None or time.monotonic() > deadline:
                        raise BenchError("perf stat did not start:\n"
                                         + log_tail(h["proc"].bench_log))
                    time.sleep(0.02)
            self._command(h, "enable")
        except BaseException:
            self._close(h)
            raise
        return h

    def _close(self, h):
        for k in ("ctl", "ack"):
            if h.get(k) is not None:
                os.close(h[k])
                h[k] = None
        self.procs.stop(h["proc"])

    def stop(self, h):
        """Stop counting; {"syscalls": n, "fsync_calls": n or None}, or None."""
        if h is None:
            return None
        try:
            self._command(h, "disable")
            h["proc"].send_signal(signal.SIGINT)  # perf stat prints its counts on SIGINT
            try:
                h["proc"].wait(10)
            except subprocess.TimeoutExpired:
                pass
        finally:
            self._close(h)
        c = self._parse(h["out"])
        calls = c.get(self.EVENTS[0])
        if calls is None:
            raise BenchError(f"perf stat printed no count:\n{log_tail(h['out'])}")
        fs = [c.get(e) for e in self.EVENTS[1:]]
        return {"syscalls": calls,
                "fsync_calls": sum(fs) if len(self.events) > 1 and None not in fs else None}


# ---- setup ----------------------------------------------------------------------------

def build_loadgen(tmp):
    exe = os.path.join(tmp, "loadgen")
    cc = os.environ.get("CC", "cc")
    cmd = [cc, "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-O2", "-o", exe,
           os.path.join(ROOT, "bench", "loadgen.c"), "-lssl", "-lcrypto"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode:
        raise BenchError("building loadgen failed:\n" + r.stdout + r.stderr)
    return exe


def make_pki(tmp):
    pki = os.path.join(tmp, "pki")
    tool = os.path.join(ROOT, "tools", "iotgw-pki")
    steps = [
        ["ca", "devices-ca"],
        ["server", "gateway", "--ca", "devices-ca"],       # device listener (both systems)
        ["ca", "upstream-ca"],
        ["server", "broker", "--ca", "upstream-ca"],       # upstream mosquitto
        ["client", "gateway-upstream", "--ca", "upstream-ca"],  # iotgw and the bridge upstream
        ["client", "counter", "--ca", "upstream-ca"],      # the counting subscriber
    ]
    for step in steps:
        r = subprocess.run([tool, "-d", pki] + step, capture_output=True, text=True, timeout=60)
        if r.returncode:
            raise BenchError(f"iotgw-pki {' '.join(step)} failed:\n{r.stdout}{r.stderr}")
    return pki


def mosquitto_common(inflight):
    lines = [
        "per_listener_settings false",
        "allow_anonymous true",
        "persistence false",
        # No per-client queue limit: a bounded queue silently drops QoS 1 messages.
        "max_queued_messages 0",
        f"max_inflight_messages {inflight}",
        "set_tcp_nodelay true",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "connection_messages false",
    ]
    if os.geteuid() == 0:
        # Run as root, mosquitto would switch to user "mosquitto", who cannot read our keys.
        lines.insert(0, "user root")
    return lines


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def fs_type(path):
    """File system type of path ("ext2/ext3", "xfs", "tmpfs", ...), or "?"."""
    r = subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True,
                       timeout=10)
    return r.stdout.strip() if r.returncode == 0 else "?"


def read_status(state):
    """STATE/status, iotgw's `key: value` file (rewritten every 5 s and at exit)."""
    out = {}
    try:
        with open(os.path.join(state, "status")) as f:
            for line in f:
                k, sep, v = line.partition(":")
                if sep:
                    out[k.strip()] = v.strip()
    except OSError:
        pass
    return out


def wait_status_rewrite(proc, state, timeout):
    """The status file as rewritten after now (so its counters include what happened so far).
    The file's mtime tells (updated_unix has whole seconds only); the kernel's file time
    lags real time by at most a tick, so mtime >= now means written after now."""
    t0 = time.time()
    path = os.path.join(state, "status")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            before = os.stat(path).st_mtime
            st = read_status(state)
            if before >= t0 and os.stat(path).st_mtime == before:
                return st
        except OSError:
            pass
        if proc.poll() is not None:
            raise BenchError(f"{proc.bench_name} exited with status {proc.returncode}:\n"
                             + log_tail(proc.bench_log))
        time.sleep(0.2)
    raise BenchError(f"{proc.bench_name}: {state}/status was not rewritten within "
                     f"{timeout:.0f} s (iotgw without the durable spool?)")


# ---- measurements ---------------------------------------------------------------------

class Env:
    def __init__(self, args, tmp, procs, loadgen, pki):
        self.args, self.tmp, self.procs, self.loadgen, self.pki = args, tmp, procs, loadgen, pki
        # iotgw's spool directories: a real disk, or the fsync figures mean nothing.
        self.state_root = args.state_dir or tmp
        os.makedirs(self.state_root, exist_ok=True)
        self.up_port = None
        self.upstream = None
        self.nrun = 0
        self.syscalls = SyscallCounter(tmp, procs, enabled=not args.no_perf)
        if self.syscalls.note:
            self.log(f"note: {self.syscalls.note}")

    def p(self, name):
        return os.path.join(self.pki, name)

    def log(self, msg):
        if not self.args.json:
            print(msg, file=sys.stderr, flush=True)

    def start_upstream(self):
        self.up_port = free_port()
        conf = mosquitto_common(1000) + [
            f"listener {self.up_port} 127.0.0.1",
            f"cafile {self.p('upstream-ca.pem')}",
            f"certfile {self.p('broker.pem')}",
            f"keyfile {self.p('broker.key')}",
            "require_certificate true",
        ]
        path = write(os.path.join(self.tmp, "upstream.conf"), "\n".join(conf) + "\n")
        self.upstream = self.procs.spawn("upstream mosquitto", ["mosquitto", "-c", path],
                                         os.path.join(self.tmp, "upstream.log"))
        wait_port(self.up_port, self.upstream, 10)

    def start_counter(self, filt, count, time_limit, show=0):
        argv = [self.loadgen, "sub", "-p", str(self.up_port), "--ca", self.p("upstream-ca.pem"),
                "--cert", self.p("counter.pem"), "--key", self.p("counter.key"),
                "--prefix", "bench-counter-", "--filter", filt, "--qos", "1",
                "-m", str(count), "-T", str(time_limit), "--idle-exit", "15",
                "--show", str(show)]
        c = self.procs.spawn("counter", argv, os.path.join(self.tmp, "counter.log"),
                             stdout=subprocess.PIPE)
        ev = read_json_line(c, 15, "subscribed")
        if not ev:
            self.procs.stop(c)
            raise BenchError("the counting subscriber could not subscribe upstream:\n"
                             + log_tail(c.bench_log))
        return c

    def device_args(self, mode, port):
        """loadgen as devices: each connection gets its own certificate (CN = client id)."""
        return [self.loadgen, mode, "-p", str(port), "--ca", self.p("devices-ca.pem"),
                "--tls", self.args.tls, "--mint-ca-cert", self.p("devices-ca.pem"),
                "--mint-ca-key", self.p("devices-ca.key")]

    def measure_idle(self, gw, port, k):
        """RSS of the gateway with 0, then with k idle mutual-TLS MQTT connections."""
        a = self.args
        base = settled_rss(gw, a.settle, interval=a.settle_interval)
        self.log(f"  memory: {base['VmRSS']} KiB with 0 connections; opening {k} idle TLS "
                 "connections")
        argv = self.device_args("idle", port) + [
            "-n", str(k), "--prefix", "idle-", "--max-conns", str(max(k, 5000)),
            "-T", str(self.args.idle_time_limit)]
        lg = self.procs.spawn("loadgen idle", argv, os.path.join(self.tmp, "loadgen-idle.log"),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            ready = read_json_line(lg, self.args.idle_time_limit, "ready")
            if not ready:
                raise BenchError(f"idle connections were not all up within "
                                 f"{self.args.idle_time_limit} s:\n" + log_tail(lg.bench_log))
            if gw.poll() is not None:
                raise BenchError(f"{gw.bench_name} died with {k} idle connections:\n"
                                 + log_tail(gw.bench_log))
            loaded = settled_rss(gw, 1.5 * a.settle, interval=a.settle_interval)
            lg.stdin.close()  # EOF: loadgen disconnects and prints its result
            res = read_json_line(lg, 30)
            lg.wait(30)
        finally:
            self.procs.stop(lg)
        connected = ready["connected"]
        if ready["failed"] or (res and res.get("dropped")):
            raise BenchError(f"idle connections: {ready['failed']} failed, "
                             f"{res.get('dropped') if res else '?'} dropped by the server:\n"
                             + log_tail(lg.bench_log))
        delta = loaded["VmRSS"] - base["VmRSS"]
        out = {
            "idle_connections": connected,
            "rss_0_kib": base["VmRSS"],
            "rss_k_kib": loaded["VmRSS"],
            "rss_anon_0_kib": base.get("RssAnon"),
            "rss_anon_k_kib": loaded.get("RssAnon"),
            "kib_per_idle_connection": round(delta / connected, 2) if connected else None,
            "connect_seconds": ready["connect_seconds"],
        }
        self.log(f"  memory: {loaded['VmRSS']} KiB with {connected} idle connections "
                 f"-> {out['kib_per_idle_connection']} KiB each (connected in "
                 f"{ready['connect_seconds']:.1f} s)")
        return out

    def measure_handshakes(self, gw, port, n, loadgens=1, prefix="hs-"):
        """Gateway CPU for n full mutual-TLS handshakes: new connections (no session
        resumption), each TCP connect, handshake, CONNECT, CONNACK, DISCONNECT, close, at most
        --max-handshakes in progress (waves).

        The handshakes are concurrent (up to --max-handshakes in flight), never one after
        another: a server with more than one worker thread can only go faster when more
        than one handshake is waiting for it. loadgens > 1 splits them over that many
        load generator processes started together (each n/loadgens connections and its
        share of the --max-handshakes in flight): one loadgen is one thread, and minting a
        client certificate and doing the device's side of each handshake costs it more CPU
        than the gateway spends (about 1.0 ms against 0.75 ms on a 2-core test machine), so
        a single loadgen caps the rate below what one gateway thread does, whatever the
        gateway's threads. The rate is then n over the longest loadgen's time from its
        start to its last CONNACK (they start together)."""
        a = self.args
        loadgens = max(1, min(loadgens, n))
        wait_cpu_quiet(gw)  # whatever the previous step left (closing idle connections)
        busy0, self0, cpu0 = system_busy_seconds(), self_cpu_seconds(), cpu_seconds(gw.pid)
        up0 = cpu_seconds(self.upstream.pid)
        tcpu0 = thread_cpu(gw.pid)
        limit = 60 + n / 20
        lgs = []
        try:
            for i in range(loadgens):
                share = share_of(n, loadgens, i)
                inflight = max(1, share_of(a.max_handshakes, loadgens, i))
                pfx = prefix if loadgens == 1 else f"{prefix}{i}-"
                argv = self.device_args("conn", port) + [
                    "-n", str(share), "--prefix", pfx, "--max-handshakes", str(inflight),
                    "-T", str(limit)]
                self.nrun += 1
                lg = self.procs.spawn(f"loadgen conn {i + 1}/{loadgens}", argv,
                                      os.path.join(self.tmp, f"loadgen-conn-{self.nrun}.log"),
                                      stdout=subprocess.PIPE)
                lg.bench_share = share
                lgs.append(lg)
            results = []
            for lg in lgs:
                try:
                    out, _ = lg.communicate(timeout=limit + 30)
                except subprocess.TimeoutExpired:
                    raise BenchError(f"handshakes: {lg.bench_name} did not finish within "
                                     f"{limit + 30:.0f} s:\n" + log_tail(lg.bench_log))
                results.append((lg, last_json(out.decode(errors="replace"))))
        finally:
            for lg in lgs:
                self.procs.stop(lg)
        wait_cpu_quiet(gw)  # the gateway finishes with the last connections
        cpu1, up1 = cpu_seconds(gw.pid), cpu_seconds(self.upstream.pid)
        tcpu1 = thread_cpu(gw.pid)
        busy1, self1 = system_busy_seconds(), self_cpu_seconds()
        if gw.poll() is not None:
            raise BenchError(f"{gw.bench_name} died during the handshake run:\n"
                             + log_tail(gw.bench_log))
        for lg, res in results:
            if not res or res.get("handshakes") != lg.bench_share:
                raise BenchError(f"handshakes: {res.get('handshakes') if res else '?'} of "
                                 f"{lg.bench_share} completed ({lg.bench_name}, status "
                                 f"{lg.returncode}):\n" + log_tail(lg.bench_log, 10)
                                 + f"\n  {gw.bench_name} log:\n" + log_tail(gw.bench_log))
        rs = [res for _, res in results]
        # Without minting the devices' certificates (before the clock starts: a device
        # does not make a new key for each connection).
        lg_cpu = sum(r["cpu_user"] + r["cpu_sys"] - r.get("mint_cpu", 0) for r in rs)
        # connect_seconds: from the loadgen's start to its last CONNACK (what its own
        # handshakes_per_s divides by).
        secs = max(r["connect_seconds"] for r in rs)
        ours = (cpu1 - cpu0) + (up1 - up0) + lg_cpu + (self1 - self0)
        threads = thread_cpu_delta(tcpu0, tcpu1)
        tsum = sum(t["cpu_s"] for t in threads)
        out = {
            "handshakes": n,
            "max_in_progress": a.max_handshakes,
            "loadgens": loadgens,
            "seconds": secs,
            "gateway_cpu_s": cpu1 - cpu0,
            "gateway_cpu_s_per_1000": (cpu1 - cpu0) * 1000 / n,
            "gateway_cpu_ms_per_handshake": (cpu1 - cpu0) * 1000 / n,
            # CPUs the gateway kept busy: above 1 only with more than one thread.
            "gateway_cpus_used": (cpu1 - cpu0) / secs if secs > 0 else None,
            "handshakes_per_s": (rs[0]["handshakes_per_s"] if loadgens == 1
                                 else n / secs if secs > 0 else None),
            "connack_p50_ms": (rs[0]["connack_p50_ms"] if loadgens == 1
                               else statistics.median(r["connack_p50_ms"] for r in rs)),
            "connack_p99_ms": max(r["connack_p99_ms"] for r in rs),
            "loadgen_cpu_s": lg_cpu,
            "loadgen_cpu_ms_per_handshake": lg_cpu * 1000 / n,
            # Every process of the run (gateway, load generators, upstream, this script).
            "bench_cpu_ms_per_handshake": ours * 1000 / n,
            "gateway_threads_cpu": threads,
            "busiest_thread_share": threads[0]["cpu_s"] / tsum if threads and tsum > 0
            else None,
            "other_cpu_s": max(0.0, (busy1 - busy0) - ours),
            "bench_cpu_s": ours,
        }
        busy = sum(1 for t in threads if tsum > 0 and t["cpu_s"] >= 0.05 * tsum)
        self.log(f"  handshakes: {n} full mutual-TLS handshakes at "
                 f"{fmt(out['handshakes_per_s'], '.0f')}/s"
                 + (f" ({loadgens} load generators)" if loadgens > 1 else "")
                 + f", gateway CPU {out['gateway_cpu_s_per_1000']:.2f} s per 1000 on "
                 f"{busy} thread(s) ({fmt(out['gateway_cpus_used'], '.2f')} CPUs), load "
                 f"generator {out['loadgen_cpu_ms_per_handshake']:.2f} ms each, connect to "
                 f"CONNACK p50 {out['connack_p50_ms']:.1f} ms, p99 "
                 f"{out['connack_p99_ms']:.1f} ms")
        return out

    def run_load(self, gw, port, filt, m, label, show=0, devices=None, window=None, rate=None,
                 count_syscalls=False):
        """One timed run: M readings over N devices, counted when they arrive upstream.
        rate: readings/s per device (light load) instead of as fast as the window allows."""
        a = self.args
        devices = devices or a.devices
        window = window or a.window
        time_limit = a.time_limit + (m / devices / rate if rate else 0)
        counter = self.start_counter(filt, m, time_limit + 30, show)
        shown = []
        perf = lg = None
        try:
            # loadgen connects every device, says so, and publishes only on our "go": the
            # figures cover the publishing alone, not the handshakes (measured apart) nor
            # the goodbyes (loadgen holds the connections until its stdin closes).
            argv = self.device_args("pub", port) + [
                "-n", str(devices), "-m", str(m), "-w", str(window),
                "-T", str(time_limit), "--prefix", "dev", "--go-line"]
            if rate:
                argv += ["--rate", str(rate)]
            self.nrun += 1
            lg = self.procs.spawn(f"loadgen pub ({label})", argv,
                                  os.path.join(self.tmp, f"loadgen-pub-{self.nrun}.log"),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            up = read_json_line(lg, time_limit, "connected")
            if not up or up["failed"]:
                raise BenchError(f"{label}: the devices did not all connect "
                                 f"({up['failed'] if up else '?'} failed):\n"
                                 + log_tail(lg.bench_log) + f"\n  {gw.bench_name} log:\n"
                                 + log_tail(gw.bench_log))
            wait_cpu_quiet(gw, max_wait=2.0)
            if count_syscalls:
                perf = self.syscalls.start(gw.pid)
            busy0 = system_busy_seconds()
            self0 = self_cpu_seconds()
            cpu0 = cpu_seconds(gw.pid)
            up0 = cpu_seconds(self.upstream.pid)
            lg.stdin.write(b"go\n")
            lg.stdin.flush()
            pub = None
            deadline = time.monotonic() + time_limit + 30
            while pub is None and time.monotonic() < deadline:
                ev = read_json_line(lg, max(0.1, deadline - time.monotonic()))
                if ev is None:
                    break
                if "mode" in ev:
                    pub = ev
            if not pub:
                raise BenchError(f"loadgen pub printed no result (status {lg.poll()}):\n"
                                 + log_tail(lg.bench_log))
            # Wait for the counter: it stops at M arrivals, its time limit, or 15 s of silence.
            sub = None
            deadline = time.monotonic() + time_limit + 45
            while time.monotonic() < deadline:
                ev = read_json_line(counter, max(0.1, deadline - time.monotonic()))
                if ev is None:
                    break
                if ev.get("event") == "message":
                    shown.append(ev)
                elif "mode" in ev:
                    sub = ev
                    break
            # The gateway's CPU for these readings includes what it still does once the
            # last one is upstream (deleting acknowledged entries from the spool).
            wait_cpu_quiet(gw, max_wait=2.0)
            cpu1 = cpu_seconds(gw.pid)
            up1 = cpu_seconds(self.upstream.pid)
            busy1 = system_busy_seconds()
            self1 = self_cpu_seconds()
            sc = self.syscalls.stop(perf)
            perf = None
            lg.stdin.close()  # EOF: loadgen disconnects and exits
            try:
                lg.wait(30)
            except subprocess.TimeoutExpired:
                pass
        finally:
            if perf:
                self.syscalls._close(perf)
            if lg:
                self.procs.stop(lg)
            self.procs.stop(counter)
        if gw.poll() is not None:
            raise BenchError(f"{gw.bench_name} died during the {label} run:\n"
                             + log_tail(gw.bench_log))
        problems = []
        if pub["failed"] or pub["dropped"]:
            problems.append(f"{pub['failed']} device connections failed, {pub['dropped']} "
                            "were closed by the gateway")
        if pub["acked"] < m:
            problems.append(f"only {pub['acked']} of {m} readings were PUBACKed by the gateway"
                            + (" (time limit)" if pub["timed_out"] else ""))
        if not sub:
            problems.append("the counter printed no result")
        elif sub["received"] < m:
            problems.append(f"only {sub['received']} of {m} readings arrived upstream")
        if problems:
            raise BenchError(f"{label}: " + "; ".join(problems) + "\n  loadgen stderr:\n"
                             + log_tail(lg.bench_log, 10)
                             + f"\n  {gw.bench_name} log:\n" + log_tail(gw.bench_log))
        if pub.get("lat_unmatched") or pub.get("lat_lost"):
            self.log(f"  note: {label}: {pub.get('lat_unmatched')} PUBACKs matched no "
                     f"outstanding PUBLISH, {pub.get('lat_lost')} latency samples lost")
        e2e = sub["t_last"] - pub["t_first_publish"]
        # CPU the machine spent on anything but the four processes of this run (another
        # build or test suite on the same 2 cores makes the figures noisy: say so).
        ours = ((cpu1 - cpu0) + (up1 - up0) + pub["cpu_user"] + pub["cpu_sys"]
                + sub["cpu_user"] + sub["cpu_sys"] + (self1 - self0))
        other = max(0.0, (busy1 - busy0) - ours)
        return {
            "messages": m,
            "devices": devices,
            "window": window,
            "rate_per_device": rate,
            "readings_per_s": m / e2e if e2e > 0 else None,
            "seconds": e2e,
            "device_ack_rate": pub["rate"],
            "gateway_cpu_s": cpu1 - cpu0,
            "gateway_cpu_s_per_100k": (cpu1 - cpu0) * 100000 / m,
            "upstream_cpu_s_per_100k": (up1 - up0) * 100000 / m,
            "loadgen_cpu_s_per_100k": (pub["cpu_user"] + pub["cpu_sys"]) * 100000 / m,
            "puback_ms": {k: pub.get(f"lat_{k}_ms") for k in
                          ("mean", "p50", "p90", "p99", "p999", "max")},
            "puback_samples": pub.get("lat_n"),
            "puback_unmatched": pub.get("lat_unmatched"),
            "syscalls": sc["syscalls"] if sc else None,
            "syscalls_per_reading": sc["syscalls"] / m if sc else None,
            "fsync_calls": sc["fsync_calls"] if sc else None,
            "fsync_calls_per_reading": (sc["fsync_calls"] / m if sc and sc["fsync_calls"]
                                        is not None else None),
            "duplicates_upstream": sub["received"] - m,
            "other_cpu_s": other,
            "bench_cpu_s": ours,
            "machine_busy_cpu_s": busy1 - busy0,
            "sample": shown[0] if shown else None,
        }

    def status_delta(self, gw, state, before, readings, what):
        """fsyncs per reading from iotgw's status file: counters now minus `before`."""
        after = wait_status_rewrite(gw, state, 15)
        try:
            d = {k: int(after[k]) - int(before[k])
                 for k in ("commits_total", "fsyncs_total", "readings_total")}
        except (KeyError, ValueError) as e:
            raise BenchError(f"{what}: status file without counters ({e}): {before} / {after}")
        if d["readings_total"] != readings:
            self.log(f"  note: {what}: the gateway counted {d['readings_total']} readings, "
                     f"not {readings}")
        return after, {
            "readings": readings,
            "commits": d["commits_total"],
            "fsyncs": d["fsyncs_total"],
            "fsyncs_per_reading": d["fsyncs_total"] / readings,
            "commits_per_reading": d["commits_total"] / readings,
        }

    def bench_system(self, name, gw, port, filt, state=None):
        """Every figure for one system; state: iotgw's spool directory (status file)."""
        a = self.args
        result = {"system": name}
        if a.idle > 0:
            result["memory"] = self.measure_idle(gw, port, a.idle)
        if a.handshakes > 0:
            result["handshakes"] = self.measure_handshakes(gw, port, a.handshakes)
        warm = min(a.messages, 5000)
        w = self.run_load(gw, port, filt, warm, f"{name} warm-up", show=1)
        result["sample_upstream_message"] = w["sample"]
        st = wait_status_rewrite(gw, state, 15) if state else None
        if a.light_seconds > 0:
            lm = int(round(a.light_devices * a.light_rate * a.light_seconds))
            light = self.run_load(gw, port, filt, lm, f"{name} light load",
                                  devices=a.light_devices, window=10, rate=a.light_rate,
                                  count_syscalls=True)
            light.pop("sample")
            if state:
                st, light["status"] = self.status_delta(gw, state, st, lm,
                                                        f"{name} light load")
            result["light"] = light
            self.log(f"  light load: {a.light_devices} devices x {a.light_rate:g} readings/s, "
                     f"{lm} readings: PUBACK p50 {light['puback_ms']['p50']:.2f} ms, "
                     f"p99 {light['puback_ms']['p99']:.2f} ms, max "
                     f"{light['puback_ms']['max']:.2f} ms")
        # The timed runs are not counted: perf's tracepoints cost every syscall about 55 ns,
        # which is 2 % of iotgw's CPU per reading (3.6 syscalls) but 9 % of the bridge's
        # (16), and would tilt every ratio towards iotgw. One more run, counted, gives the
        # syscall figures alone.
        runs = []
        for i in range(a.repeat):
            run = self.run_load(gw, port, filt, a.messages, f"{name} run {i + 1}")
            run.pop("sample")
            self.log(f"  run {i + 1}/{a.repeat}: {run['readings_per_s']:.0f} readings/s end to "
                     f"end, gateway CPU {run['gateway_cpu_s_per_100k']:.2f} s/100k, PUBACK p99 "
                     f"{run['puback_ms']['p99']:.1f} ms"
                     f" (other processes used {run['other_cpu_s']:.1f} CPU s)")
            runs.append(run)
        result["runs"] = runs
        if state:
            _, result["status"] = self.status_delta(gw, state, st, a.repeat * a.messages,
                                                    f"{name} timed runs")
        for key in ("readings_per_s", "device_ack_rate", "gateway_cpu_s_per_100k",
                    "upstream_cpu_s_per_100k", "loadgen_cpu_s_per_100k", "other_cpu_s",
                    "bench_cpu_s"):
            vals = [r[key] for r in runs if r[key] is not None]
            result[key] = statistics.median(vals) if vals else None
        result["puback_ms"] = {k: statistics.median(r["puback_ms"][k] for r in runs)
                               for k in runs[0]["puback_ms"]}
        result["syscalls_per_reading"] = result["fsync_calls_per_reading"] = None
        if self.syscalls.events:
            counted = self.run_load(gw, port, filt, a.messages, f"{name} counted run",
                                    count_syscalls=True)
            for key in ("syscalls_per_reading", "fsync_calls_per_reading"):
                result[key] = counted[key]
            self.log(f"  counted run (perf stat, not timed): "
                     f"{fmt(counted['syscalls_per_reading'], '.2f')} syscalls/reading")
        return result

    # -- the systems under test --

    def start_iotgw(self, label, durability=None, metrics_port=None, gateway_extra=""):
        """Starts iotgw with a fresh state directory; returns (process, port, state dir).
        metrics_port: also serve [metrics] there; gateway_extra: more [gateway] lines."""
        a = self.args
        binary = a.iotgw
        if not binary or not os.access(binary, os.X_OK):
            raise BenchError(f"iotgw binary not found: {binary!r} (set IOTGW_BIN or run make)")
        port = free_port()
        spool = max(100000, 2 * a.messages)
        state = os.path.join(self.state_root, f"state-{label}")
        shutil.rmtree(state, ignore_errors=True)
        dur = f"durability = {durability}\n" if durability else ""
        conf = f"""# iotgw benchmark configuration (generated)
[gateway]
name = bench
log_level = notice
# All devices come from 127.0.0.1 (see the listener): no per-address handshake cap either.
max_handshakes_per_address = 1000000
{gateway_extra}
[listener devices]
bind = 127.0.0.1:{port}
tls = mutual
cert = {self.p('gateway.pem')}
key = {self.p('gateway.key')}
ca = {self.p('devices-ca.pem')}
max_connections = {max(10000, max(a.idle, a.threads_idle) + a.devices + 100, (a.storm or 0) + 100, (a.threads_storm or 0) + 100)}
# Every load generator connection comes from 127.0.0.1 and publishes as fast as its
# window allows: the per-device and per-address limits (which the bridge does not have)
# are off.
max_message_rate = 0
max_byte_rate = 0
max_connection_rate_per_address = 0

[upstream]
host = 127.0.0.1
port = {self.up_port}
client_id = iotgw-bench
tls = mutual
ca = {self.p('upstream-ca.pem')}
cert = {self.p('gateway-upstream.pem')}
key = {self.p('gateway-upstream.key')}
inflight = {a.inflight}

[spool]
dir = {state}
{dur}max_messages = {spool}
max_bytes = 1G
"""
        if metrics_port:
            conf += f"\n[metrics]\nbind = 127.0.0.1:{metrics_port}\n"
        path = write(os.path.join(self.tmp, f"iotgw-{label}.conf"), conf)
        r = subprocess.run([binary, "-t", "-c", path], capture_output=True, text=True, timeout=30)
        if r.returncode:
            raise BenchError(f"iotgw -t rejected the benchmark configuration:\n{r.stderr}")
        gw = self.procs.spawn(f"iotgw ({label})", [binary, "-c", path, "--log-stderr"],
                              os.path.join(self.tmp, f"iotgw-{label}.log"))
        gw.bench_argv = [binary, "-c", path, "--log-stderr"]
        # Readiness from the log, not a TCP probe (a probe is a failed TLS handshake).
        wait_log(gw, "event=gateway_ready", 15)
        self.log(f"iotgw {binary} ({label}) on 127.0.0.1:{port} (pid {gw.pid}), "
                 f"spool in {state}")
        return gw, port, state

    def stop_iotgw(self, gw, res):
        status = self.procs.stop(gw, timeout=15)
        if status != 0:
            # The figures stand; the failed stop is reported (and makes the exit status 1).
            res["error"] = (f"iotgw did not stop cleanly on SIGTERM (status {status}):\n"
                            + log_tail(gw.bench_log, 6))

    def iotgw(self):
        t = self.args.iotgw_threads
        gw, port, state = self.start_iotgw("main",
                                           gateway_extra=f"threads = {t}\n" if t else "")
        res = {"system": "iotgw"}
        try:
            res = self.bench_system("iotgw", gw, port, "sensors/#", state)
        finally:
            self.stop_iotgw(gw, res)
        return res

    def durability(self):
        """Group commit: the same load with durability = fsync and = os, counting the commits
        and the fsyncs the gateway issued (its status file, counters since start)."""
        a = self.args
        m = a.durability_messages
        res = {"system": "durability", "messages": m, "devices": a.devices,
               "state_fs": fs_type(self.state_root), "modes": {}}
        if res["state_fs"] in ("tmpfs", "ramfs"):
            self.log(f"  WARNING: the state directory {self.state_root} is on "
                     f"{res['state_fs']}: fsync costs nothing there (use --state-dir)")
        for mode in ("fsync", "os"):
            gw, port, state = self.start_iotgw(f"durability-{mode}", mode)
            out = {}
            try:
                self.run_load(gw, port, "sensors/#", min(m, 5000), f"durability {mode} warm-up")
                before = wait_status_rewrite(gw, state, 10)
                run = self.run_load(gw, port, "sensors/#", m, f"durability {mode}")
            finally:
                self.stop_iotgw(gw, out)
            after = read_status(state)  # rewritten at exit
            if out.get("error"):
                res.setdefault("error", out["error"])
            try:
                d = {k: int(after[k]) - int(before[k])
                     for k in ("commits_total", "fsyncs_total", "readings_total")}
            except (KeyError, ValueError) as e:
                raise BenchError(f"durability {mode}: status file without counters ({e}): "
                                 f"{before} / {after}")
            secs = run["seconds"]
            mres = {
                "readings_per_s": run["readings_per_s"],
                "device_ack_rate": run["device_ack_rate"],
                "gateway_cpu_s_per_100k": run["gateway_cpu_s_per_100k"],
                "commits": d["commits_total"],
                "fsyncs": d["fsyncs_total"],
                "readings_counted": d["readings_total"],
                "seconds": secs,
                "commits_per_s": d["commits_total"] / secs if secs > 0 else None,
                "fsyncs_per_s": d["fsyncs_total"] / secs if secs > 0 else None,
                "readings_per_commit": m / d["commits_total"] if d["commits_total"] else None,
                "readings_per_fsync": m / d["fsyncs_total"] if d["fsyncs_total"] else None,
                "other_cpu_s": run["other_cpu_s"],
                "bench_cpu_s": run["bench_cpu_s"],
            }
            if d["readings_total"] != m:
                self.log(f"  note: the gateway counted {d['readings_total']} readings during "
                         f"the run, not {m} (status file timing)")
            self.log(f"  durability {mode}: {mres['readings_per_s']:.0f} readings/s end to end, "
                     f"{mres['commits_per_s']:.0f} commits/s, {mres['fsyncs_per_s']:.0f} "
                     f"fsyncs/s, {fmt(mres['readings_per_fsync'], '.1f')} readings per fsync")
            res["modes"][mode] = mres
        return res

    def scrape(self):
        """What monitoring costs: the same load with no scraper, with a scrape of /metrics
        every second (what Prometheus does at its fastest usual setting) and with a
        flood (one client scraping back to back). A scrape reads counters and never walks
        the sessions, so the first two should not differ beyond noise."""
        a = self.args
        m = a.scrape_messages
        mport = free_port()
        gw, port, state = self.start_iotgw("scrape", metrics_port=mport)
        res = {"system": "scrape", "messages": m, "devices": a.devices, "modes": {}}
        url = f"http://127.0.0.1:{mport}/metrics"
        try:
            self.run_load(gw, port, "sensors/#", min(m, 5000), "scrape warm-up")
            for mode, interval in (("no scraper", None), ("scrape every 1 s", 1.0),
                                   ("scrape flood", 0.0)):
                stop = threading.Event()
                scrapes = {"n": 0, "bytes": 0, "errors": 0}

                def scraper():
                    while not stop.is_set():
                        try:
                            with urllib.request.urlopen(url, timeout=5) as r:
                                scrapes["bytes"] = len(r.read())
                            scrapes["n"] += 1
                        except OSError:
                            scrapes["errors"] += 1
                        if interval:
                            stop.wait(interval)
                t = threading.Thread(target=scraper, daemon=True) if interval is not None \
                    else None
                if t:
                    t.start()
                try:
                    run = self.run_load(gw, port, "sensors/#", m, f"{mode}")
                finally:
                    stop.set()
                    if t:
                        t.join(10)
                run.pop("sample", None)
                out = {"readings_per_s": run["readings_per_s"],
                       "gateway_cpu_s_per_100k": run["gateway_cpu_s_per_100k"],
                       "puback_p99_ms": run["puback_ms"]["p99"],
                       "scrapes": scrapes["n"], "scrape_errors": scrapes["errors"],
                       "exposition_bytes": scrapes["bytes"], "seconds": run["seconds"],
                       "other_cpu_s": run["other_cpu_s"], "bench_cpu_s": run["bench_cpu_s"]}
                if scrapes["errors"]:
                    res["error"] = f"{scrapes['errors']} scrape(s) failed during '{mode}'"
                self.log(f"  {mode}: {out['readings_per_s']:.0f} readings/s, gateway CPU "
                         f"{out['gateway_cpu_s_per_100k']:.2f} s/100k, PUBACK p99 "
                         f"{out['puback_p99_ms']:.1f} ms, {scrapes['n']} scrapes")
                res["modes"][mode] = out
        finally:
            self.stop_iotgw(gw, res)
        base = res["modes"].get("no scraper", {}).get("readings_per_s")
        for mode in res["modes"].values():
            mode["throughput_ratio"] = mode["readings_per_s"] / base if base else None
        return res

    def start_bridge(self, label="bridge"):
        """Starts the Mosquitto bridge; returns (process, port)."""
        a = self.args
        port = free_port()
        conf = mosquitto_common(a.inflight) + [
            f"listener {port} 127.0.0.1",
            f"cafile {self.p('devices-ca.pem')}",
            f"certfile {self.p('gateway.pem')}",
            f"keyfile {self.p('gateway.key')}",
            "require_certificate true",
            "use_identity_as_username true",
            "",
            "connection upstream",
            f"address 127.0.0.1:{self.up_port}",
            "remote_clientid mosquitto-bridge-bench",
            "cleansession true",
            "notifications false",
            "start_type automatic",
            "restart_timeout 1",
            f"bridge_cafile {self.p('upstream-ca.pem')}",
            f"bridge_certfile {self.p('gateway-upstream.pem')}",
            f"bridge_keyfile {self.p('gateway-upstream.key')}",
            "bridge_tls_version tlsv1.3",
            "topic iot-2/# out 1",
        ]
        path = write(os.path.join(self.tmp, f"{label}.conf"), "\n".join(conf) + "\n")
        gw = self.procs.spawn("mosquitto bridge", ["mosquitto", "-c", path],
                              os.path.join(self.tmp, f"{label}.log"))
        gw.bench_argv = ["mosquitto", "-c", path]
        wait_port(port, gw, 10)
        self.log(f"mosquitto bridge on 127.0.0.1:{port} (pid {gw.pid})")
        return gw, port

    def bridge(self):
        gw, port = self.start_bridge()
        try:
            res = self.bench_system("mosquitto-bridge", gw, port, "iot-2/#")
        finally:
            self.procs.stop(gw)
        return res

    def restart(self, proc, port, kind):
        """SIGTERM, wait, start again with the same command line and state; returns the new
        process once it is ready, and the monotonic times of the stop and of readiness."""
        t_stop = time.monotonic()
        status = self.procs.stop(proc, timeout=30)
        if status != 0:
            raise BenchError(f"{proc.bench_name} did not stop cleanly (status {status}):\n"
                             + log_tail(proc.bench_log))
        new = self.procs.spawn(proc.bench_name, proc.bench_argv, proc.bench_log)
        new.bench_argv = proc.bench_argv
        if kind == "iotgw":
            wait_log(new, "event=gateway_ready", 60, count=2)
        else:
            wait_port(port, new, 30)
        return new, t_stop, time.monotonic()

    def storm(self):
        """The reconnect storm: K devices connected, each with a reading acknowledged; the
        server restarted (SIGTERM, start again, as `systemctl restart` does); the time from
        its readiness until every device is back with a new reading acknowledged, and the
        server's CPU in that time. Devices back off 100-500 ms between attempts and offer
        their last TLS session. iotgw with keep_tls_sessions = yes (they resume) and = no
        (full handshakes), and the bridge (Mosquitto keeps no sessions across a restart)."""
        a = self.args
        k = a.storm
        res = {"system": "storm", "devices": k, "max_handshakes": a.storm_handshakes,
               "variants": {}}
        for label, kind, keep in (("iotgw, sessions kept", "iotgw", "yes"),
                                  ("iotgw, not kept", "iotgw", "no"),
                                  ("mosquitto bridge", "bridge", None)):
            res["variants"][label] = self.storm_variant(label, kind, keep, k)
        return res

    def storm_variant(self, label, kind, keep, k, gateway_extra="", tag="", loadgens=1):
        """One reconnect storm (see storm()) against a fresh server: iotgw (kind "iotgw",
        keep_tls_sessions = keep, more [gateway] lines in gateway_extra) or the bridge.
        loadgens > 1 splits the K devices (and the --storm-handshakes connecting at once)
        over that many load generator processes, so that the devices' side of the
        handshakes is not one thread's work; the storm ends when the last one is back."""
        a = self.args
        limit = 120 + k / 50
        loadgens = max(1, min(loadgens, k))
        if kind == "iotgw":
            srv, port, _ = self.start_iotgw(f"storm-{tag + '-' if tag else ''}{keep}",
                                            gateway_extra=f"keep_tls_sessions = {keep}\n"
                                            + gateway_extra)
        else:
            srv, port = self.start_bridge("storm-bridge")
        lgs = []
        try:
            for i in range(loadgens):
                share = share_of(k, loadgens, i)
                hs = max(1, share_of(a.storm_handshakes, loadgens, i))
                argv = self.device_args("storm", port) + [
                    "-n", str(share),
                    "--prefix", "storm-" if loadgens == 1 else f"storm-{i}-",
                    "--max-conns", str(max(share, 5000)),
                    "--max-handshakes", str(hs), "--resume", "-T", str(limit)]
                lgs.append(self.procs.spawn(
                    "loadgen storm" if loadgens == 1 else f"loadgen storm {i + 1}/{loadgens}",
                    argv, os.path.join(self.tmp, f"loadgen-storm-{kind}{'-' + tag if tag else ''}"
                                       f"{'-' + str(i) if loadgens > 1 else ''}.log"),
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE))
            deadline = time.monotonic() + limit
            for lg in lgs:
                if not read_json_line(lg, max(0.1, deadline - time.monotonic()), "ready"):
                    raise BenchError(f"storm: {k} devices were not all up within {limit:.0f} s:"
                                     "\n" + log_tail(lg.bench_log))
            wait_cpu_quiet(srv)
            srv, t_stop, t_ready = self.restart(srv, port, kind)
            cpu0 = cpu_seconds(srv.pid)
            deadline = time.monotonic() + limit
            backs = []
            for lg in lgs:
                back = read_json_line(lg, max(0.1, deadline - time.monotonic()), "back")
                if not back:
                    raise BenchError(f"storm ({label}): not every device was back within "
                                     f"{limit:.0f} s:\n" + log_tail(lg.bench_log))
                backs.append(back)
            cpu1 = cpu_seconds(srv.pid)
            t_back = max(b["t_back"] for b in backs)
            out = {"storm_seconds": t_back - t_ready,
                   "restart_seconds": t_ready - t_stop,
                   "gateway_cpu_s": cpu1 - cpu0,
                   "resumed": sum(b["resumed"] for b in backs),
                   "full": sum(b["full"] for b in backs)}
            if loadgens > 1:
                out["loadgens"] = loadgens
        finally:
            for lg in lgs:
                self.procs.stop(lg)
            self.procs.stop(srv, timeout=30)
        self.log(f"  storm, {label}: {k} devices back {out['storm_seconds']:.2f} s after "
                 f"the restart was ready (restart {out['restart_seconds']:.2f} s), server "
                 f"CPU {out['gateway_cpu_s']:.2f} s, {out['resumed']} resumed, "
                 f"{out['full']} full handshakes")
        return out

    def threads(self):
        """Scaling with [gateway] threads (issue 14): for each count in --threads, a fresh
        iotgw with threads = N: memory per idle connection, full mutual-TLS handshakes
        (rate, gateway CPU per handshake, how the CPU spread over its threads), then the
        reconnect storm with TLS sessions kept and not kept. The same load generators
        (--threads-loadgens processes) for every N, so only the gateway changes."""
        a = self.args
        res = {"system": "threads", "thread_counts": a.threads, "handshakes": a.handshakes,
               "max_handshakes": a.max_handshakes, "loadgens": a.threads_loadgens,
               "repeat": a.repeat,
               "idle": a.threads_idle, "storm_devices": a.threads_storm,
               "storm_handshakes": a.storm_handshakes, "runs": {}}
        for t in a.threads:
            run = res["runs"][str(t)] = {}
            extra = f"threads = {t}\n"
            gw, port, _ = self.start_iotgw(f"threads-{t}", gateway_extra=extra)
            stopped = {}
            try:
                run["gateway_os_threads"] = os_threads(gw.pid)
                self.log(f"  threads = {t}: the gateway process has "
                         f"{run['gateway_os_threads']} OS thread(s)")
                if a.threads_idle > 0:
                    run["memory"] = self.measure_idle(gw, port, a.threads_idle)
                if a.handshakes > 0:
                    # --repeat runs, the median of each figure: the ratios are the point here,
                    # and one short run is noisy by about 10 %.
                    hs = [self.measure_handshakes(gw, port, a.handshakes,
                                                  loadgens=a.threads_loadgens,
                                                  prefix=f"hs{t}r{i}-")
                          for i in range(a.repeat)]
                    run["handshakes"] = median_runs(hs)
            finally:
                self.stop_iotgw(gw, stopped)
            if stopped.get("error"):
                res.setdefault("error", f"threads = {t}: {stopped['error']}")
            if a.threads_storm > 0:
                run["storm"] = {}
                for label, keep in a.threads_storm_variants:
                    run["storm"][label] = self.storm_variant(
                        f"iotgw threads = {t}, {label}", "iotgw", keep, a.threads_storm,
                        gateway_extra=extra, tag=f"threads{t}", loadgens=a.threads_loadgens)
        res["scaling"] = scaling_rows(res)
        return res


# ---- report ---------------------------------------------------------------------------

def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def last_json(text):
    """The last line of text that parses as JSON (loadgen's result line), or None."""
    obj = None
    for line in text.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            pass
    return obj


# The goal table of issue 8: (label, where the value is, format, goal). A "where" is a
# function of one system's result, returning a number or None.
def _get(*path):
    def f(res):
        v = res
        for k in path:
            if not isinstance(v, dict):
                return None
            v = v.get(k)
        return v
    return f


ROWS = [
    ("throughput", None, None, None),
    ("gateway CPU s per 100k readings", _get("gateway_cpu_s_per_100k"), ".2f", "<= 0.5x"),
    ("readings/s end to end", _get("readings_per_s"), ",.0f", ">= 1.2x"),
    ("readings/s PUBACKed to devices", _get("device_ack_rate"), ",.0f", None),
    ("PUBACK latency p50 (ms)", _get("puback_ms", "p50"), ".2f", None),
    ("PUBACK latency p99 (ms)", _get("puback_ms", "p99"), ".2f", "<= 2x"),
    ("PUBACK latency max (ms)", _get("puback_ms", "max"), ".1f", None),
    ("syscalls per reading", _get("syscalls_per_reading"), ".2f", None),
    ("fsync+fdatasync calls per reading", _get("fsync_calls_per_reading"), ".4f", None),
    ("fsyncs per reading (status file)", _get("status", "fsyncs_per_reading"), ".4f", None),
    ("upstream broker CPU s per 100k", _get("upstream_cpu_s_per_100k"), ".2f", None),
    ("load generator CPU s per 100k", _get("loadgen_cpu_s_per_100k"), ".2f", None),
    ("CPU s used by other processes, per run", _get("other_cpu_s"), ".1f", None),
    ("light load", None, None, None),
    ("PUBACK latency p50 (ms)", _get("light", "puback_ms", "p50"), ".2f", None),
    ("PUBACK latency p99 (ms)", _get("light", "puback_ms", "p99"), ".2f", "<= 20 ms"),
    ("PUBACK latency max (ms)", _get("light", "puback_ms", "max"), ".1f", None),
    ("gateway CPU s per 100k readings", _get("light", "gateway_cpu_s_per_100k"), ".2f", None),
    ("syscalls per reading", _get("light", "syscalls_per_reading"), ".2f", None),
    ("fsync+fdatasync calls per reading", _get("light", "fsync_calls_per_reading"), ".4f",
     None),
    ("fsyncs per reading (status file)", _get("light", "status", "fsyncs_per_reading"),
     ".4f", None),
    ("CPU s used by other processes", _get("light", "other_cpu_s"), ".1f", None),
    ("handshakes", None, None, None),
    ("gateway CPU s per 1000 full mTLS handshakes",
     _get("handshakes", "gateway_cpu_s_per_1000"), ".3f", "<= 0.5x"),
    ("full handshakes/s", _get("handshakes", "handshakes_per_s"), ",.0f", None),
    ("connect to CONNACK p50 (ms)", _get("handshakes", "connack_p50_ms"), ".1f", None),
    ("connect to CONNACK p99 (ms)", _get("handshakes", "connack_p99_ms"), ".1f", None),
    ("CPU s used by other processes", _get("handshakes", "other_cpu_s"), ".1f", None),
    ("memory", None, None, None),
    ("memory per idle mTLS connection (KiB)", _get("memory", "kib_per_idle_connection"),
     ".1f", "<= 0.7x"),
    ("RSS, 0 connections (KiB)", _get("memory", "rss_0_kib"), ",d", None),
    ("RSS, K idle connections (KiB)", _get("memory", "rss_k_kib"), ",d", None),
    ("idle connections K", _get("memory", "idle_connections"), "d", None),
]


# Scaling with [gateway] threads (issue 14): (label, where the value is in one thread count's
# run, format, which way is better: "higher", "lower", "" for a figure with no direction,
# None for context rows, which get no ratio).
SCALING_ROWS = [
    ("gateway", None, None, None),
    ("OS threads of the gateway process", _get("gateway_os_threads"), "d", None),
    ("full mutual-TLS handshakes", None, None, None),
    ("handshakes/s", _get("handshakes", "handshakes_per_s"), ",.0f", "higher"),
    ("gateway CPU ms per handshake", _get("handshakes", "gateway_cpu_ms_per_handshake"),
     ".3f", "lower"),
    ("CPUs the gateway kept busy", _get("handshakes", "gateway_cpus_used"), ".2f", ""),
    ("busiest gateway thread, share of its CPU", _get("handshakes", "busiest_thread_share"),
     ".2f", ""),
    ("load generator CPU ms per handshake", _get("handshakes", "loadgen_cpu_ms_per_handshake"),
     ".3f", ""),
    ("all bench processes, CPU ms per handshake",
     _get("handshakes", "bench_cpu_ms_per_handshake"), ".3f", "lower"),
    ("connect to CONNACK p50 (ms)", _get("handshakes", "connack_p50_ms"), ".1f", "lower"),
    ("connect to CONNACK p99 (ms)", _get("handshakes", "connack_p99_ms"), ".1f", "lower"),
    ("CPU s used by other processes", _get("handshakes", "other_cpu_s"), ".1f", None),
    ("memory", None, None, None),
    ("memory per idle mTLS connection (KiB)", _get("memory", "kib_per_idle_connection"),
     ".1f", "lower"),
    ("RSS, 0 connections (KiB)", _get("memory", "rss_0_kib"), ",d", "lower"),
    ("RSS, K idle connections (KiB)", _get("memory", "rss_k_kib"), ",d", "lower"),
    ("reconnect storm, TLS sessions kept", None, None, None),
    ("seconds until all are back", _get("storm", "sessions kept", "storm_seconds"), ".2f",
     "lower"),
    ("server CPU s in that time", _get("storm", "sessions kept", "gateway_cpu_s"), ".2f",
     "lower"),
    ("handshakes resumed", _get("storm", "sessions kept", "resumed"), "d", None),
    ("full handshakes", _get("storm", "sessions kept", "full"), "d", None),
    ("reconnect storm, TLS sessions not kept", None, None, None),
    ("seconds until all are back", _get("storm", "not kept", "storm_seconds"), ".2f",
     "lower"),
    ("server CPU s in that time", _get("storm", "not kept", "gateway_cpu_s"), ".2f", "lower"),
    ("full handshakes", _get("storm", "not kept", "full"), "d", None),
]


def median_runs(runs):
    """Several results of one measurement as one: the median of every number (the first
    run's value for anything else), and every run under "runs" when there are several."""
    out = dict(runs[0])
    for k, v in out.items():
        vals = [r.get(k) for r in runs]
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in vals):
            out[k] = statistics.median(vals)
    if len(runs) > 1:
        out["runs"] = runs
    return out


def scaling_rows(res):
    """Rows of the scaling table: the value for each thread count, and each count's value
    over the first count's ("2/1")."""
    counts = [str(t) for t in res["thread_counts"]]
    runs = res["runs"]
    rows = []
    section = None
    for label, get, spec, better in SCALING_ROWS:
        if get is None:
            section = label
            continue
        values = {t: get(runs.get(t, {})) for t in counts}
        if all(v is None for v in values.values()):
            continue
        base = values[counts[0]]
        ratios = {}
        if better is not None:
            for t in counts[1:]:
                v = values[t]
                ratios[f"{t}/{counts[0]}"] = (
                    v / base if isinstance(v, (int, float)) and isinstance(base, (int, float))
                    and base else None)
        rows.append({"section": section, "figure": label, "values": values,
                     "ratios": ratios, "better": better or None, "format": spec})
    return rows


def comparison(systems):
    """Rows of the goal table: both systems' values and iotgw / bridge."""
    by = {s["system"]: s for s in systems}
    gw, br = by.get("iotgw", {}), by.get("mosquitto-bridge", {})
    rows = []
    section = None
    for label, get, spec, goal in ROWS:
        if get is None:
            section = label
            continue
        a, b = get(gw), get(br)
        if a is None and b is None:
            continue
        # Context rows (foreign CPU, K) get no ratio.
        context = "other processes" in label or label.startswith("idle connections")
        ratio = a / b if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b \
            and not context else None
        rows.append({"section": section, "figure": label, "iotgw": a, "mosquitto-bridge": b,
                     "ratio": ratio, "goal": goal, "format": spec})
    return rows


def print_table(report):
    p = report["parameters"]
    everything = report["results"]
    systems = [s for s in everything
               if s["system"] not in ("durability", "scrape", "storm", "threads")]
    print()
    print(f"iotgw benchmark{' (--smoke: tiny numbers, not figures)' if p.get('smoke') else ''}"
          f", {report['machine']}")
    print(f"  loopback only; loadgen, gateway, upstream mosquitto and counter share "
          f"{report['cpus']} CPUs")
    print(f"  devices -> gateway: TLS {p['tls']} mutual, one P-256 client certificate per "
          "device; gateway -> upstream: TLS 1.3 mutual; iotgw with durability = fsync")
    print(f"  throughput: {p['messages']} QoS 1 readings per run over {p['devices']} device "
          f"connections, window {p['window']}/device, upstream in-flight {p['inflight']}, "
          f"median of {p['repeat']} run(s) after a warm-up")
    if p["light_seconds"]:
        print(f"  light load: {p['light_devices']} devices x {p['light_rate']:g} readings/s "
              f"for {p['light_seconds']:g} s, QoS 1, window 10, one run after the warm-up")
    if p["handshakes"]:
        print(f"  handshakes: {p['handshakes']} new connections, full mutual-TLS handshake "
              f"(no resumption) + CONNECT/CONNACK + DISCONNECT, {p['max_handshakes']} in "
              "progress at once")
    if p["idle"]:
        print(f"  memory: VmRSS with 0 vs {p['idle']} idle mutual-TLS MQTT connections")
    if report.get("syscalls_note"):
        print(f"  note: {report['syscalls_note']}")
    print()
    rows = report.get("comparison") or []
    w0, w1 = 44, 13
    if rows:
        print(f"{'':{w0}}{'iotgw':>{w1}}{'bridge':>{w1}}{'iotgw/bridge':>{w1}}  goal")
        section = None
        for r in rows:
            if r["section"] != section:
                section = r["section"]
                print(f"{section}:")
            ratio = fmt(r["ratio"], ".2f")
            print(f"  {r['figure']:{w0 - 2}}{fmt(r['iotgw'], r['format']):>{w1}}"
                  f"{fmt(r['mosquitto-bridge'], r['format']):>{w1}}{ratio:>{w1}}"
                  f"  {r['goal'] or ''}")
    noisy = [s for s in systems if s.get("other_cpu_s") is not None
             and s["other_cpu_s"] > max(0.2, 0.1 * s["bench_cpu_s"])]
    for s in systems:
        for part in ("light", "handshakes"):
            x = s.get(part) or {}
            if x.get("other_cpu_s") is not None and \
                    x["other_cpu_s"] > max(0.2, 0.1 * x["bench_cpu_s"]):
                noisy.append(x)
    for d in everything:
        if d["system"] != "scrape" or not d.get("modes"):
            continue
        print()
        print(f"monitoring cost (iotgw [metrics]): {d['messages']} QoS 1 readings per mode over "
              f"{d['devices']} devices, one run each after a warm-up")
        print(f"{'':{w0}}" + "".join(f"{k:>20}" for k in d["modes"]))
        for label, key, spec in (
                ("readings/s end to end", "readings_per_s", ",.0f"),
                ("  / the run without a scraper", "throughput_ratio", ".2f"),
                ("gateway CPU s per 100k readings", "gateway_cpu_s_per_100k", ".2f"),
                ("device PUBACK p99 ms", "puback_p99_ms", ".1f"),
                ("scrapes during the run", "scrapes", "d"),
                ("exposition bytes", "exposition_bytes", ",d")):
            print(f"{label:{w0}}" + "".join(f"{fmt(m.get(key), spec):>20}"
                                              for m in d["modes"].values()))
    for d in everything:
        if d["system"] != "durability" or not d.get("modes"):
            continue
        modes = d["modes"]
        print()
        print(f"durability (iotgw group commit): {d['messages']} QoS 1 readings per mode over "
              f"{d['devices']} devices, one run each after a warm-up; spool on {d['state_fs']}")
        print(f"{'':{w0}}" + "".join(f"{'durability = ' + k:>20}" for k in modes))
        for label, key, spec in (
                ("readings/s end to end", "readings_per_s", ",.0f"),
                ("readings/s PUBACKed to devices", "device_ack_rate", ",.0f"),
                ("commits/s", "commits_per_s", ",.0f"),
                ("fsyncs/s issued", "fsyncs_per_s", ",.0f"),
                ("readings per commit", "readings_per_commit", ".1f"),
                ("readings per fsync", "readings_per_fsync", ".1f"),
                ("gateway CPU s per 100k readings", "gateway_cpu_s_per_100k", ".2f"),
                ("CPU s used by other processes", "other_cpu_s", ".1f")):
            print(f"{label:{w0}}" + "".join(f"{fmt(m.get(key), spec):>20}"
                                              for m in modes.values()))
        if d["state_fs"] in ("tmpfs", "ramfs"):
            print(f"WARNING: the spool was on {d['state_fs']}, where fsync costs nothing; "
                  "use --state-dir on a disk.")
        noisy += [m for m in modes.values() if m.get("other_cpu_s") is not None
                  and m["other_cpu_s"] > max(0.2, 0.1 * m["bench_cpu_s"])]
    for d in everything:
        if d["system"] != "storm" or not d.get("variants"):
            continue
        v = d["variants"]
        print()
        print(f"reconnect storm: {d['devices']} mutual-TLS devices connected, the server "
              f"restarted (SIGTERM, start); from its readiness until every device is back with "
              f"a reading acknowledged; devices back off 100-500 ms, offer their last TLS "
              f"session, at most {d['max_handshakes']} connecting at once; iotgw with its "
              f"default threads (auto: one per CPU), the bridge on one thread")
        print(f"{'':{w0}}" + "".join(f"{k:>22}" for k in v))
        for label, key, spec in (("seconds until all are back", "storm_seconds", ".2f"),
                                 ("server CPU s in that time", "gateway_cpu_s", ".2f"),
                                 ("handshakes resumed", "resumed", "d"),
                                 ("full handshakes", "full", "d"),
                                 ("restart (stop to ready) s", "restart_seconds", ".2f")):
            print(f"{label:{w0}}" + "".join(f"{fmt(m.get(key), spec):>22}" for m in v.values()))
        kept, br = v.get("iotgw, sessions kept"), v.get("mosquitto bridge")
        if kept and br and br["storm_seconds"] > 0 and br["gateway_cpu_s"] > 0:
            print(f"{'iotgw (sessions kept) / bridge':{w0}}time "
                  f"{kept['storm_seconds'] / br['storm_seconds']:.2f}x, server CPU "
                  f"{kept['gateway_cpu_s'] / br['gateway_cpu_s']:.2f}x")
    for d in everything:
        if d["system"] != "threads" or not d.get("scaling"):
            continue
        counts = [str(t) for t in d["thread_counts"]]
        print()
        parts = []
        if d.get("idle"):
            parts.append(f"VmRSS with 0 vs {d['idle']} idle connections")
        if d.get("handshakes"):
            parts.append(f"{d['handshakes']} full mutual-TLS handshakes, {d['max_handshakes']} "
                         f"in progress at once, from {d['loadgens']} load generator process(es), "
                         f"median of {d['repeat']} run(s)")
        if d.get("storm_devices"):
            parts.append(f"reconnect storms of {d['storm_devices']} devices (as above, from "
                         f"{d['loadgens']} load generator process(es))")
        print(f"scaling with threads (iotgw [gateway] threads = "
              f"{', '.join(counts)}, a fresh gateway each): " + "; ".join(parts))
        print(f"  the load generators share the {report['cpus']} CPUs with the gateway: "
              "handshakes/s and storm times are bounded by both; the gateway's CPU per "
              "handshake is its own")
        ratios = [f"{t}/{counts[0]}" for t in counts[1:]]
        print(f"{'':{w0}}" + "".join(f"{'threads=' + t:>{w1}}" for t in counts)
              + "".join(f"{r:>{w1}}" for r in ratios) + "  better")
        section = None
        for r in d["scaling"]:
            if r["section"] != section:
                section = r["section"]
                print(f"{section}:")
            print(f"  {r['figure']:{w0 - 2}}"
                  + "".join(f"{fmt(r['values'][t], r['format']):>{w1}}" for t in counts)
                  + "".join(f"{fmt(r['ratios'].get(x), '.2f') if x in r['ratios'] else '':>{w1}}"
                            for x in ratios)
                  + f"  {r['better'] or ''}")
        noisy += [run["handshakes"] for run in d["runs"].values()
                  if run.get("handshakes", {}).get("other_cpu_s") is not None
                  and run["handshakes"]["other_cpu_s"]
                  > max(0.2, 0.1 * run["handshakes"]["bench_cpu_s"])]
    if noisy:
        print("\nWARNING: other processes used the CPUs during the timed runs (see above):")
        print("  throughput and CPU figures are noisy; re-run on an otherwise idle machine.")
    for s in everything:
        if s.get("error"):
            print(f"\n{s['system']} FAILED: {s['error']}")
    print()


def main():
    ap = argparse.ArgumentParser(description="iotgw vs mosquitto bridge benchmark (loopback)")
    ap.add_argument("--quick", action="store_true",
                    help="small numbers (10 devices, 10000 readings, 200 idle, 500 handshakes, "
                    "5 s light load, 1 run): about 1.5 min")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny numbers (3 devices, 300 readings, 20 idle, 50 handshakes, 2 s "
                    "light load; the threads scaling part without its memory figure and its "
                    "sessions-kept storm): checks that every step works, in about 30 s (CI)")
    ap.add_argument("--devices", type=int, help="device connections for throughput (50)")
    ap.add_argument("--messages", type=int, help="QoS 1 readings per run (100000)")
    ap.add_argument("--idle", type=int, help="idle TLS connections for the memory figure "
                    "(2000; 0 skips; at most 15000: the open-file limit is 20000)")
    ap.add_argument("--repeat", type=int, help="timed runs per system, median reported (3)")
    ap.add_argument("--window", type=int, default=10,
                    help="unacknowledged PUBLISHes per device connection (10)")
    ap.add_argument("--inflight", type=int, default=32,
                    help="upstream QoS 1 in-flight window, iotgw and bridge alike (32)")
    ap.add_argument("--tls", choices=["1.2", "1.3"], default="1.3", help="device TLS version")
    ap.add_argument("--handshakes", type=int,
                    help="full mutual-TLS handshakes for the CPU-per-handshake figure "
                    "(2000; 0 skips)")
    ap.add_argument("--max-handshakes", type=int, default=32,
                    help="handshakes in progress at once during that run (32)")
    ap.add_argument("--light-devices", type=int, default=20,
                    help="devices of the light-load run (20)")
    ap.add_argument("--light-rate", type=float, default=10.0,
                    help="readings/s per device in the light-load run (10)")
    ap.add_argument("--light-seconds", type=float,
                    help="length of the light-load run in seconds (10; 0 skips)")
    ap.add_argument("--no-perf", action="store_true",
                    help="do not count syscalls with perf stat")
    ap.add_argument("--time-limit", type=float, default=90.0,
                    help="seconds allowed for one throughput run (90)")
    ap.add_argument("--storm", type=int,
                    help="devices of the reconnect-storm run (10000; 0 skips; at most 15000)")
    ap.add_argument("--storm-handshakes", type=int, default=512,
                    help="devices connecting at once in the storm (512)")
    ap.add_argument("--only", choices=["iotgw", "mosquitto", "durability", "scrape", "storm",
                                       "threads"],
                    help="run one part only")
    ap.add_argument("--threads", default="1,2", metavar="LIST",
                    help="iotgw [gateway] threads counts for the scaling part, comma-separated "
                    "(1..64 each; the first is the base of the ratios) (1,2; '' or 0 skips)")
    ap.add_argument("--threads-loadgens", type=int, metavar="P",
                    help="load generator processes for the scaling part's handshakes and "
                    "storms, the same for every count (default: the largest count)")
    ap.add_argument("--threads-storm", type=int, metavar="K",
                    help="devices of the scaling part's reconnect storms (default: --storm; "
                    "0 skips them)")
    ap.add_argument("--threads-idle", type=int, metavar="K",
                    help="idle connections for the scaling part's memory figure (default: "
                    "--idle; 0 skips it)")
    ap.add_argument("--durability-messages", type=int,
                    help="readings per durability run (fsync, then os) (50000; 0 skips)")
    ap.add_argument("--scrape-messages", type=int,
                    help="readings per monitoring-cost run (no scraper, every 1 s, flood) "
                    "(50000; 0 skips)")
    ap.add_argument("--iotgw-threads", metavar="N",
                    help="[gateway] threads of iotgw in the throughput, light-load, handshake and "
                    "memory runs (default: its default, auto)")
    ap.add_argument("--state-dir", help="where iotgw's spool directories go (default: the "
                    "temporary directory); must be a real disk for the fsync figures")
    ap.add_argument("--iotgw", default=os.environ.get("IOTGW_BIN",
                                                      os.path.join(ROOT, "build", "iotgw")),
                    help="iotgw binary (default $IOTGW_BIN or build/iotgw)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if args.quick and args.smoke:
        ap.error("--quick or --smoke, not both")
    size = "smoke" if args.smoke else "quick" if args.quick else "full"
    for key, full, quick, smoke in (("devices", 50, 10, 3), ("messages", 100000, 10000, 300),
                                    ("idle", 2000, 200, 20), ("repeat", 3, 1, 1),
                                    ("durability_messages", 50000, 10000, 300),
                                    ("scrape_messages", 50000, 10000, 300),
                                    ("handshakes", 2000, 500, 50),
                                    ("storm", 10000, 1000, 50),
                                    ("light_seconds", 10.0, 5.0, 2.0)):
        if getattr(args, key) is None:
            setattr(args, key, {"full": full, "quick": quick, "smoke": smoke}[size])
    if not (1 <= args.devices <= 5000 and args.messages >= 1 and 0 <= args.idle <= 15000
            and 1 <= args.repeat <= 20 and 1 <= args.window <= 65000
            and 1 <= args.inflight <= 65535 and args.durability_messages >= 0
            and 0 <= args.handshakes <= 100000 and 1 <= args.max_handshakes <= 1000
            and 1 <= args.light_devices <= 5000 and 0.1 <= args.light_rate <= 1000
            and 0 <= args.light_seconds <= 600 and 0 <= args.storm <= 15000
            and 1 <= args.storm_handshakes <= 5000
            and args.light_devices * args.light_rate * args.light_seconds < 10_000_000):
        ap.error("out of range: --devices 1..5000, --messages >= 1, --idle 0..15000, "
                 "--repeat 1..20, --window 1..65000, --inflight 1..65535, "
                 "--durability-messages >= 0, --handshakes 0..100000, --max-handshakes "
                 "1..1000, --light-devices 1..5000, --light-rate 0.1..1000, "
                 "--light-seconds 0..600, --storm 0..15000, --storm-handshakes 1..5000")
    try:
        spec = args.threads.strip()
        args.threads = [] if spec in ("", "0", "none") else \
            [int(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        ap.error(f"--threads: a comma-separated list of thread counts, not {args.threads!r}")
    if any(not 1 <= t <= 64 for t in args.threads) or len(set(args.threads)) != len(args.threads):
        ap.error("--threads: distinct counts, each 1..64")
    if args.threads_loadgens is None:
        args.threads_loadgens = max(args.threads, default=1)
    # --smoke keeps its ~30 s: the scaling part skips the memory figure (the same code as
    # the main run's) and the storm with sessions kept; the rest runs with tiny numbers.
    if args.threads_storm is None:
        args.threads_storm = args.storm
    if args.threads_idle is None:
        args.threads_idle = 0 if args.smoke else args.idle
    args.threads_storm_variants = [("sessions kept", "yes"), ("not kept", "no")]
    if args.smoke:
        args.threads_storm_variants = args.threads_storm_variants[1:]
    if not (1 <= args.threads_loadgens <= 64 and 0 <= args.threads_storm <= 15000
            and 0 <= args.threads_idle <= 15000):
        ap.error("out of range: --threads-loadgens 1..64, --threads-storm 0..15000, "
                 "--threads-idle 0..15000")
    args.idle_time_limit = 60 + max(args.idle, args.threads_idle) / 50
    # Memory: how long the RSS must hold still (tiny numbers settle at once).
    args.settle, args.settle_interval = (0.3, 0.3) if args.smoke else (2.0, 1.0)

    procs = Procs()

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    # Explicitly: a shell starts background jobs with SIGINT ignored, and Python keeps that.
    signal.signal(signal.SIGINT, on_term)
    tmp = tempfile.mkdtemp(prefix="iotgw-bench.")
    failed = False
    report = {
        "machine": f"{os.uname().sysname} {os.uname().release} {os.uname().machine}",
        "cpus": os.cpu_count(),
        "parameters": {k: getattr(args, k) for k in ("devices", "messages", "idle", "repeat",
                                                     "window", "inflight", "tls",
                                                     "durability_messages", "scrape_messages",
                                                     "handshakes",
                                                     "max_handshakes", "light_devices",
                                                     "light_rate", "light_seconds", "storm",
                                                     "threads", "threads_loadgens",
                                                     "threads_storm", "threads_idle",
                                                     "smoke")},
        "results": [],
    }
    t_start = time.monotonic()
    try:
        loadgen = build_loadgen(tmp)
        pki = make_pki(tmp)
        env = Env(args, tmp, procs, loadgen, pki)
        report["syscalls_note"] = env.syscalls.note
        env.start_upstream()
        env.log(f"upstream mosquitto on 127.0.0.1:{env.up_port} (pid {env.upstream.pid}); "
                f"temporary files in {tmp}")
        systems = [("iotgw", env.iotgw), ("mosquitto-bridge", env.bridge)]
        if args.durability_messages:
            systems.append(("durability", env.durability))
        if args.scrape_messages:
            systems.append(("scrape", env.scrape))
        if args.storm:
            systems.append(("storm", env.storm))
        if args.threads and (args.threads_idle or args.handshakes or args.threads_storm):
            systems.append(("threads", env.threads))
        for name, fn in systems:
            if args.only and not name.startswith(args.only):
                continue
            try:
                res = fn()
                report["results"].append(res)
                if res.get("error"):
                    failed = True
                    env.log(f"{name}: {res['error']}")
            except BenchError as e:
                failed = True
                report["results"].append({"system": name, "error": str(e)})
                env.log(f"{name}: FAILED: {e}")
            if env.upstream.poll() is not None:
                raise BenchError("the upstream mosquitto died:\n"
                                 + log_tail(env.upstream.bench_log))
    except BenchError as e:
        failed = True
        report["error"] = str(e)
        print(f"bench: {e}", file=sys.stderr)
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        procs.stop_all()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        return 130
    finally:
        procs.stop_all()
    report["comparison"] = comparison([r for r in report["results"]
                                       if r["system"] not in ("durability", "scrape", "storm",
                                                              "threads")])
    report["seconds"] = round(time.monotonic() - t_start, 1)
    if args.json:
        print(json.dumps(report, indent=2))
    elif report["results"]:
        print_table(report)
    if args.keep or failed:
        print(f"bench: logs and configuration kept in {tmp}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
