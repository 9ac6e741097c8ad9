"""Per-listener connection limit (max_connections): connections beyond it are closed at once
and logged (event=connection_limit); the ones inside it are not disturbed."""

import socket

import pytest

import gw


@pytest.fixture(scope="module")
def g(request, tmp_path_factory, pki, upstream):
    return gw.module_gateway(request, tmp_path_factory, pki, upstream=upstream,
                             listeners=[gw.listener("small", "off", max_connections=2),
                                        gw.listener("other", "off")])


def test_connection_limit(g, raw, upstream):
    a = raw(g.port("small"))
    a.connect("dev0150")
    b = raw(g.port("small"))
    b.connect("dev0151")
    extra = raw(g.port("small"))
    t, got = extra.wait_closed(gw.WAIT)
    assert got == b"", "the refused connection got data: %r" % got
    g.wait_event("connection_limit", listener="small")
    # The limit is per listener: another listener still accepts.
    o = raw(g.port("other"))
    o.connect("dev0152")
    # The two inside the limit work.
    for c, pid in ((a, 1), (b, 2)):
        c.send(gw.publish_pkt("esp/t", "21", qos=1, pid=pid))
        c.expect(b"\x40\x02" + pid.to_bytes(2, "big"), what="PUBACK")
    # Freeing a slot lets a new device in.
    a.send(gw.DISCONNECT)
    a.wait_closed()
    g.wait_event("device_disconnected", device="dev0150")
    again = raw(g.port("small"))
    again.connect("dev0153")
    again.send(gw.publish_pkt("esp/t", "23", qos=1, pid=7))
    again.expect(b"\x40\x02\x00\x07", what="PUBACK")
    upstream.wait_readings("dev0153", g.name)


def test_first_packet_cannot_claim_max_packet_size(make_gateway, upstream, raw):
    """Before CONNECT a connection is nobody: with max_packet_size = 1M it still cannot make
    the gateway buffer more than 16 KiB. A first packet announcing 100 000 bytes is refused
    as soon as its header is read (before, the gateway waited for the bytes until
    connect_timeout); after CONNECT the configured limit applies."""
    g = make_gateway(upstream=upstream, gateway={"max_packet_size": "1M",
                                                 "connect_timeout": "30s"})
    c = raw(g.port())
    c.send(b"\x10" + gw.varint(100000) + b"\x00\x04MQTT")
    t, got = c.wait_closed(5)
    assert got == b"", got
    ev = g.wait_event("mqtt_protocol_error")[0]
    assert "larger than 16384 bytes" in ev["msg"], ev["raw"]
    # A known device may send what max_packet_size allows.
    d = raw(g.port())
    d.connect("dev0154")
    d.send(gw.publish_pkt("esp/t", "2" + "0" * 30000, qos=1, pid=1))
    d.expect(b"\x40\x02\x00\x01", what="PUBACK for a 30 kB PUBLISH")


def idle_tcp(port, source="127.0.0.1"):
    """A TCP connection that never sends a ClientHello: a handshake in progress."""
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(gw.WAIT)
    s.connect(("127.0.0.1", port))
    return s


def closed_at_once(s, what):
    try:
        assert s.recv(1) == b"", "%s: got data" % what
    except ConnectionResetError:
        pass


def test_handshakes_in_progress_are_bounded(make_gateway, upstream, pki):
    """max_handshakes_per_address caps the TLS handshakes one address has in progress,
    max_handshakes all of them: beyond the first, new TLS connections are closed at once;
    at the second a new one evicts the oldest handshake still without a ClientHello (the
    full behaviour, and the refusal when there is none, are test_18_hs_evict.py's); logged
    once per episode for the global cap, and a finished handshake makes room again."""
    g = make_gateway(upstream=upstream,
                     listeners=[gw.listener("mtls", "mutual"), gw.listener("plain", "off")],
                     gateway={"max_handshakes": 3, "max_handshakes_per_address": 2})
    port = g.port("mtls")
    # One after the other (the barrier): the first is the oldest, whichever worker thread
    # takes each.
    a = [idle_tcp(port)]
    g.loop_barrier("plain")
    a.append(idle_tcp(port))
    g.loop_barrier("plain")
    extra = idle_tcp(port)
    closed_at_once(extra, "a third handshake from 127.0.0.1")
    ev = g.wait_event("connection_limit")[0]
    assert "max_handshakes_per_address" in ev["msg"], ev["raw"]
    # Another address still gets in, up to the global cap of 3; a fourth connection takes
    # the place of the oldest, a[0], which never sent a ClientHello.
    b = idle_tcp(port, "127.0.0.2")
    g.loop_barrier("plain")
    over = idle_tcp(port, "127.0.0.3")
    closed_at_once(a[0], "the oldest handshake, evicted")
    ev = g.wait_event("connection_limit", count=2)[1]
    assert "(max_handshakes): new TLS connections evict" in ev["msg"], ev["raw"]
    ev = g.wait_event("tls_handshake_failed")[0]
    assert "evicted: no complete ClientHello" in ev["msg"], ev["raw"]
    # One gives up: room again, and the episode's end says what happened in it.
    over.close()
    ev = g.wait_event("connection_limit", count=3)[2]
    assert "below max_handshakes again; 0 TLS connection(s) were refused, 1 stalled " \
        "handshake(s) evicted" in ev["msg"], ev["raw"]
    d = gw.RawConn(port)
    d.start_tls(pki.client_ctx(cert="dev0001"), "127.0.0.1")
    d.connect("dev0001")
    d.send(gw.publish_pkt("dev0001/t", "21.5", qos=1, pid=1))
    d.expect(b"\x40\x02\x00\x01", what="PUBACK over a handshake admitted again")
    d.close()
    for s in (a[0], a[1], b):
        s.close()


def test_preauth_memory_is_bounded(make_gateway, upstream, raw):
    """Many connections that start a large CONNECT and never finish it cannot take more than
    max_preauth_memory together: the one that would go over is closed and logged, and an
    honest device still connects and publishes."""
    port = gw.free_port()
    g = make_gateway(upstream=upstream, gateway={"max_preauth_memory": "128K"},
                     extra="[metrics]\nbind = 127.0.0.1:%d\n" % port)
    # A CONNECT header announcing 16000 bytes, then 12000 of them: each connection holds
    # about 16 KiB of input buffer.
    head = bytes([0x10]) + gw.varint(16000)
    conns = []
    for _ in range(20):
        c = raw(g.port())
        c.send(head + b"\0" * 12000)
        conns.append(c)
    ev = g.wait_event("connection_limit")
    assert any("max_preauth_memory" in e["msg"] for e in ev), [e["raw"] for e in ev]
    s = gw.Scrape(port)
    assert s.get("iotgw_preauth_memory_bytes") <= 128 * 1024 + 2 * 20480
    assert s.get("iotgw_preauth_refusals_total") >= 1
    d = raw(g.port())
    d.connect("dev0985")
    d.send(gw.publish_pkt("esp/t", "21.5", qos=1, pid=1))
    d.expect(b"\x40\x02\x00\x01", what="PUBACK beside the partial CONNECTs")
    for c in conns:
        c.close()
    gw.wait_until(lambda: gw.Scrape(port).get("iotgw_preauth_memory_bytes") == 0, gw.WAIT,
                  what="the pre-CONNECT memory given back")
