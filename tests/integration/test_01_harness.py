"""The harness itself: PKI from tools/iotgw-pki and the upstream mosquitto with its observer.
These run without the daemon, so a broken environment is told apart from a broken gateway."""

import ssl
import subprocess

import paho.mqtt.client as paho
import pytest

import gw

pytestmark = pytest.mark.no_iotgw


def test_pki_files(pki):
    for name in ("devices-ca", "upstream-ca", "other-ca"):
        for ext in (".pem", ".key", ".der", ".h"):
            assert (pki.dir / (name + ext)).is_file(), name + ext
    for name in ("gateway", "broker", "gateway-upstream", "observer", "intruder", "expired",
                 "dev0001", "dev0002"):
        for ext in (".pem", ".key", ".der", ".key.der"):
            assert (pki.dir / (name + ext)).is_file(), name + ext
    out = subprocess.run(["openssl", "x509", "-in", pki.pem("expired"), "-noout", "-enddate"],
                         capture_output=True, text=True, check=True).stdout
    assert "2021" in out


def test_upstream_requires_client_cert(pki, upstream):
    # Without a client certificate the broker refuses us: the gateway really needs mTLS.
    ctx = pki.client_ctx(ca="upstream-ca")
    with pytest.raises((ssl.SSLError, ConnectionError, gw.Closed, AssertionError)):
        c = gw.RawConn(upstream.port, tls=ctx)
        try:
            c.send(gw.connect_pkt("nocert"))
            c.read_packet(5)
        finally:
            c.close()


def test_upstream_observer_survives_restart(pki, upstream):
    c = paho.Client(client_id="harness-pub")
    c.tls_set_context(pki.client_ctx(cert="gateway-upstream", ca="upstream-ca"))
    c.connect("127.0.0.1", upstream.port)
    c.loop_start()
    try:
        c.publish("sensors/harness/temperature", b'{"device":"harness","temperature_c":1}',
                  qos=1).wait_for_publish(gw.WAIT)
    finally:
        c.disconnect()
        c.loop_stop()
    upstream.wait_readings("harness", count=1)
    # Outage: messages published while the observer reconnects wait in its session.
    upstream.stop()
    upstream.start()
    c = paho.Client(client_id="harness-pub")
    c.tls_set_context(pki.client_ctx(cert="gateway-upstream", ca="upstream-ca"))
    c.connect("127.0.0.1", upstream.port)
    c.loop_start()
    try:
        for i in range(2, 6):
            c.publish("sensors/harness/temperature",
                      ('{"device":"harness","temperature_c":%d}' % i).encode(),
                      qos=1).wait_for_publish(gw.WAIT)
    finally:
        c.disconnect()
        c.loop_stop()
    got = upstream.wait_readings("harness", count=5)
    assert [m.get("temperature_c") for m in got] == [1, 2, 3, 4, 5]
