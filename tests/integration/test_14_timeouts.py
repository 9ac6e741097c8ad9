"""Every waiting state has a deadline: TLS handshake (handshake_timeout), CONNECT
(connect_timeout) and keepalive (closed after 1.5 x keepalive idle, capped by max_keepalive)."""

import time

import pytest

import gw

# Generous upper bounds: timers must fire, but an ASan build on a busy machine is slow.
LATE = 6.0


@pytest.fixture(scope="module")
def g(request, tmp_path_factory, pki, upstream):
    return gw.module_gateway(
        request, tmp_path_factory, pki, upstream=upstream,
        gateway={"connect_timeout": "1s", "max_keepalive": "2s"},
        listeners=[gw.listener("plain", "off"),
                   gw.listener("tls", "server", handshake_timeout="1s")])


def closes_after(conns, timeout=LATE, since="open"):
    """Seconds until each connection was closed by the gateway, counted from just before
    its TCP connect (since="open": for timers that start at accept or later) or just
    before the last bytes we sent (since="sent": for the keepalive, which counts from the
    last packet received). The gateway's timer cannot have started earlier, so a test
    thread that is slow to get here cannot make a timer look early."""
    out = []
    for c in conns:
        start = c.t_open if since == "open" else c.t_sent
        left = max(0.1, start + timeout - time.monotonic())
        c.wait_closed(left)
        out.append(time.monotonic() - start)
    return out


def test_tls_handshake_timeout(g, raw):
    silent = raw(g.port("tls"))               # TCP only, not a byte
    partial = raw(g.port("tls"))
    partial.send(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, then nothing
    t_silent, t_partial = closes_after([silent, partial])
    assert 0.8 <= t_silent <= LATE, t_silent
    assert 0.8 <= t_partial <= LATE, t_partial
    g.wait_event("tls_handshake_timeout", peer=silent.peer_str, listener="tls")
    g.wait_event("tls_handshake_timeout", peer=partial.peer_str, listener="tls")


def test_connect_timeout_plaintext(g, raw):
    silent = raw(g.port("plain"))
    partial = raw(g.port("plain"))
    partial.send(gw.connect_pkt("dev0140")[:5])  # half a CONNECT
    t_silent, t_partial = closes_after([silent, partial])
    assert 0.8 <= t_silent <= LATE, t_silent
    assert 0.8 <= t_partial <= LATE, t_partial
    g.wait_event("connect_timeout", peer=silent.peer_str)
    g.wait_event("connect_timeout", peer=partial.peer_str)


def test_connect_timeout_after_tls_handshake(g, raw, pki):
    c = raw(g.port("tls"), tls=pki.client_ctx())
    (t,) = closes_after([c])
    assert 0.8 <= t <= LATE, t
    g.wait_event("connect_timeout", peer=c.peer_str)
    assert not g.events("tls_handshake_timeout", peer=c.peer_str)


def test_keepalive_timeout(g, raw):
    c = raw(g.port("plain"))
    c.connect("dev0141", keepalive=1)
    (t,) = closes_after([c], since="sent")
    # 1.5 x 1 s; allow for a coarse timer, never earlier than the keepalive itself.
    assert 1.2 <= t <= LATE, t
    ev = g.wait_event("keepalive_timeout", peer=c.peer_str)
    assert ev[0].get("device") == "dev0141", ev[0]["raw"]


def test_keepalive_kept_by_traffic(g, raw, upstream):
    c = raw(g.port("plain"))
    c.connect("dev0142", keepalive=1)
    # 3 s of activity (PINGREQ and QoS 0 PUBLISH every 0.5 s) keeps the session open.
    for i in range(6):
        time.sleep(0.5)
        if i % 2:
            c.send(gw.PINGREQ)
            c.expect(gw.PINGRESP, what="PINGRESP")
        else:
            c.send(gw.publish_pkt("esp/t", "2%d" % i))
    upstream.wait_readings("dev0142", g.name, count=3)
    # By device: a source port of an earlier test's connection to this gateway may be reused.
    assert not g.events("keepalive_timeout", device="dev0142")
    (t,) = closes_after([c], since="sent")
    assert 1.2 <= t <= LATE, t


def test_max_keepalive_caps_device_keepalive(g, raw):
    # max_keepalive = 2s: keepalive 0 ("never") and 60 are both held to 2 s (closed at 3 s).
    zero = raw(g.port("plain"))
    zero.connect("dev0143", keepalive=0)
    big = raw(g.port("plain"))
    big.connect("dev0144", keepalive=60)
    t_zero, t_big = closes_after([zero, big], timeout=LATE + 3, since="sent")
    assert 2.5 <= t_zero <= LATE + 3, t_zero
    assert 2.5 <= t_big <= LATE + 3, t_big
    g.wait_event("keepalive_timeout", device="dev0143")
    g.wait_event("keepalive_timeout", device="dev0144")
