"""A full spool stops the gateway from taking more readings (no PUBACK, TCP back-pressure)
instead of dropping them; when the upstream comes back everything is delivered in order."""

import time

import gw

SPOOL = 5
N = 12


def test_full_spool_applies_back_pressure(make_gateway, upstream, devices):
    upstream.stop()
    try:
        g = make_gateway(upstream=upstream, spool={"max_messages": SPOOL})
        d = devices(g.port(), "dev0410")
        infos = [d.publish_async("esp/t", str(20 + i), qos=1) for i in range(N)]
        g.wait_event("spool_full")
        time.sleep(0.5)
        acked = sum(1 for i in infos if i.is_published())
        assert 1 <= acked <= SPOOL, "%d PUBACKs with a spool of %d and the upstream down" % (
            acked, SPOOL)
        assert d.unexpected_disconnects == []
    finally:
        upstream.start()
    for i in infos:
        i.wait_for_publish(gw.WAIT + 5)
        assert i.is_published()
    g.wait_event("spool_resumed")
    got = upstream.wait_readings("dev0410", g.name, count=N, timeout=gw.WAIT + 5)
    assert [m.get("temperature_c") for m in got] == [20 + i for i in range(N)]
    assert [m.get("seq") for m in got] == list(range(1, N + 1))
    assert d.unexpected_disconnects == []


def test_other_devices_wait_too_but_are_not_dropped(make_gateway, upstream, devices):
    upstream.stop()
    try:
        g = make_gateway(upstream=upstream, spool={"max_messages": SPOOL})
        a = devices(g.port(), "dev0411")
        b = devices(g.port(), "dev0412")
        ia = [a.publish_async("esp/t", str(10 + i)) for i in range(4)]
        ib = [b.publish_async("esp/t", str(30 + i)) for i in range(4)]
        g.wait_event("spool_full")
    finally:
        upstream.start()
    for i in ia + ib:
        i.wait_for_publish(gw.WAIT + 5)
    ga = upstream.wait_readings("dev0411", g.name, count=4, timeout=gw.WAIT + 5)
    gb = upstream.wait_readings("dev0412", g.name, count=4, timeout=gw.WAIT + 5)
    assert [m.get("temperature_c") for m in ga] == [10, 11, 12, 13]
    assert [m.get("temperature_c") for m in gb] == [30, 31, 32, 33]
