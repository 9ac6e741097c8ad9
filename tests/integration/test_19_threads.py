"""[gateway] threads (issue 14): TLS handshakes, once their ClientHello is read, are spread
round-robin over the event loop and the handshake threads, and come back to the loop done or
failed. Whatever thread ran it, a handshake must end the same way: the device connects and
publishes, a refused certificate is logged with its device and counted by reason, a peer that
stalls is closed at handshake_timeout, a peer that resets is counted as closed, and sessions
resume across threads. iotgw_thread_handshakes_total says where each ran."""

import os
import socket
import ssl
import struct

import pytest

import gw
from test_00_config_check import check_one
from test_18_hs_evict import client_hello


@pytest.fixture
def mport():
    return gw.free_port()


def start(make_gateway, upstream, mport, threads, **lopts):
    return make_gateway(upstream=upstream, extra="[metrics]\nbind = 127.0.0.1:%d\n" % mport,
                        listeners=[gw.listener("mtls", "mutual", **lopts)],
                        gateway={"threads": threads})


def per_thread(scrape, n):
    return [scrape.get("iotgw_thread_handshakes_total", thread=str(i)) for i in range(n)]


def wait_threads(mport, expected):
    """Scrapes until the handshakes per thread are `expected` (a scrape within 200 ms of the
    last one gets the same rendering: wait for the figure, never read one snapshot)."""
    last = []

    def have():
        s = gw.Scrape(mport)
        last[:] = per_thread(s, len(expected))
        return s if last == expected else None
    try:
        return gw.wait_until(have, what="handshakes per thread")
    except AssertionError as e:
        raise AssertionError("handshakes per thread %r, expected %r (%s)" % (last, expected, e))


def publish_one(raw, pki, g, device, pid):
    d = raw(g.port())
    d.start_tls(pki.client_ctx(cert=device), "127.0.0.1")
    d.connect(device)
    d.send(gw.publish_pkt("%s/t" % device, str(20 + pid), qos=1, pid=pid))
    d.expect(b"\x40\x02" + struct.pack(">H", pid), what="PUBACK")
    return d


def test_handshakes_spread_over_threads(make_gateway, upstream, raw, pki, mport):
    g = start(make_gateway, upstream, mport, 3)
    ev = g.events("threads_started")
    assert len(ev) == 1 and "TLS handshakes on 3 thread(s)" in ev[0]["msg"], ev
    # Named for top -H and perf.
    names = [open("/proc/%d/task/%s/comm" % (g.pid, t)).read().strip()
             for t in os.listdir("/proc/%d/task" % g.pid)]
    assert sorted(n for n in names if n.startswith("iotgw-hs")) == ["iotgw-hs1", "iotgw-hs2"], \
        names
    devices = ["dev%04d" % (1 + i % 3) for i in range(30)]
    for i, dev in enumerate(devices):
        publish_one(raw, pki, g, dev, i + 1).close()
    for dev in sorted(set(devices)):
        upstream.wait_readings(dev, g.name, count=devices.count(dev))
    s = gw.wait_metric(mport, "iotgw_handshakes_total", lambda v: v == 30, listener="mtls")
    assert s.get("iotgw_threads") == 3
    # The loop takes every third ClientHello; the two threads, one after the other, the rest.
    s = wait_threads(mport, [10, 10, 10])
    assert s.get("iotgw_handshakes_in_progress") == 0


def test_refused_certificates_on_a_thread(make_gateway, upstream, raw, pki, mport):
    g = start(make_gateway, upstream, mport, 2)
    peers = []
    for cert in ["intruder"] * 4 + ["expired"] * 2:
        c = raw(g.port())
        peers.append((cert, c.peer_str))
        with pytest.raises((ssl.SSLError, OSError, gw.Closed)):
            c.start_tls(pki.client_ctx(cert=cert), "127.0.0.1")
            c.read_exact(1)  # TLS 1.3: the refusal comes after the client's Finished
    for cert, peer in peers:
        ev = g.wait_event("tls_handshake_failed", peer=peer)
        assert ev[0]["listener"] == "mtls", ev[0]["raw"]
        if cert == "expired":  # the refused certificate's device is named
            assert ev[0].get("device") == "dev0666", ev[0]["raw"]
            assert "certificate has expired" in ev[0]["msg"], ev[0]["raw"]
        else:
            assert "unable to get local issuer certificate" in ev[0]["msg"], ev[0]["raw"]
    s = gw.wait_metric(mport, "iotgw_handshake_failures_total", lambda v: v == 4,
                       listener="mtls", reason="unknown_ca")
    assert s.get("iotgw_handshake_failures_total", listener="mtls", reason="expired") == 2
    s = wait_threads(mport, [3, 3])
    # The gateway is none the worse: a device publishes through each thread.
    publish_one(raw, pki, g, "dev0001", 1)
    publish_one(raw, pki, g, "dev0002", 2)
    upstream.wait_readings("dev0002", g.name)
    s = gw.wait_metric(mport, "iotgw_handshakes_in_progress", lambda v: v == 0)
    s = wait_threads(mport, [4, 4])


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3],
                         ids=["tls12", "tls13"])
def test_stalled_handshake_on_a_thread_times_out(make_gateway, upstream, raw, pki, mport,
                                                 version):
    """A peer that sends its ClientHello and then nothing is closed at handshake_timeout,
    also while a handshake thread holds it: the loop gives it up, the thread frees it."""
    g = start(make_gateway, upstream, mport, 2, handshake_timeout="1s")
    hello = client_hello(pki.client_ctx(cert="dev0001", max_version=version))
    held = []
    for _ in range(4):  # two on the loop, two on the thread
        c = raw(g.port())
        c.send(hello)
        assert c.read_exact(1)[0] == 0x16  # the server's flight: its hello was read
        held.append(c)
    for c in held:
        t, got = c.wait_closed(timeout=gw.WAIT)
        assert got == b"", got
        ev = g.wait_event("tls_handshake_timeout", peer=c.peer_str)
        assert "not completed within 1000 ms" in ev[0]["msg"], ev[0]["raw"]
    s = gw.wait_metric(mport, "iotgw_handshakes_in_progress", lambda v: v == 0)
    assert s.get("iotgw_handshake_failures_total", listener="mtls", reason="timeout") == 4
    # Given up, never finished: neither thread counts them.
    s = wait_threads(mport, [0, 0])
    publish_one(raw, pki, g, "dev0001", 1)
    publish_one(raw, pki, g, "dev0002", 2)
    upstream.wait_readings("dev0002", g.name)
    s = gw.wait_metric(mport, "iotgw_handshakes_total", lambda v: v == 2, listener="mtls")
    s = wait_threads(mport, [1, 1])


def test_resets_mid_handshake(make_gateway, upstream, raw, pki, mport):
    """Peers that reset right after their ClientHello, many at once: each ends as one failed
    handshake wherever it was (on its way to a thread, there, or on its way back)."""
    g = start(make_gateway, upstream, mport, 3, max_connection_rate_per_address=0)
    hello = client_hello(pki.client_ctx(cert="dev0001"))
    n = 120
    for _ in range(n):
        c = raw(g.port())
        c.send(hello)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()  # RST
    ended = []

    def all_ended():
        sc = gw.Scrape(mport)
        failed = sum(sc.get("iotgw_handshake_failures_total", listener="mtls", reason=r)
                     for r in ("closed", "protocol"))
        ended[:] = [failed, sc.get("iotgw_handshakes_total", listener="mtls"),
                    sc.get("iotgw_handshakes_in_progress")]
        return ended[0] + ended[1] == n and ended[2] == 0
    gw.wait_until(all_ended, what="every handshake ended: %r" % ended)
    failed = ended[0]
    assert len(g.events("tls_handshake_failed")) == failed
    publish_one(raw, pki, g, "dev0003", 1)
    upstream.wait_readings("dev0003", g.name)


def test_sessions_resume_across_threads(make_gateway, upstream, raw, pki, mport):
    """A session made on one thread resumes on another (one store, shared under its lock)."""
    g = start(make_gateway, upstream, mport, 2)
    ctx = pki.client_ctx(cert="dev0004")
    session = None
    reused = []
    for pid in range(1, 6):
        s = socket.create_connection(("127.0.0.1", g.port()), timeout=gw.WAIT)
        t = ctx.wrap_socket(s, server_hostname="127.0.0.1", session=session)
        t.sendall(gw.connect_pkt("dev0004"))
        assert t.recv(4) == gw.CONNACK_OK  # TLS 1.3: the ticket arrived before it
        t.sendall(gw.publish_pkt("dev0004/t", str(pid), qos=1, pid=pid))
        assert t.recv(4) == b"\x40\x02" + struct.pack(">H", pid)
        reused.append(t.session_reused)
        session = t.session
        t.close()
    assert reused == [False, True, True, True, True], reused
    upstream.wait_readings("dev0004", g.name, count=5)
    s = gw.wait_metric(mport, "iotgw_handshakes_total", lambda v: v == 5, listener="mtls")
    s = wait_threads(mport, [3, 2])


def test_threads_option(pki, tmp_path):
    for bad in ("0", "65", "two", "-1"):
        r, diags, line = check_one(pki, tmp_path, "connect_timeout", "threads = %s" % bad)
        assert r.returncode == 78, r.stderr
        assert any(n == line and "invalid value '%s' for 'threads'" % bad in m and
                   "auto, or 1 to 64" in m for n, m in diags), r.stderr
    for good in ("auto", "1", "64"):
        r = check_one(pki, tmp_path, "connect_timeout", "threads = %s" % good)[0]
        assert r.returncode == 0, r.stderr


def test_reload_keeps_the_threads(make_gateway, upstream, raw, pki, mport):
    g = start(make_gateway, upstream, mport, 2)
    g.gateway_opts["threads"] = 1
    g.write_config()
    g.reload()
    ev = g.wait_event("config_warning")
    assert "[gateway] threads changed to 1: takes effect at the next start; still 2 " \
        "(2 thread(s))" in ev[0]["msg"], ev[0]["raw"]
    publish_one(raw, pki, g, "dev0001", 1)
    publish_one(raw, pki, g, "dev0002", 2)
    s = gw.wait_metric(mport, "iotgw_handshakes_total", lambda v: v == 2, listener="mtls")
    assert s.get("iotgw_threads") == 2
    s = wait_threads(mport, [1, 1])


def test_auto_is_the_cpus(make_gateway, upstream, mport):
    g = start(make_gateway, upstream, mport, "auto")
    s = gw.wait_metric(mport, "iotgw_threads", lambda v: v is not None)
    assert s.get("iotgw_threads") == min(len(os.sched_getaffinity(g.pid)), 64)


def _words(path):
    """The words of a file, none if it does not exist."""
    try:
        with open(path) as f:
            return f.read().split()
    except FileNotFoundError:
        return []


def _quota_cgroup(parent, cpus):
    """A cgroup `parent` (created) with a CPU quota of `cpus` CPUs and a child "inner" without
    one; returns (the directory the quota is on, the child's cgroup.procs), or None when
    neither a cgroup v1 cpu hierarchy nor a cgroup v2 one with the cpu controller can be
    written here."""
    v1 = "/sys/fs/cgroup/cpu"
    v2 = "/sys/fs/cgroup"
    if os.path.exists(os.path.join(v1, "cpu.cfs_quota_us")):
        d = os.path.join(v1, parent)
        os.makedirs(os.path.join(d, "inner"))
        with open(os.path.join(d, "cpu.cfs_period_us"), "w") as f:
            f.write("100000")
        with open(os.path.join(d, "cpu.cfs_quota_us"), "w") as f:
            f.write(str(int(cpus * 100000)))
    elif "cpu" in _words(os.path.join(v2, "cgroup.controllers")):
        with open(os.path.join(v2, "cgroup.subtree_control"), "w") as f:
            f.write("+cpu")
        d = os.path.join(v2, parent)
        os.makedirs(os.path.join(d, "inner"))
        with open(os.path.join(d, "cpu.max"), "w") as f:
            f.write("%d 100000" % int(cpus * 100000))
    else:
        return None
    return d, os.path.join(d, "inner", "cgroup.procs")


@pytest.fixture
def quota_cgroup():
    made = []

    def factory(cpus):
        parent = "iotgw-test-%d-%d" % (os.getpid(), len(made))
        try:
            got = _quota_cgroup(parent, cpus)
        except OSError as e:
            pytest.skip("cannot make a cgroup with a CPU quota here: %s" % e)
        if got is None:
            pytest.skip("no writable cgroup hierarchy with the cpu controller here")
        made.append(got[0])
        return got

    yield factory
    for d in made:  # after the gateways (requested later, stopped first)
        for sub in (os.path.join(d, "inner"), d):
            try:
                os.rmdir(sub)
            except OSError:
                pass


def test_auto_follows_a_cpu_quota(quota_cgroup, make_gateway, upstream, mport):
    # A quota on the parent cgroup (a slice, systemd's CPUQuota=, docker --cpus) limits the
    # gateway in its child: auto counts it, not the cores of the affinity.
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one CPU: a quota of one cannot lower auto")
    qdir, procs = quota_cgroup(0.5)
    # The shell puts itself in the cgroup, then becomes the gateway (same PID).
    join = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', procs]
    g = make_gateway(upstream=upstream, extra="[metrics]\nbind = 127.0.0.1:%d\n" % mport,
                     listeners=[gw.listener("mtls", "mutual")], gateway={"threads": "auto"},
                     prefix=join)
    s = gw.wait_metric(mport, "iotgw_threads", lambda v: v is not None)
    assert s.get("iotgw_threads") == 1
    (ev,) = g.events("threads_started")
    assert ("threads = auto: %d CPU(s) in the affinity, a CPU quota of 1 at %s" % (
        len(os.sched_getaffinity(g.pid)), qdir)) in ev["msg"], ev["raw"]
    assert "TLS handshakes on 1 thread(s)" in ev["msg"], ev["raw"]
    # A number is taken as written, quota or not.
    g2 = make_gateway(upstream=upstream, listeners=[gw.listener("mtls2", "mutual")],
                      gateway={"threads": 2}, prefix=join)
    (ev,) = g2.events("threads_started")
    assert "threads = 2: TLS handshakes on 2 thread(s)" in ev["msg"], ev["raw"]


def test_auto_without_a_quota_says_so(make_gateway, upstream, mport):
    g = start(make_gateway, upstream, mport, "auto")
    (ev,) = g.wait_event("threads_started")
    n = len(os.sched_getaffinity(g.pid))
    assert ("threads = auto: %d CPU(s) in the affinity" % n) in ev["msg"], ev["raw"]
