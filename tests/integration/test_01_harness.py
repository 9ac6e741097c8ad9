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


def mqtt_over_tls(port, ctx, client_id):
    """TLS handshake, then CONNECT; returns (conn, outcome): 'handshake' (the handshake
    failed), 'closed' (closed, or an alert, before any answer) or the first packet."""
    c = gw.RawConn(port)
    try:
        c.start_tls(ctx)
    except (ssl.SSLError, ConnectionError):
        return c, "handshake"
    try:
        # TLS 1.3: the client's side of the handshake is done before the broker has checked
        # (or missed) the client certificate; a refusal comes as an alert on the first read.
        c.send(gw.connect_pkt(client_id))
        return c, c.read_packet(gw.WAIT)
    except (gw.Closed, ConnectionError, ssl.SSLError):
        return c, "closed"
    finally:
        c.close()


def test_upstream_requires_client_cert(pki, upstream):
    # Without a client certificate the broker refuses us: the gateway really needs mTLS.
    _, outcome = mqtt_over_tls(upstream.port, pki.client_ctx(ca="upstream-ca"), "nocert")
    assert outcome in ("handshake", "closed"), "the broker answered without a client " \
        "certificate: %r" % (outcome,)
    # The same with a certificate gets its CONNACK: the refusal was about the certificate.
    _, outcome = mqtt_over_tls(upstream.port,
                               pki.client_ctx(cert="gateway-upstream", ca="upstream-ca"),
                               "withcert")
    assert outcome == gw.CONNACK_OK, outcome


def publish_upstream(pki, upstream, device, values):
    """Publishes {"device": DEVICE, "temperature_c": v} for each value to the broker (QoS 1,
    each one acknowledged), as a gateway would."""
    c = paho.Client(client_id="harness-pub")
    c.tls_set_context(pki.client_ctx(cert="gateway-upstream", ca="upstream-ca"))
    c.connect("127.0.0.1", upstream.port)
    c.loop_start()
    try:
        for v in values:
            info = c.publish("sensors/%s/temperature" % device,
                             ('{"device":"%s","temperature_c":%s}' % (device, v)).encode(),
                             qos=1)
            info.wait_for_publish(gw.WAIT)
            assert info.is_published(), "the broker did not acknowledge %s" % v
    finally:
        c.disconnect()
        c.loop_stop()


def test_upstream_observer_survives_restart(pki, upstream):
    publish_upstream(pki, upstream, "harness", [1])
    upstream.wait_readings("harness", count=1)
    # Outage: messages published while the observer reconnects wait in its session.
    upstream.stop()
    upstream.start()
    publish_upstream(pki, upstream, "harness", [2, 3, 4, 5])
    got = upstream.wait_readings("harness", count=5)
    assert [m.get("temperature_c") for m in got] == [1, 2, 3, 4, 5]


def test_upstream_observer_survives_an_exception_in_its_loop(pki, upstream):
    # paho 1.6 lets some exceptions out of its network loop (ssl.SSLEOFError when the
    # broker goes away in the middle of a write, an exception in a callback), which would
    # end the observer's thread for good. One raised in its message callback stands for
    # them: the observer must record it, reconnect, and get the message again from its
    # persistent session (it was never acknowledged), then go on counting.
    obs = upstream.observer
    errors, connects = len(obs.c.loop_errors), obs.connects
    obs.fault = lambda m: m.get("device") == "harness-fault"
    publish_upstream(pki, upstream, "harness-fault", [1])
    upstream.wait_readings("harness-fault", count=1)
    assert obs.fault is None, "the fault was never hit"
    assert len(obs.c.loop_errors) == errors + 1, obs.c.loop_errors
    assert "fault injected" in obs.c.loop_errors[-1][1], obs.c.loop_errors
    assert obs.connects >= connects + 1, "the observer did not reconnect"
    publish_upstream(pki, upstream, "harness-fault", [2])
    got = upstream.wait_readings("harness-fault", count=2)
    assert [m.get("temperature_c") for m in got] == [1, 2]
