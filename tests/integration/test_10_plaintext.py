"""Readings over a plaintext (tls = off) listener reach the upstream broker decoded."""

import pytest

import gw


@pytest.fixture(scope="module")
def g(request, tmp_path_factory, pki, upstream):
    return gw.module_gateway(request, tmp_path_factory, pki, upstream=upstream,
                             listeners=[gw.listener("plain", "off")])


def test_mosquitto_pub_qos1(g, upstream):
    g.pub("dev0100", "esp/dev0100/temp", "21.5", qos=1)
    (m,) = upstream.wait_readings("dev0100", g.name)
    gw.assert_reading(m, "dev0100", g.name, 21.5, "number", seq=1,
                      topic="sensors/dev0100/temperature")
    assert m.qos == 1
    g.wait_event("device_connected", device="dev0100", listener="plain")


def test_mosquitto_pub_qos0_and_qos2(g, upstream):
    g.pub("dev0101", "esp/t", "-3", qos=0)
    g.pub("dev0101", "esp/t", "4.25", qos=2)
    got = upstream.wait_readings("dev0101", g.name, count=2)
    gw.assert_reading(got[0], "dev0101", g.name, -3, "number", seq=1)
    gw.assert_reading(got[1], "dev0101", g.name, 4.25, "number", seq=2)


def test_paho_device(g, upstream, devices):
    d = devices(g.port(), "dev0102")
    d.publish("esp/dev0102/json", '{"temp":22.25,"humidity":41.5}', qos=1)
    d.publish("esp/dev0102/json", '{"temperature":23}', qos=0)
    got = upstream.wait_readings("dev0102", g.name, count=2)
    gw.assert_reading(got[0], "dev0102", g.name, 22.25, "json", seq=1, humidity=41.5,
                      topic="sensors/dev0102/temperature")
    gw.assert_reading(got[1], "dev0102", g.name, 23, "json", seq=2)
    ev = g.wait_event("device_connected", device="dev0102")
    assert ev[0]["peer"] == "127.0.0.1:%d" % d.c.socket().getsockname()[1]
    assert "tls" not in ev[0], ev[0]["raw"]
    assert d.unexpected_disconnects == []


def test_many_readings_in_order(g, upstream, devices):
    d = devices(g.port(), "dev0103")
    for i in range(50):
        d.publish_async("esp/t", "%d.25" % i, qos=1)
    got = upstream.wait_readings("dev0103", g.name, count=50)
    assert [m.get("seq") for m in got] == list(range(1, 51))
    assert [m.get("temperature_c") for m in got] == [i + 0.25 for i in range(50)]


def test_disconnect_is_logged(g, upstream, devices):
    d = devices(g.port(), "dev0104")
    d.publish("esp/t", "20")
    d.close()
    g.wait_event("device_disconnected", device="dev0104")
