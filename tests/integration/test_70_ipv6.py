"""IPv6 listeners: "[::1]:PORT" works for plaintext and TLS; IPv6 sockets are v6only, so an
IPv4 listener can share the port number."""

import socket

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
