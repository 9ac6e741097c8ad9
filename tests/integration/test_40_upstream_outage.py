"""Promise 1: a QoS 1 reading the gateway has PUBACKed reaches the upstream broker, in order,
across an upstream outage (mosquitto stopped and started again on the same port)."""

import time

import gw

N = 20


def test_outage_keeps_readings_in_order(make_gateway, upstream, devices):
    g = make_gateway(upstream=upstream)
    g.wait_event("upstream_connected")
    d = devices(g.port(), "dev0400")
    d.publish("esp/t", "20")
    upstream.wait_readings("dev0400", g.name)

    upstream.stop()
    try:
        g.wait_event("upstream_down")
        for i in range(N):
            d.publish("esp/t", "%d.5" % i, qos=1)  # each one PUBACKed while upstream is down
        time.sleep(0.3)
    finally:
        upstream.start()
    g.wait_event("upstream_connected", count=2)
    got = upstream.wait_readings("dev0400", g.name, count=N + 1, timeout=gw.WAIT + 5)
    assert [m.get("seq") for m in got] == list(range(1, N + 2))
    assert [m.get("temperature_c") for m in got] == [20] + [i + 0.5 for i in range(N)]
    assert d.unexpected_disconnects == []
    # A device publishing after the outage is forwarded too.
    d.publish("esp/t", "30")
    got = upstream.wait_readings("dev0400", g.name, count=N + 2)
    assert got[-1].get("seq") == N + 2
    # Losing the upstream connection never makes the gateway give up on a reading.
    assert not g.events("upstream_rejected"), [e["raw"] for e in g.events("upstream_rejected")]


def test_start_while_upstream_is_down(make_gateway, upstream, devices):
    upstream.stop()
    try:
        # READY does not wait for the upstream: devices can connect and get PUBACKs.
        g = make_gateway(upstream=upstream)
        g.wait_event("upstream_connect_failed")
        d = devices(g.port(), "dev0401")
        for i in range(3):
            d.publish("esp/t", str(21 + i))
    finally:
        upstream.start()
    g.wait_event("upstream_connected")
    got = upstream.wait_readings("dev0401", g.name, count=3, timeout=gw.WAIT + 5)
    assert [m.get("temperature_c") for m in got] == [21, 22, 23]
    assert [m.get("seq") for m in got] == [1, 2, 3]
