"""Per-device and per-address rates (issue 12): a device over its listener's
max_message_rate or max_byte_rate is read more slowly (or disconnected) and holds up nobody
else; more than max_connection_rate_per_address new connections per second from one address
are refused. One log line per episode, counted in the metrics. The harness turns these
limits off by default (gw.listener); here each test sets them."""

import time

import gw


def publish_burst(c, n, size=None, first_pid=1):
    """n QoS 1 readings in one write; with size, payloads of that many bytes (these end as
    dead letters, which is fine for counting bytes)."""
    payload = "21.5" if size is None else "9" * size
    c.send(b"".join(gw.publish_pkt("esp/t", payload, qos=1, pid=first_pid + i)
                    for i in range(n)))


def read_acks(c, n):
    got = [c.read_packet() for _ in range(n)]
    assert all(p[0] == 0x40 for p in got), [p.hex(" ") for p in got[:3]]
    return got


def connack_or_closed(c):
    try:
        return c.read_packet()
    except gw.Closed:
        return None


def test_device_over_message_rate_is_slowed_not_others(make_gateway, upstream, raw):
    g = make_gateway(upstream=upstream, listeners=[
        gw.listener("plain", "off", max_message_rate=20, max_connection_rate_per_address=0)])
    fast = raw(g.port())
    fast.connect("dev0980")
    honest = raw(g.port())
    honest.connect("dev0981")
    t0 = time.monotonic()
    publish_burst(fast, 100)  # 20 at once (one second of burst), then 20/s
    read_acks(fast, 20)
    # The flooder is held now; an honest device is served at once: its PUBACK comes
    # before the flooder's remaining 80 have been acknowledged.
    honest.send(gw.publish_pkt("esp/t", "21.5", qos=1, pid=7))
    honest.expect(b"\x40\x02\x00\x07", what="the honest device's PUBACK")
    read_acks(fast, 80)
    # 80 more at 20/s cannot take less than 4 s (a lower bound: never flaky).
    assert time.monotonic() - t0 >= 3.9
    ev = g.wait_event("rate_limited", device="dev0980")
    assert len(ev) == 1 and "max_message_rate 20/s" in ev[0]["msg"], [e["raw"] for e in ev]
    assert not g.events("rate_limited", device="dev0981")
    upstream.wait_readings("dev0980", g.name, count=100)


def test_byte_rate(make_gateway, upstream, raw):
    g = make_gateway(upstream=upstream, listeners=[
        gw.listener("plain", "off", max_byte_rate=2000)])
    c = raw(g.port())
    c.connect("dev0982")
    t0 = time.monotonic()
    publish_burst(c, 6, size=1000)  # 6 x 1012 bytes against 2000 B/s with 2000 of burst
    read_acks(c, 6)
    # The 6th is read once the first five (5060 bytes) are paid for: 2000 + 2000 t > 5060.
    assert time.monotonic() - t0 >= 1.45
    g.wait_event("rate_limited", device="dev0982")


def test_disconnect_action(make_gateway, upstream, raw):
    g = make_gateway(upstream=upstream, listeners=[
        gw.listener("plain", "off", max_message_rate=5, rate_limit_action="disconnect")])
    c = raw(g.port())
    c.connect("dev0983")
    publish_burst(c, 50)
    c.wait_closed()
    ev = g.wait_event("rate_limited", device="dev0983")[0]
    assert "disconnected" in ev["msg"], ev["raw"]
    g.wait_event("device_disconnected", device="dev0983")


def test_connection_rate_per_address(make_gateway, upstream, raw):
    port = gw.free_port()
    g = make_gateway(upstream=upstream, extra="[metrics]\nbind = 127.0.0.1:%d\n" % port,
                     listeners=[gw.listener("plain", "off", max_connection_rate_per_address=5)])
    conns = [raw(g.port()) for _ in range(30)]
    for c in conns:
        c.send(gw.connect_pkt(c.peer_str))
    answered = [c for c in conns if connack_or_closed(c) is not None]
    # A burst of 5, and at most a few more for the time the 30 connects took.
    assert 5 <= len(answered) < 30, len(answered)
    ev = g.wait_event("connection_limit")
    assert len([e for e in g.events("connection_limit")
                if "max_connection_rate_per_address" in e["msg"]]) == 1, ev
    s = gw.Scrape(port)
    assert s.get("iotgw_connection_rate_refusals_total", listener="plain") >= 30 - len(answered)
    # A second later the address may connect again.
    time.sleep(1.2)
    ok = raw(g.port())
    ok.connect("dev0984")
