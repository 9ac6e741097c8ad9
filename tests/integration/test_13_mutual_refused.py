"""A mutual TLS listener lets no one past the handshake without a valid certificate from the
configured CA: another CA, an expired certificate and no certificate are all refused, logged
as event=tls_handshake_failed, and the gateway goes on serving the good devices."""

import ssl

import pytest

import gw


@pytest.fixture(scope="module")
def g(request, tmp_path_factory, pki, upstream):
    return gw.module_gateway(request, tmp_path_factory, pki, upstream=upstream,
                             listeners=[gw.listener("mtls", "mutual", client_id="any")])


@pytest.fixture(scope="module")
def good(g, pki):
    """A good device, connected before the bad ones try and kept open throughout."""
    d = gw.Device(g.port(), "good", tls=pki.client_ctx(cert="dev0001"))
    yield d
    d.close()


def attempt(port, ctx, cn="bad-device"):
    """Tries TLS + CONNECT + a QoS 1 reading on the device's own topic (as device `cn`).
    Returns (conn, outcome) where outcome is 'handshake' (the TLS handshake failed),
    'closed' (closed with no CONNACK) or the bytes of an answer."""
    c = gw.RawConn(port)
    try:
        c.start_tls(ctx, "127.0.0.1")
    except (ssl.SSLError, ConnectionError, OSError):
        return c, "handshake"
    try:
        # TLS 1.3: the client finishes its side of the handshake before the gateway has
        # checked the certificate; the refusal arrives as an alert on the first read.
        c.send(gw.connect_pkt(cn) + gw.publish_pkt("%s/t" % cn, "66.5", qos=1, pid=1))
        pkt = c.read_packet(gw.WAIT)
        return c, pkt
    except (gw.Closed, ConnectionError, ssl.SSLError):
        return c, "closed"
    finally:
        c.close()


CASES = {
    "other_ca": "intruder",
    "expired": "expired",
    "no_cert": None,
}


@pytest.mark.parametrize("version", ["tls13", "tls12"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_refused(g, upstream, good, pki, case, version):
    ctx = pki.client_ctx(cert=CASES[case], max_version=(
        ssl.TLSVersion.TLSv1_2 if version == "tls12" else None))
    c, outcome = attempt(g.port(), ctx)
    assert outcome in ("handshake", "closed"), "%s/%s got past the handshake: %r" % (
        case, version, outcome)
    if version == "tls12":
        # With TLS 1.2 the client sees the failure during the handshake itself.
        assert outcome == "handshake"
    ev = g.wait_event("tls_handshake_failed", peer=c.peer_str)
    assert ev[0]["level"] in ("warning", "notice", "err"), ev[0]["raw"]
    # The refusal names whom the certificate claims to be (device=, the listener's identity
    # rule) with its subject, serial and issuer, so the operator finds it by device id.
    claimed = {"expired": "dev0666", "other_ca": "intruder", "no_cert": None}[case]
    assert ev[0].get("device") == claimed, ev[0]["raw"]
    if claimed:
        assert "subject CN=%s, serial " % claimed in ev[0]["msg"], ev[0]["raw"]
        assert "issuer CN=" in ev[0]["msg"], ev[0]["raw"]
    assert ("listener mtls" in ev[0]["msg"] and c.peer_str in ev[0]["msg"]), ev[0]["raw"]
    assert not g.events("device_connected", peer=c.peer_str)
    # The good device, connected all along, still works.
    value = 20 + len(upstream.readings("dev0001", g.name))
    good.publish("esp/dev0001/t", str(value))
    got = upstream.wait_readings("dev0001", g.name, count=1 + value - 20)
    assert got[-1].get("temperature_c") == value
    assert good.unexpected_disconnects == []


def test_new_good_connection_after_refusals(g, upstream, pki, raw):
    for case in sorted(CASES):
        _, outcome = attempt(g.port(), pki.client_ctx(cert=CASES[case]),
                             cn=CASES[case] or "nocert")
        assert outcome in ("handshake", "closed"), "%s got past the handshake: %r" % (
            case, outcome)
    c = raw(g.port(), tls=pki.client_ctx(cert="dev0002"))
    c.connect("dev0002")
    c.send(gw.publish_pkt("esp/dev0002/t", "22", qos=1, pid=3))
    c.expect(b"\x40\x02\x00\x03", what="PUBACK")
    # dev0002's reading, published after the refused ones, is the barrier: the gateway
    # forwards in order, so a refused reading it had taken in would have come first.
    upstream.wait_readings("dev0002", g.name)
    # Neither the intruder's nor the expired certificate's CN ever reached upstream.
    assert not upstream.readings("intruder")
    assert not upstream.readings("dev0666")
    assert not upstream.messages(lambda m: m.get("temperature_c") == 66.5)
    assert not g.events("device_connected", device="intruder")
    assert not g.events("device_connected", device="dev0666")
