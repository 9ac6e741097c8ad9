"""Slow ClientHellos from many addresses (issue 12, hostile scenario 6b): at max_handshakes a
new TLS connection takes the slot of the oldest handshake that has not delivered a complete
ClientHello (it is closed as a failed handshake, "evicted: ...", and counted in
iotgw_handshake_evictions_total), so peers that connect and send part of a hello cannot lock
new devices out. Handshakes past their ClientHello are never evicted: with only those held,
a new connection is refused at accept as before."""

import ssl

import pytest

import gw

HELD = 20


@pytest.fixture
def mport():
    return gw.free_port()


def client_hello(ctx):
    """The ClientHello a client with ctx sends first, as bytes on the wire."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = out.read()
    assert hello[0] == 0x16 and len(hello) > 100, hello[:16].hex(" ")
    return hello


def start(make_gateway, upstream, mport):
    return make_gateway(upstream=upstream, extra="[metrics]\nbind = 127.0.0.1:%d\n" % mport,
                        listeners=[gw.listener("mtls", "mutual", handshake_timeout="120s")],
                        gateway={"max_handshakes": HELD, "max_handshakes_per_address": 1000})


def hold(raw, g, mport, data):
    """HELD raw TCP connections to the TLS listener, each sending data and then nothing,
    all counted as handshakes in progress."""
    held = []
    for i in range(HELD):
        c = raw(g.port())
        c.send(data)
        held.append(c)
        # Counted before the next one comes: with more than one worker thread, two
        # connections made back to back may be taken in either order.
        gw.wait_metric(mport, "iotgw_handshakes_in_progress", lambda v: v == i + 1)
    return held


def test_partial_hellos_are_evicted_for_a_new_device(make_gateway, upstream, raw, pki, mport):
    g = start(make_gateway, upstream, mport)
    held = hold(raw, g, mport, client_hello(pki.client_ctx(cert="dev0001"))[:50])
    d = raw(g.port())
    d.start_tls(pki.client_ctx(cert="dev0001"), "127.0.0.1")
    d.connect("dev0001")
    d.send(gw.publish_pkt("dev0001/t", "21.5", qos=1, pid=1))
    d.expect(b"\x40\x02\x00\x01", what="PUBACK over a handshake admitted by eviction")
    upstream.wait_readings("dev0001", g.name)
    # The oldest stalled hello made room: closed, logged once as a failed handshake that
    # names it and the listener, counted.
    ev = g.wait_event("tls_handshake_failed", peer=held[0].peer_str)
    assert len(ev) == 1, [e["raw"] for e in ev]
    assert ev[0]["listener"] == "mtls", ev[0]["raw"]
    assert "evicted: no complete ClientHello after" in ev[0]["msg"], ev[0]["raw"]
    assert "while max_handshakes was reached" in ev[0]["msg"], ev[0]["raw"]
    # Nothing was negotiated: the line names no TLS version.
    assert ev[0].get("tls") is None, ev[0]["raw"]
    t, got = held[0].wait_closed()
    assert got == b"", got
    limit = g.wait_event("connection_limit")
    assert "new TLS connections evict the oldest handshake without a complete ClientHello" \
        in limit[0]["msg"], limit[0]["raw"]
    s = gw.wait_metric(mport, "iotgw_handshake_evictions_total", lambda v: v == 1)
    assert s.get("iotgw_handshake_failures_total", listener="mtls", reason="timeout") == 1
    assert s.get("iotgw_handshake_limit_refusals_total") == 0
    # Every other attacker still holds its slot: one eviction per admitted connection.
    assert [e["peer"] for e in g.events("tls_handshake_failed")] == [held[0].peer_str]


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3],
                         ids=["tls12", "tls13"])
def test_complete_hellos_are_not_evicted(make_gateway, upstream, raw, pki, mport, version):
    """The control: handshakes whose whole ClientHello arrived (the gateway answered it)
    and that then stall are not what eviction takes; the new connection is refused."""
    g = start(make_gateway, upstream, mport)
    held = hold(raw, g, mport, client_hello(pki.client_ctx(cert="dev0001",
                                                           max_version=version)))
    for c in held:  # the server's first flight: each ClientHello was read whole
        assert c.read_exact(1)[0] == 0x16
    late = raw(g.port())
    t, got = late.wait_closed()
    assert got == b"", got
    ev = g.wait_event("connection_limit")
    assert "(max_handshakes)" in ev[0]["msg"], ev[0]["raw"]
    s = gw.wait_metric(mport, "iotgw_handshake_limit_refusals_total", lambda v: v == 1)
    assert s.get("iotgw_handshake_evictions_total") == 0
    assert s.get("iotgw_handshakes_in_progress") == HELD
    assert g.events("tls_handshake_failed") == []
