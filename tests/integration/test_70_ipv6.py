"""IPv6 listeners: "[::1]:PORT" works for plaintext and TLS; IPv6 sockets are v6only, so an
IPv4 listener can share the port number."""

import socket
import ssl

import pytest

import gw

pytestmark = pytest.mark.skipif(not gw.ipv6_loopback_available(), reason="no IPv6 loopback")


def test_plaintext_on_ipv6_loopback(make_gateway, upstream):
    g = make_gateway(upstream=upstream, listeners=[gw.listener("v6", "off", host="::1")])
    g.wait_event("listener_bound", listener="v6")
    g.pub("dev0700", "esp/t", "21.5", host="::1")
    (m,) = upstream.wait_readings("dev0700", g.name)
    gw.assert_reading(m, "dev0700", g.name, 21.5, "number", seq=1)
    ev = g.wait_event("device_connected", device="dev0700")
    assert ev[0]["peer"].startswith("[::1]:"), ev[0]["raw"]


def test_tls_on_ipv6_loopback(make_gateway, upstream, raw, pki):
    g = make_gateway(upstream=upstream, listeners=[gw.listener("v6tls", "mutual", host="::1",
                                                                   client_id="any", publish_acl="none")])
    # The gateway certificate has IP:::1 in its SAN; the device checks it.
    c = raw(g.port(), host="::1", tls=pki.client_ctx(cert="dev0001"), server_hostname="::1")
    c.connect("dev0001")
    c.send(gw.publish_pkt("esp/t", "22.5", qos=1, pid=1))
    c.expect(b"\x40\x02\x00\x01", what="PUBACK")
    (m,) = upstream.wait_readings("dev0001", g.name)
    gw.assert_reading(m, "dev0001", g.name, 22.5, "number", seq=1)
    g.wait_event("device_connected", device="dev0001", peer=c.peer_str)


def port_free_on_both():
    """A port free on [::] and 127.0.0.1 a moment ago (an IPv6 ephemeral port can be in
    use on IPv4, e.g. by another test's connection)."""
    for _ in range(50):
        port = gw.free_port(socket.AF_INET6, "::1")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise AssertionError("no port free on both IPv4 and IPv6 loopback")


def test_v6only_shares_port_with_ipv4(make_gateway, upstream):
    port = port_free_on_both()
    g = make_gateway(upstream=upstream, listeners=[
        gw.listener("any6", "off", host="::", port=port),
        gw.listener("v4", "off", host="127.0.0.1", port=port)])
    g.pub("dev0701", "esp/t", "20", listener_name="v4", host="127.0.0.1")
    g.pub("dev0702", "esp/t", "21", listener_name="any6", host="::1")
    upstream.wait_readings("dev0701", g.name)
    upstream.wait_readings("dev0702", g.name)
    a = g.wait_event("device_connected", device="dev0701")
    b = g.wait_event("device_connected", device="dev0702")
    assert a[0]["listener"] == "v4" and b[0]["listener"] == "any6"


@pytest.fixture(scope="module")
def dual_pki(tmp_path_factory):
    """A CA of its own with a server certificate for both loopbacks, a device and a
    revoked device, and the CA's CRL."""
    p = gw.Pki(tmp_path_factory.mktemp("dualpki"))
    p.run("ca", "dual-ca")
    p.run("server", "dual-gw", "--ca", "dual-ca", "--san", "IP:127.0.0.1,IP:::1")
    p.run("client", "dev0790", "--ca", "dual-ca")
    p.run("client", "dev0791", "--ca", "dual-ca")
    p.run("revoke", "dev0791", "--ca", "dual-ca")
    return p


def dual_listener(p, port):
    return gw.listener("mtls", "mutual", host="127.0.0.1", port=port, cert=p.pem("dual-gw"),
                       key=p.key("dual-gw"), ca=p.pem("dual-ca"), crl=p.pem("dual-ca.crl"))


def with_binds(g, port, binds):
    """The gateway's config with listener mtls bound to `binds` (one `bind` line)."""
    return g.render().replace("bind = 127.0.0.1:%d" % port, "bind = " + binds)


def refused(p, host, port, cert):
    """True if the handshake (or the first read after it, TLS 1.3) fails for `cert`."""
    try:
        c = gw.RawConn(port, host=host, tls=p.client_ctx(cert=cert, ca="dual-ca"))
    except (ssl.SSLError, OSError):
        return True
    try:
        c.send(gw.connect_pkt(cert))
        c.read_packet()
        return False
    except (gw.Closed, ssl.SSLError, OSError):
        return True
    finally:
        c.close()


def test_one_listener_on_both_families_shares_its_crl(make_gateway, upstream, dual_pki):
    # The example config's shape: one mutual listener, IPv4 and IPv6 of one port, one crl.
    # The revoked device is refused on both addresses, the valid one accepted on both.
    port = port_free_on_both()
    g = make_gateway(upstream=upstream, listeners=[dual_listener(dual_pki, port)], start=False)
    g.write_config(with_binds(g, port, "127.0.0.1:%d [::1]:%d" % (port, port)))
    g.start()
    ev = g.wait_event("listener_bound", listener="mtls")
    assert "127.0.0.1:%d [::1]:%d" % (port, port) in ev[0]["msg"], ev[0]["raw"]
    for i, host in enumerate(("127.0.0.1", "::1")):
        assert refused(dual_pki, host, port, "dev0791"), "revoked device got in over " + host
        c = gw.RawConn(port, host=host, tls=dual_pki.client_ctx(cert="dev0790", ca="dual-ca"))
        try:
            c.connect("dev0790")
            c.send(gw.publish_pkt("dev0790/t", "2%d" % i, qos=1, pid=1))
            c.expect(b"\x40\x02\x00\x01", what="PUBACK over " + host)
        finally:
            c.close()
    upstream.wait_readings("dev0790", g.name, count=2)
    fails = g.wait_event("tls_handshake_failed", count=2)
    assert {e["peer"].startswith("[::1]:") for e in fails[:2]} == {False, True}, \
        [e["raw"] for e in fails]
    assert all("revoked" in e["msg"] for e in fails[:2]), [e["raw"] for e in fails]
    assert not g.events("device_connected", device="dev0791")


def test_reload_adds_an_address_and_keeps_connections(make_gateway, upstream, dual_pki):
    # The IPv4 socket moves into the changed listener (shared, never closed), so the
    # reload needs no restart and the connected device stays.
    port = port_free_on_both()
    g = make_gateway(upstream=upstream, listeners=[dual_listener(dual_pki, port)])
    ctx = dual_pki.client_ctx(cert="dev0790", ca="dual-ca")
    before = gw.RawConn(port, tls=ctx)
    before.connect("dev0790")
    g.write_config(with_binds(g, port, "127.0.0.1:%d [::1]:%d" % (port, port)))
    g.sighup()
    g.wait_event("config_reloaded")
    assert not g.events("config_reload_failed"), [e["raw"] for e in g.events("config_reload_failed")]
    before.send(gw.PINGREQ)
    before.expect(b"\xd0\x00", what="PINGRESP after the reload")
    for host in ("127.0.0.1", "::1"):
        c = gw.RawConn(port, host=host, tls=ctx)
        c.connect("dev0790")  # takes over the session, as a reconnecting device does
        c.close()
    # And back: the IPv6 address goes, the IPv4 one stays served throughout.
    g.write_config(with_binds(g, port, "127.0.0.1:%d" % port))
    g.sighup()
    g.wait_event("config_reloaded", count=2)
    c = gw.RawConn(port, tls=ctx)
    c.connect("dev0790")
    c.send(gw.publish_pkt("dev0790/t", "23", qos=1, pid=2))
    c.expect(b"\x40\x02\x00\x02", what="PUBACK")
    c.close()
    with pytest.raises(OSError):
        gw.RawConn(port, host="::1", timeout=2)
    before.close()
