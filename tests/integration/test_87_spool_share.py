"""A device's share of the spool: while the upstream is away, a device that publishes far more
than the others (a runaway firmware) is held back alone once over its share, so the spool keeps
room for the others; nothing is dropped, and all of it arrives when the upstream returns.

- max_messages_per_device: a fixed share. The runaway gets exactly that many PUBACKs, then
  none (event=spool_share_exceeded names it and the limit); honest devices are read and
  acknowledged meanwhile; what each device holds survives kill -9 (the spool's rows carry their
  device), so the runaway is held again at once after a restart.
- fair_share (on by default): from half full, the spool's limit divided by the devices
  competing for it (connected, or holding readings)."""

import pytest

import gw

LIMIT = 30
N = 100


def burst(n, first=0):
    """n QoS 1 PUBLISHes in one write, packet ids first+1.., readings first.."""
    return b"".join(gw.publish_pkt("esp/t", str((first + i) % 60), qos=1, pid=first + i + 1)
                    for i in range(n))


def read_acks(d, n, timeout=gw.WAIT):
    acked = []
    while len(acked) < n:
        acked += gw.pubacks([d.read_packet(timeout)])
    return acked


def assert_no_more(g, d, what):
    g.loop_barrier()
    extra = gw.pubacks(d.available_packets())
    assert not extra, "PUBACKs for %s: %s" % (what, extra)
    assert not d.closed, "%s was disconnected" % what


@pytest.fixture
def mport():
    return gw.free_port()


def test_device_over_its_limit_waits_alone(make_gateway, upstream, raw, mport):
    upstream.stop()
    try:
        g = make_gateway(upstream=upstream, spool={"max_messages_per_device": LIMIT},
                         extra="[metrics]\nbind = 127.0.0.1:%d\n" % mport)
        run = raw(g.port())
        run.connect("dev0870")
        run.send(burst(N))
        ev = g.wait_event("spool_share_exceeded", device="dev0870")
        assert ev[0]["level"] == "warning", ev[0]["raw"]
        assert "holds %d reading(s)" % LIMIT in ev[0]["msg"], ev[0]["raw"]
        assert "max_messages_per_device of %d" % LIMIT in ev[0]["msg"], ev[0]["raw"]
        assert read_acks(run, LIMIT) == list(range(1, LIMIT + 1))
        assert_no_more(g, run, "a device over max_messages_per_device")
        gw.wait_metric(mport, "iotgw_devices_over_share", lambda v: v == 1)
        gw.wait_metric(mport, "iotgw_spool_share_episodes_total", lambda v: v == 1)
        # The others are read meanwhile: every reading acknowledged, in order.
        for k in range(1, 4):
            h = raw(g.port())
            h.connect("dev087%d" % k)
            h.send(burst(10))
            assert read_acks(h, 10) == list(range(1, 11))
        gw.wait_metric(mport, "iotgw_spool_devices", lambda v: v == 4)
        want = "dev0870=%d dev0871=10 dev0872=10 dev0873=10" % LIMIT
        g.spool_stats_when(lambda s: s["top_devices"] == want, "top_devices: " + want)
        assert not g.events("spool_full"), [e["raw"] for e in g.events("spool_full")]
        assert len(g.events("spool_share_exceeded")) == 1

        # What the runaway holds survives a crash: held again at its first reading.
        g.restart()
        run = raw(g.port())
        run.connect("dev0870")
        run.send(gw.publish_pkt("esp/t", "42", qos=1, pid=7))
        g.wait_event("spool_share_exceeded", device="dev0870")
        assert_no_more(g, run, "a device over its share after a restart")
        h = raw(g.port())
        h.connect("dev0871")
        h.send(gw.publish_pkt("esp/t", "43", qos=1, pid=11))
        h.expect(b"\x40\x02\x00\x0b", what="PUBACK of a device within its share")
    finally:
        upstream.start()
    # The upstream takes the runaway's readings: it is read again, and nothing was lost.
    run.expect(b"\x40\x02\x00\x07", timeout=gw.WAIT + 5, what="PUBACK once the upstream drains")
    rel = g.wait_event("spool_share_released", device="dev0870")
    assert rel[0]["level"] == "notice", rel[0]["raw"]
    got = upstream.wait_readings("dev0870", g.name, count=LIMIT + 1, timeout=gw.WAIT + 5)
    assert [m.get("seq") for m in got] == list(range(1, LIMIT + 2))
    assert [m.get("temperature_c") for m in got] == list(range(LIMIT)) + [42]
    got = upstream.wait_readings("dev0871", g.name, count=11, timeout=gw.WAIT + 5)
    assert [m.get("seq") for m in got] == list(range(1, 12))
    gw.wait_metric(mport, "iotgw_devices_over_share", lambda v: v == 0)


def test_reload_that_raises_the_share_reads_the_device_again(make_gateway, upstream, raw):
    upstream.stop()
    try:
        g = make_gateway(upstream=upstream, spool={"max_messages_per_device": 5})
        run = raw(g.port())
        run.connect("dev0874")
        run.send(burst(10))
        assert read_acks(run, 5) == [1, 2, 3, 4, 5]
        g.wait_event("spool_share_exceeded", device="dev0874")
        assert_no_more(g, run, "a device over max_messages_per_device")
        g.spool["max_messages_per_device"] = 100
        g.write_config()
        g.reload()
        # With the upstream still away: read again because the share grew.
        assert read_acks(run, 5) == [6, 7, 8, 9, 10]
    finally:
        upstream.start()
    got = upstream.wait_readings("dev0874", g.name, count=10, timeout=gw.WAIT + 5)
    assert [m.get("seq") for m in got] == list(range(1, 11))


MAX = 200
HONEST = 4


def test_fair_share_holds_the_runaway_first(make_gateway, upstream, raw):
    upstream.stop()
    try:
        g = make_gateway(upstream=upstream, max_messages=MAX)
        honest = []
        for k in range(HONEST):
            h = raw(g.port())
            h.connect("dev0875%d" % k)
            honest.append(h)
        run = raw(g.port())
        run.connect("dev0879")
        run.send(burst(2 * MAX))
        # Alone in the spool up to half full; then over MAX / 5 devices competing.
        ev = g.wait_event("spool_share_exceeded", device="dev0879")
        assert "fair share of max_messages of %d" % (MAX // (HONEST + 1)) in ev[0]["msg"], \
            ev[0]["raw"]
        assert read_acks(run, MAX // 2) == list(range(1, MAX // 2 + 1))
        assert_no_more(g, run, "a device over its fair share")
        # The honest devices still find room: 4 x 20 more readings, all acknowledged.
        for h in honest:
            h.send(burst(20))
        for h in honest:
            assert read_acks(h, 20) == list(range(1, 21))
        assert not g.events("spool_full"), [e["raw"] for e in g.events("spool_full")]
        g.spool_stats_when(lambda s: s.int("queued") == MAX // 2 + 20 * HONEST,
                           "--spool-stats queued: %d" % (MAX // 2 + 20 * HONEST))
    finally:
        upstream.start()
    # Everything arrives once the upstream is back, the runaway's 400 in order.
    acked = read_acks(run, 2 * MAX - MAX // 2, timeout=gw.WAIT + 10)
    assert acked == list(range(MAX // 2 + 1, 2 * MAX + 1))
    got = upstream.wait_readings("dev0879", g.name, count=2 * MAX, timeout=gw.WAIT + 10)
    assert [m.get("seq") for m in got] == list(range(1, 2 * MAX + 1))
    for k in range(HONEST):
        upstream.wait_readings("dev0875%d" % k, g.name, count=20)
