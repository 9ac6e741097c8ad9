"""[gateway] threads (issue 14): every worker thread has its own listening socket on each address
(SO_REUSEPORT), and the kernel spreads new connections over them; a connection stays on the
worker that accepted it, end to end (TLS, MQTT, decoding). Whatever worker has it, a device
must fare the same: it connects and publishes, a refused certificate is logged with its device
and counted by reason, a peer that stalls is closed at handshake_timeout, a peer that resets is
counted as closed, sessions resume across workers, and a device that comes back on another
worker keeps its sequence numbers, its queued commands and its client id (the old connection
is taken over). iotgw_thread_handshakes_total and iotgw_thread_connections say where."""

import os
import socket
import ssl
import struct

import pytest

import gw
from test_98_downlink import wait_status
from test_00_config_check import check_one
from test_18_hs_evict import client_hello


@pytest.fixture
def mport():
    return gw.free_port()


def start(make_gateway, upstream, mport, threads, **lopts):
    return make_gateway(upstream=upstream, extra="[metrics]\nbind = 127.0.0.1:%d\n" % mport,
                        listeners=[gw.listener("mtls", "mutual", **lopts)],
                        gateway={"threads": threads})


def per_thread(scrape, n, name="iotgw_thread_handshakes_total"):
    return [scrape.get(name, thread=str(i)) for i in range(n)]


def wait_threads(mport, n, total):
    """Scrapes until the handshakes of the n threads add up to `total` (a scrape within 200 ms
    of the last one gets the same rendering: wait for the figure, never read one snapshot);
    returns the scrape and the figures per thread."""
    last = []

    def have():
        s = gw.Scrape(mport)
        last[:] = per_thread(s, n)
        return s if sum(last) == total else None
    try:
        return gw.wait_until(have, what="handshakes per thread"), list(last)
    except AssertionError as e:
        raise AssertionError("handshakes per thread %r, expected %d in all (%s)"
                             % (last, total, e))


def on_thread(g, raw, port, want, held):
    """A raw connection to plaintext listener port (nothing sent yet) that worker `want`
    accepted: the kernel picks the worker (a hash of the addresses and ports), so connections
    are opened until one lands there; those that land elsewhere are kept open in `held`
    (closing them would let the next one reuse the same port, and so the same worker)."""
    for _ in range(40):
        c = raw(port)
        if g.thread_of(c.peer_str) == want:
            return c
        held.append(c)
    raise AssertionError("40 connections, none on worker %d" % want)


def publish_one(raw, pki, g, device, pid):
    d = raw(g.port())
    d.start_tls(pki.client_ctx(cert=device), "127.0.0.1")
    d.connect(device)
    d.send(gw.publish_pkt("%s/t" % device, str(20 + pid), qos=1, pid=pid))
    d.expect(b"\x40\x02" + struct.pack(">H", pid), what="PUBACK")
    return d


def test_connections_spread_over_threads(make_gateway, upstream, raw, pki, mport):
    g = start(make_gateway, upstream, mport, 3)
    ev = g.events("threads_started")
    assert len(ev) == 1 and "devices on 3 worker thread(s)" in ev[0]["msg"], ev
    # Named for top -H and perf.
    names = [open("/proc/%d/task/%s/comm" % (g.pid, t)).read().strip()
             for t in os.listdir("/proc/%d/task" % g.pid)]
    assert sorted(n for n in names if n.startswith("iotgw-w")) == ["iotgw-w1", "iotgw-w2"], \
        names
    devices = ["dev%04d" % (1 + i % 3) for i in range(30)]
    for i, dev in enumerate(devices):
        publish_one(raw, pki, g, dev, i + 1).close()
    for dev in sorted(set(devices)):
        got = upstream.wait_readings(dev, g.name, count=devices.count(dev))
        assert [m.get("seq") for m in got] == list(range(1, devices.count(dev) + 1))
    s = gw.wait_metric(mport, "iotgw_handshakes_total", lambda v: v == 30, listener="mtls")
    assert s.get("iotgw_threads") == 3
    # The kernel spread them: each worker had some (all on one: 3 x (2/3)^30, about 1e-5).
    s, each = wait_threads(mport, 3, 30)
    assert all(n > 0 for n in each), each
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
    wait_threads(mport, 2, 6)
    # The gateway is none the worse: devices publish.
    publish_one(raw, pki, g, "dev0001", 1)
    publish_one(raw, pki, g, "dev0002", 2)
    upstream.wait_readings("dev0002", g.name)
    s = gw.wait_metric(mport, "iotgw_handshakes_in_progress", lambda v: v == 0)
    wait_threads(mport, 2, 8)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3],
                         ids=["tls12", "tls13"])
def test_stalled_handshake_on_a_thread_times_out(make_gateway, upstream, raw, pki, mport,
                                                 version):
    """A peer that sends its ClientHello and then nothing is closed at handshake_timeout,
    on whatever worker it is."""
    g = start(make_gateway, upstream, mport, 2, handshake_timeout="1s")
    hello = client_hello(pki.client_ctx(cert="dev0001", max_version=version))
    held = []
    for _ in range(4):
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
    # Given up, never finished: no thread counts them.
    wait_threads(mport, 2, 0)
    publish_one(raw, pki, g, "dev0001", 1)
    publish_one(raw, pki, g, "dev0002", 2)
    upstream.wait_readings("dev0002", g.name)
    s = gw.wait_metric(mport, "iotgw_handshakes_total", lambda v: v == 2, listener="mtls")
    wait_threads(mport, 2, 2)


def test_resets_mid_handshake(make_gateway, upstream, raw, pki, mport):
    """Peers that reset right after their ClientHello, many at once: each ends as one failed
    handshake, on whatever worker it was."""
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
    """A session made on one worker resumes on another (one store, shared under its lock)."""
    g = start(make_gateway, upstream, mport, 2)
    ctx = pki.client_ctx(cert="dev0004")
    session = None
    reused = []
    pid = 0
    each = [0, 0]
    # Until both workers have resumed one (each connection lands on one: 1/2 each way).
    while (min(each) < 2 or pid < 5) and pid < 40:
        pid += 1
        s = socket.create_connection(("127.0.0.1", g.port()), timeout=gw.WAIT)
        t = ctx.wrap_socket(s, server_hostname="127.0.0.1", session=session)
        t.sendall(gw.connect_pkt("dev0004"))
        assert t.recv(4) == gw.CONNACK_OK  # TLS 1.3: the ticket arrived before it
        t.sendall(gw.publish_pkt("dev0004/t", str(pid), qos=1, pid=pid))
        assert t.recv(4) == b"\x40\x02" + struct.pack(">H", pid)
        reused.append(t.session_reused)
        session = t.session
        t.close()
        _, each = wait_threads(mport, 2, pid)
    assert min(each) >= 2, each
    assert reused == [False] + [True] * (pid - 1), reused
    upstream.wait_readings("dev0004", g.name, count=pid)
    gw.wait_metric(mport, "iotgw_handshakes_total", lambda v: v == pid, listener="mtls")


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
    wait_threads(mport, 2, 2)


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
    assert "devices on 1 worker thread(s)" in ev["msg"], ev["raw"]
    # A number is taken as written, quota or not.
    g2 = make_gateway(upstream=upstream, listeners=[gw.listener("mtls2", "mutual")],
                      gateway={"threads": 2}, prefix=join)
    (ev,) = g2.events("threads_started")
    assert "threads = 2: devices on 2 worker thread(s)" in ev["msg"], ev["raw"]


def test_auto_without_a_quota_says_so(make_gateway, upstream, mport):
    g = start(make_gateway, upstream, mport, "auto")
    (ev,) = g.wait_event("threads_started")
    n = len(os.sched_getaffinity(g.pid))
    assert ("threads = auto: %d CPU(s) in the affinity" % n) in ev["msg"], ev["raw"]


def test_a_device_that_comes_back_on_another_worker_keeps_its_state(make_gateway, upstream, raw,
                                                                    mport):
    """Its sequence numbers, its subscription (clean session 0) and the command queued while it
    was away belong to the owner, not to the worker it was on; and its client id too: a second
    connection with it, on the first worker again, takes over."""
    from test_98_downlink import WATSON, downlink, send_command, split_publish, subscribed
    g = subscribed(make_gateway(upstream=upstream,
                                extra="[metrics]\nbind = 127.0.0.1:%d\n" % mport + downlink(),
                                listeners=[gw.listener("plain", "off")],
                                gateway={"threads": 2}))
    port = g.port("plain")
    a = raw(port)
    a.send(gw.connect_pkt("dev0190", clean=False))
    assert a.read_packet() == b"\x20\x02\x00\x00"
    first = g.thread_of(a.peer_str)
    a.send(gw.subscribe_pkt(1, [(WATSON, 1)]))
    assert a.read_packet() == b"\x90\x03\x00\x01\x01"
    a.send(gw.publish_pkt("esp/t", "21", qos=1, pid=1))
    a.expect(b"\x40\x02\x00\x01", what="PUBACK")
    a.close()
    g.wait_event("device_disconnected", peer=a.peer_str)
    topic = send_command(g, "dev0190", "display", '{"n":1}', upstream)
    g.wait_event("command_received", device="dev0190")
    # Back, on the other worker.
    held = []
    b = on_thread(g, raw, port, 1 - first, held)
    for c in held:
        c.close()
    b.send(gw.connect_pkt("dev0190", clean=False))
    assert b.read_packet() == b"\x20\x02\x01\x00"  # session present: the subscription kept
    flags, t, pid, payload = split_publish(b.read_packet())
    assert (t, payload) == ("iot-2/cmd/display/fmt/json", b'{"n":1}')
    b.send(b"\x40\x02" + pid.to_bytes(2, "big"))
    wait_status(upstream, topic, "delivered")
    b.send(gw.publish_pkt("esp/t", "22", qos=1, pid=2))
    b.expect(b"\x40\x02\x00\x02", what="PUBACK on the other worker")
    got = upstream.wait_readings("dev0190", g.name, count=2)
    assert [m.get("seq") for m in got] == [1, 2]
    assert [m.get("temperature_c") for m in got] == [21, 22]
    # A third connection with the same client id, on the first worker: it takes over.
    held = []
    c = on_thread(g, raw, port, first, held)
    for h in held:
        h.close()
    c.send(gw.connect_pkt("dev0190", clean=False))
    assert c.read_packet() == b"\x20\x02\x01\x00"
    ev = g.wait_event("session_taken_over", peer=b.peer_str)
    assert "client id dev0190 connected again from %s" % c.peer_str in ev[0]["msg"], ev[0]["raw"]
    b.wait_closed()
    c.send(gw.publish_pkt("esp/t", "23", qos=1, pid=3))
    c.expect(b"\x40\x02\x00\x03", what="PUBACK after the takeover")
    got = upstream.wait_readings("dev0190", g.name, count=3)
    assert [m.get("seq") for m in got] == [1, 2, 3]
