"""Mutual TLS (tls = mutual): the device id is the certificate's CN (or SAN per identity=),
and with client_id = any whatever the MQTT client id says (the default client_id and
publish_acl policies are tested in test_95_auth); clients like mbedTLS on an ESP32 (TLS 1.2
only, one ECDHE-ECDSA AES-GCM suite, P-256 only, SNI set to an IP address) get in."""

# These listeners test identity and TLS, not the trust policies: open them.
OPEN = {"client_id": "any", "publish_acl": "none"}

import ssl

import pytest

import gw


@pytest.fixture(scope="module")
def g(request, tmp_path_factory, pki, upstream):
    return gw.module_gateway(request, tmp_path_factory, pki, upstream=upstream, listeners=[
        gw.listener("mtls", "mutual", **OPEN),
        gw.listener("mtls13", "mutual", tls_min_version="1.3", **OPEN),
        gw.listener("mtls-san", "mutual", identity="san-dns", **OPEN),
        gw.listener("mtls-rsa", "mutual", cert=pki.pem("gateway-rsa"),
                    key=str(pki.dir / "gateway-rsa.key"), **OPEN),
    ])


def test_device_is_certificate_cn(g, upstream, devices, pki):
    d = devices(g.port("mtls"), "esp-a1b2c3", tls=pki.client_ctx(cert="dev0001"))
    d.publish("esp/temp", "21.5")
    (m,) = upstream.wait_readings("dev0001", g.name)
    gw.assert_reading(m, "dev0001", g.name, 21.5, "number", seq=1,
                      topic="sensors/dev0001/temperature")
    ev = g.wait_event("device_connected", device="dev0001", listener="mtls")
    assert ev[0].get("tls") == "TLSv1.3", ev[0]["raw"]
    assert not upstream.readings("esp-a1b2c3"), "client id used as device id on mutual TLS"


def test_mbedtls_like_client(g, upstream, raw, pki):
    # What an ESP32 with mbedTLS typically offers: TLS 1.2 only, a single ECDHE-ECDSA
    # AES-128-GCM suite, only the P-256 curve; it checks the gateway's IP SAN.
    ctx = pki.client_ctx(cert="dev0002", max_version=ssl.TLSVersion.TLSv1_2,
                         ciphers="ECDHE-ECDSA-AES128-GCM-SHA256", curve="prime256v1")
    c = raw(g.port("mtls"), tls=ctx, server_hostname="127.0.0.1")
    assert c.sock.version() == "TLSv1.2"
    assert c.sock.cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"
    c.connect("ESP32-0002", keepalive=15)
    c.send(gw.publish_pkt("iot-2/evt/status/fmt/json", '{"d":{"temp":24.5}}', qos=1, pid=77))
    c.expect(b"\x40\x02\x00\x4d", what="PUBACK")
    (m,) = upstream.wait_readings("dev0002", g.name)
    gw.assert_reading(m, "dev0002", g.name, 24.5, "watson", seq=1, event="status")
    ev = g.wait_event("device_connected", device="dev0002", peer=c.peer_str)
    assert ev[0].get("tls") == "TLSv1.2", ev[0]["raw"]


def test_sni_is_an_ip_address(g, upstream, pki):
    # openssl s_client as an mbedTLS stand-in that really sends the IP address as SNI
    # (Python's ssl never sends an IP as SNI) and checks the gateway's IP SAN.
    data = gw.connect_pkt("dev0003-sni") + gw.publish_pkt("esp/t", "25.75", qos=1, pid=5)
    want = gw.CONNACK_OK + b"\x40\x02\x00\x05"
    r = gw.s_client(pki, g.port("mtls"), "-servername", "127.0.0.1", "-verify_ip", "127.0.0.1",
                    "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256",
                    "-curves", "prime256v1", cert="dev0003", data=data, until=want)
    assert r.has(want), r
    assert r.version == "TLSv1.2" and r.cipher == "ECDHE-ECDSA-AES128-GCM-SHA256", r
    (m,) = upstream.wait_readings("dev0003", g.name)
    gw.assert_reading(m, "dev0003", g.name, 25.75, "number", seq=1)


def test_identity_san_dns(g, upstream, devices, pki):
    d = devices(g.port("mtls-san"), "whatever", tls=pki.client_ctx(cert="sandev"))
    d.publish("esp/t", "20.5")
    (m,) = upstream.wait_readings("dev0077", g.name)
    gw.assert_reading(m, "dev0077", g.name, 20.5, "number", seq=1)
    assert not upstream.readings("sandev-cn"), "CN used although identity = san-dns"


def test_tls_min_version_13(g, upstream, raw, pki):
    old = pki.client_ctx(cert="dev0004", max_version=ssl.TLSVersion.TLSv1_2)
    c = gw.RawConn(g.port("mtls13"))
    try:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            c.start_tls(old)
    finally:
        c.close()
    g.wait_event("tls_handshake_failed", peer=c.peer_str, listener="mtls13")
    c = raw(g.port("mtls13"), tls=pki.client_ctx(cert="dev0004"))
    assert c.sock.version() == "TLSv1.3"
    c.connect("dev0004")
    c.send(gw.publish_pkt("esp/t", "19", qos=1, pid=1))
    c.expect(b"\x40\x02\x00\x01", what="PUBACK")
    upstream.wait_readings("dev0004", g.name)


def test_rsa_server_certificate(g, upstream, raw, pki):
    # The same device stack against an RSA server key: TLS 1.2 with ECDHE-RSA, and TLS 1.3.
    ctx = pki.client_ctx(cert="dev0003", max_version=ssl.TLSVersion.TLSv1_2,
                         ciphers="ECDHE-RSA-AES128-GCM-SHA256")
    c = raw(g.port("mtls-rsa"), tls=ctx, server_hostname="127.0.0.1")
    assert c.sock.cipher()[0] == "ECDHE-RSA-AES128-GCM-SHA256"
    c.connect("rsa-client", keepalive=15)
    c.send(gw.publish_pkt("esp/t", "19.5", qos=1, pid=5))
    c.expect(b"\x40\x02\x00\x05", what="PUBACK")
    upstream.wait_for(lambda m: m.get("device") == "dev0003" and m.get("temperature_c") == 19.5
                      and m.get("format") == "number", 1, gw.WAIT, what="RSA-listener reading")
    c13 = raw(g.port("mtls-rsa"), tls=pki.client_ctx(cert="dev0004"),
              server_hostname="127.0.0.1")
    assert c13.sock.version() == "TLSv1.3"
