"""Server-authenticated TLS (tls = server): the device checks the gateway, the gateway takes
the device id from the MQTT client id (or the <id> of a Watson d:<org>:<type>:<id>)."""

import ssl

import pytest

import gw


@pytest.fixture(scope="module")
def g(request, tmp_path_factory, pki, upstream):
    return gw.module_gateway(request, tmp_path_factory, pki, upstream=upstream,
                             listeners=[gw.listener("tls", "server", handshake_timeout="2s")])


def test_client_id_is_device(g, upstream, devices, pki):
    d = devices(g.port(), "dev0042", tls=pki.client_ctx())
    d.publish("esp/dev0042/temp", "21.5")
    (m,) = upstream.wait_readings("dev0042", g.name)
    gw.assert_reading(m, "dev0042", g.name, 21.5, "number", seq=1)
    ev = g.wait_event("device_connected", device="dev0042", listener="tls")
    assert ev[0].get("tls") == "TLSv1.3", ev[0]["raw"]


def test_watson_client_id(g, upstream, devices, pki):
    d = devices(g.port(), "d:myorg:esp32:dev0043", tls=pki.client_ctx())
    d.publish("iot-2/evt/status/fmt/json", '{"d":{"temp":19.75,"humidity":55}}')
    (m,) = upstream.wait_readings("dev0043", g.name)
    gw.assert_reading(m, "dev0043", g.name, 19.75, "watson", seq=1, humidity=55, event="status",
                      topic="sensors/dev0043/temperature")
    g.wait_event("device_connected", device="dev0043")


def test_mosquitto_pub_over_tls(g, upstream, pki):
    g.pub("dev0044", "esp/t", "18", extra_args=("--cafile", pki.pem("devices-ca")))
    (m,) = upstream.wait_readings("dev0044", g.name)
    gw.assert_reading(m, "dev0044", g.name, 18, "number", seq=1)


def test_tls12_client(g, upstream, raw, pki):
    c = raw(g.port(), tls=pki.client_ctx(max_version=ssl.TLSVersion.TLSv1_2))
    assert c.sock.version() == "TLSv1.2"
    c.connect("dev0045")
    c.send(gw.publish_pkt("esp/t", "17.5", qos=1, pid=9))
    c.expect(b"\x40\x02\x00\x09", what="PUBACK")
    (m,) = upstream.wait_readings("dev0045", g.name)
    gw.assert_reading(m, "dev0045", g.name, 17.5, "number", seq=1)
    ev = g.wait_event("device_connected", device="dev0045")
    assert ev[0].get("tls") == "TLSv1.2", ev[0]["raw"]


def test_gateway_presents_its_configured_certificate(g, raw, pki):
    # Real TLS with the configured certificate: exactly that one reaches the device, ...
    c = raw(g.port(), tls=pki.client_ctx())
    assert c.sock.getpeercert(binary_form=True) == pki.der("gateway")
    c.connect("dev0047")
    # ... so a device trusting another CA refuses the gateway, and the gateway, told so by
    # the device's alert, logs the failed handshake for that peer and serves nobody there.
    bad = raw(g.port())
    with pytest.raises(ssl.SSLCertVerificationError):
        bad.start_tls(pki.client_ctx(ca="other-ca"))
    ev = g.wait_event("tls_handshake_failed", peer=bad.peer_str)
    assert ev[0]["level"] in ("warning", "notice", "err"), ev[0]["raw"]
    assert not g.events("device_connected", peer=bad.peer_str)


def test_plaintext_mqtt_on_tls_port_is_refused(g, raw):
    c = raw(g.port())
    c.send(gw.connect_pkt("dev0046"))
    _, got = c.wait_closed()
    assert not got.startswith(b"\x20"), "CONNACK over plaintext on a TLS listener: %r" % got
    g.wait_event("tls_handshake_failed", peer=c.peer_str)
