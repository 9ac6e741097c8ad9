"""The upstream PUBLISHes of one loop iteration share TLS records (libmosquitto writes one
packet per SSL_write, and OpenSSL would make a record of each: the broker's work per message
is what bounds the rate end to end), and a flush the socket cannot take at once finishes when
it can, without dropping the connection or losing a byte. A relay between the gateway and
the real upstream broker reads the record headers (the records stay encrypted)."""

import time

import pytest

import gw

WINDOW = 20


@pytest.fixture
def relay(upstream):
    r = gw.RecordRelay(upstream.port, rcvbuf=65536)
    yield r
    r.close()


def gateway_via(make_gateway, upstream, relay, **kw):
    g = make_gateway(upstream=upstream, upstream_opts={"port": relay.port,
                                                       "inflight": WINDOW}, **kw)
    g.wait_event("upstream_connected")
    return g


def test_a_window_of_publishes_leaves_in_a_few_records(make_gateway, upstream, relay, raw):
    g = gateway_via(make_gateway, upstream, relay)
    n = 5 * WINDOW
    d = raw(g.port())
    d.connect("dev0430")
    relay.pause()
    try:
        mark = relay.mark()
        # Every reading in one write: one iteration takes them in and commits them, and the
        # upstream sends a whole window (nothing more: the relay holds the broker's PUBACKs
        # back by holding the PUBLISHes).
        d.send(b"".join(gw.publish_pkt("esp/t", str(i % 50), qos=1, pid=i + 1)
                        for i in range(n)))
        acked = []
        while len(acked) < n:
            acked += gw.pubacks([d.read_packet(gw.WAIT)])
        g.loop_barrier()
        time.sleep(0.3)  # the bytes the gateway wrote reach the relay's socket
    finally:
        relay.resume()
    got = upstream.wait_readings("dev0430", g.name, count=n, timeout=gw.WAIT + 5)
    assert [m.get("seq") for m in got] == list(range(1, n + 1))
    # The first window of PUBLISHes (about 200 bytes each) went in the records written
    # before the relay read on: one per flush, not one per PUBLISH.
    recs = relay.since(mark)
    assert sum(length for _, length in recs) >= WINDOW * 150, recs
    first_window = []
    total = 0
    for r in recs:
        first_window.append(r)
        total += r[1]
        if total >= WINDOW * 150:
            break
    assert len(first_window) <= 4, (
        "%d TLS records for a window of %d PUBLISHes: one record per packet" % (
            len(first_window), WINDOW), recs[:WINDOW])
    assert not g.events("upstream_down")


def test_a_flush_the_socket_cannot_take_finishes_later(make_gateway, upstream, relay, raw):
    # Dead letters of 600 KB each (800 KB in base64), a window of them: about 10 MB, more
    # than the gateway's socket and the paused relay's window hold, so the flush stops
    # part way (OpenSSL: want write) and goes on at EPOLLOUT.
    g = gateway_via(make_gateway, upstream, relay, gateway={"max_packet_size": "1M"})
    n, size = 12, 600 * 1024
    d = raw(g.port())
    d.connect("dev0431")
    relay.pause()
    try:
        for i in range(n):
            d.send(gw.publish_pkt("esp/t", bytes([65 + i]) * size, qos=1, pid=i + 1))
        acked = []
        while len(acked) < n:
            acked += gw.pubacks([d.read_packet(gw.WAIT)])
        g.loop_barrier()
        time.sleep(1.0)
    finally:
        relay.resume()
    got = upstream.wait_deadletters("dev0431", g.name, count=n, timeout=gw.WAIT + 20)
    assert [m.json["payload_b64"] for m in got] == [
        gw.b64(bytes([65 + i]) * size) for i in range(n)]
    d.send(gw.publish_pkt("esp/t", "21.5", qos=1, pid=100))
    assert gw.pubacks([d.read_packet(gw.WAIT)]) == [100]
    (r,) = upstream.wait_readings("dev0431", g.name)
    assert r.get("temperature_c") == 21.5
    assert not g.events("upstream_down"), "the blocked flush cost the connection"
