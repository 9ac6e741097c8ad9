"""SIGHUP reloads the configuration and the certificates without dropping connections; a
broken configuration is refused and the old one kept."""

import shutil
import ssl

import gw


def test_reload_applies_to_connected_devices(make_gateway, upstream, devices):
    g = make_gateway(upstream=upstream, name="gw-hup-a")
    d = devices(g.port(), "dev0500")
    d.publish("esp/t", "20")
    (m,) = upstream.wait_readings("dev0500", "gw-hup-a")
    assert m.topic == "sensors/dev0500/temperature"

    # New name, new topic template, one more listener.
    g.name = "gw-hup-b"
    g.upstream_opts["topic"] = "readings/{gateway}/{device}"
    g.listeners.append(gw.listener("extra", "off"))
    g.write_config()
    g.sighup()
    g.wait_event("config_reloaded")

    d.publish("esp/t", "21")
    (m,) = upstream.wait_readings("dev0500", "gw-hup-b")
    gw.assert_reading(m, "dev0500", "gw-hup-b", 21, "number", seq=2,
                      topic="readings/gw-hup-b/dev0500")
    assert d.unexpected_disconnects == [], "the device was disconnected by the reload"
    g.wait_event("listener_bound", listener="extra")
    g.pub("dev0501", "esp/t", "22", listener_name="extra")
    (m,) = upstream.wait_readings("dev0501", "gw-hup-b")
    assert m.topic == "readings/gw-hup-b/dev0501"


def test_broken_config_is_refused(make_gateway, upstream, devices):
    g = make_gateway(upstream=upstream)
    good = g.conf.read_text()
    d = devices(g.port(), "dev0502")
    d.publish("esp/t", "20")
    upstream.wait_readings("dev0502", g.name)

    g.write_config(good + "\n[gateway2]\nbogus = 1\n")
    g.sighup()
    ev = g.wait_event("config_reload_failed")
    assert ev[0]["level"] in ("err", "warning", "crit"), ev[0]["raw"]
    assert g.running
    d.publish("esp/t", "21")
    got = upstream.wait_readings("dev0502", g.name, count=2)
    gw.assert_reading(got[-1], "dev0502", g.name, 21, "number", seq=2,
                      topic="sensors/dev0502/temperature")
    assert d.unexpected_disconnects == []
    # New connections still work with the old configuration.
    g.pub("dev0503", "esp/t", "23")
    upstream.wait_readings("dev0503", g.name)

    # A missing certificate file is refused too (checked like -t does).
    tls = gw.listener("tls", "server", cert="/nonexistent/iotgw-test/gateway.pem")
    g.listeners.append(tls)
    g.write_config()
    g.sighup()
    g.wait_event("config_reload_failed", count=2)
    g.listeners.remove(tls)
    # And a later good reload works.
    g.write_config(good)
    g.sighup()
    g.wait_event("config_reloaded")
    d.publish("esp/t", "24")
    upstream.wait_readings("dev0502", g.name, count=3)


def test_reload_certificates(make_gateway, upstream, devices, pki, tmp_path, raw):
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    shutil.copy(pki.pem("gateway"), cert)
    shutil.copy(pki.key("gateway"), key)
    g = make_gateway(upstream=upstream,
                     listeners=[gw.listener("tls", "server", cert=str(cert), key=str(key))])
    c1 = raw(g.port(), tls=pki.client_ctx())
    assert c1.sock.getpeercert(binary_form=True) == pki.der("gateway")
    old = devices(g.port(), "dev0504", tls=pki.client_ctx())

    shutil.copy(pki.pem("gateway-b"), cert)
    shutil.copy(pki.key("gateway-b"), key)
    g.sighup()
    g.wait_event("config_reloaded")
    c2 = raw(g.port(), tls=pki.client_ctx())
    assert c2.sock.getpeercert(binary_form=True) == pki.der("gateway-b"), \
        "new connections still get the old certificate after SIGHUP"
    c2.connect("dev0505")
    # The device connected before the reload keeps its TLS session and works.
    old.publish("esp/t", "25")
    upstream.wait_readings("dev0504", g.name)
    assert old.unexpected_disconnects == []


def test_reload_keeps_tls_when_new_key_does_not_match(make_gateway, upstream, pki, tmp_path,
                                                      raw):
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    shutil.copy(pki.pem("gateway"), cert)
    shutil.copy(pki.key("gateway"), key)
    g = make_gateway(upstream=upstream,
                     listeners=[gw.listener("tls", "server", cert=str(cert), key=str(key))])
    shutil.copy(pki.pem("gateway-b"), cert)  # key left as it was: they do not match
    g.sighup()
    g.wait_event("config_reload_failed")
    c = raw(g.port(), tls=pki.client_ctx())
    assert c.sock.getpeercert(binary_form=True) == pki.der("gateway")
    c.connect("dev0506")
    assert isinstance(c.sock, ssl.SSLSocket)
