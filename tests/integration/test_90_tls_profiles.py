"""TLS profiles (tls_profile = modern | compatible | legacy, ciphers/ciphersuites override),
session resumption (tickets and session cache, session_resumption = no) and the max fragment
length extension, seen from a real client: openssl s_client with explicit protocol versions
and cipher lists, the way an ESP8266/ESP32 TLS stack would offer them."""

import re
import subprocess

import pytest

import gw

PUBACK_7 = gw.PUBACK_7
# Handshake + CONNECT + QoS 1 PUBLISH (packet id 7) through openssl s_client -> gw.SClient.
publish = gw.s_client_publish


def connect(device):
    """CONNECT with the device id as client id (client_id = match, the default)."""
    return gw.connect_pkt(device, keepalive=30)


@pytest.fixture(scope="module")
def g(request, tmp_path_factory, pki, upstream):
    rsa = dict(cert=pki.pem("gateway-rsa"), key=pki.key("gateway-rsa"))
    return gw.module_gateway(request, tmp_path_factory, pki, upstream=upstream, listeners=[
        gw.listener("modern", "mutual", tls_profile="modern"),
        gw.listener("modern-rsa", "mutual", tls_profile="modern", **rsa),
        gw.listener("compat", "mutual"),  # the default profile
        gw.listener("compat-rsa", "mutual", tls_profile="compatible", **rsa),
        gw.listener("legacy", "mutual", tls_profile="legacy", **rsa),
        gw.listener("override", "mutual", tls_profile="modern",
                    ciphers="ECDHE-ECDSA-AES128-SHA256",
                    ciphersuites="TLS_CHACHA20_POLY1305_SHA256"),
        gw.listener("noresume", "mutual", session_resumption="no"),
        gw.listener("serial", "mutual", identity="serial"),
    ])


ACCEPT, REFUSE = True, False

# (listener, protocol, offered list, accepted?)
CASES = [
    # modern: ECDHE + AEAD only
    ("modern", "tls1_2", "ECDHE-ECDSA-AES128-GCM-SHA256", ACCEPT),
    ("modern", "tls1_2", "ECDHE-ECDSA-AES256-GCM-SHA384", ACCEPT),
    ("modern", "tls1_2", "ECDHE-ECDSA-CHACHA20-POLY1305", ACCEPT),
    ("modern", "tls1_2", "ECDHE-ECDSA-AES128-SHA256", REFUSE),  # CBC
    ("modern", "tls1_2", "ECDHE-ECDSA-AES128-SHA", REFUSE),
    ("modern", "tls1_2", "ECDHE-ECDSA-AES128-CCM8", REFUSE),
    ("modern", "tls1_3", "TLS_AES_128_GCM_SHA256", ACCEPT),
    ("modern", "tls1_3", "TLS_CHACHA20_POLY1305_SHA256", ACCEPT),
    ("modern", "tls1_3", "TLS_AES_128_CCM_SHA256", REFUSE),
    ("modern-rsa", "tls1_2", "ECDHE-RSA-AES128-GCM-SHA256", ACCEPT),
    ("modern-rsa", "tls1_2", "ECDHE-RSA-AES128-SHA256", REFUSE),
    ("modern-rsa", "tls1_2", "AES128-SHA", REFUSE),  # RSA key exchange
    ("modern-rsa", "tls1_2", "AES128-GCM-SHA256", REFUSE),
    # compatible: + what mbedTLS/BearSSL builds offer (CBC, CCM, CCM8), still ECDHE
    ("compat", "tls1_2", "ECDHE-ECDSA-AES128-GCM-SHA256", ACCEPT),
    ("compat", "tls1_2", "ECDHE-ECDSA-AES128-SHA256", ACCEPT),
    ("compat", "tls1_2", "ECDHE-ECDSA-AES128-SHA", ACCEPT),
    ("compat", "tls1_2", "ECDHE-ECDSA-AES256-SHA", ACCEPT),
    ("compat", "tls1_2", "ECDHE-ECDSA-AES128-CCM", ACCEPT),
    ("compat", "tls1_2", "ECDHE-ECDSA-AES128-CCM8", ACCEPT),
    ("compat", "tls1_2", "ECDHE-ECDSA-AES256-CCM8", ACCEPT),
    ("compat", "tls1_2", "ECDHE-ECDSA-CAMELLIA128-SHA256", REFUSE),
    ("compat", "tls1_3", "TLS_AES_256_GCM_SHA384", ACCEPT),
    ("compat-rsa", "tls1_2", "ECDHE-RSA-AES128-SHA", ACCEPT),
    ("compat-rsa", "tls1_2", "ECDHE-RSA-AES256-SHA384", ACCEPT),
    ("compat-rsa", "tls1_2", "AES128-SHA", REFUSE),
    ("compat-rsa", "tls1_2", "AES256-SHA256", REFUSE),
    ("compat-rsa", "tls1_2", "AES128-GCM-SHA256", REFUSE),
    # legacy: + RSA key exchange for axTLS (ESP8266), needs the RSA certificate
    ("legacy", "tls1_2", "AES128-SHA", ACCEPT),
    ("legacy", "tls1_2", "AES256-SHA", ACCEPT),
    ("legacy", "tls1_2", "AES128-SHA256", ACCEPT),
    ("legacy", "tls1_2", "AES128-GCM-SHA256", ACCEPT),
    ("legacy", "tls1_2", "ECDHE-RSA-AES128-SHA", ACCEPT),
    ("legacy", "tls1_2", "DES-CBC3-SHA", REFUSE),
    ("legacy", "tls1_3", "TLS_AES_128_GCM_SHA256", ACCEPT),
    # explicit lists replace the profile's
    ("override", "tls1_2", "ECDHE-ECDSA-AES128-SHA256", ACCEPT),
    ("override", "tls1_2", "ECDHE-ECDSA-AES128-GCM-SHA256", REFUSE),
    ("override", "tls1_3", "TLS_CHACHA20_POLY1305_SHA256", ACCEPT),
    ("override", "tls1_3", "TLS_AES_128_GCM_SHA256", REFUSE),
]


@pytest.mark.parametrize("listener,proto,cipher,accepted", CASES,
                         ids=["%s-%s-%s" % c[:3] for c in CASES])
def test_profile(g, pki, listener, proto, cipher, accepted):
    r = publish(pki, g.port(listener), proto, cipher)
    if accepted:
        assert r.established and r.has(PUBACK_7), r
        assert r.version == ("TLSv1.2" if proto == "tls1_2" else "TLSv1.3"), r
        assert r.cipher == cipher, r
    else:
        assert not r.established, r
        assert not r.has(gw.CONNACK_OK), r


def test_legacy_prefers_forward_secrecy(g, pki):
    # A client that offers both gets ECDHE: the RSA key exchange suites come last.
    r = publish(pki, g.port("legacy"), "tls1_2", "AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256")
    assert r.has(PUBACK_7) and r.cipher == "ECDHE-RSA-AES128-GCM-SHA256", r


def test_legacy_profile_is_reported(g):
    # The parser's warning reaches the log at start-up, and the daemon names the listener
    # whose context accepts RSA key exchange (tls_ctx_is_legacy) as event=tls_legacy.
    lines = [e for e in g.events("config_warning") if "tls_profile = legacy" in e["raw"]]
    assert lines and lines[0]["level"] == "warning", g.log_text()
    assert "no forward secrecy" in lines[0]["raw"]
    ev = g.wait_event("tls_legacy", listener="legacy")
    assert ev[0]["level"] == "warning" and "AES128-SHA" in ev[0]["raw"], ev[0]["raw"]
    assert not [e for e in g.events("tls_legacy") if e.get("listener") != "legacy"], \
        "tls_legacy for a listener without RSA key exchange"


def test_legacy_reading_arrives(g, pki, upstream):
    # The whole path over RSA key exchange, with the client certificate as identity.
    r = publish(pki, g.port("legacy"), "tls1_2", "AES256-SHA", cert="dev0004")
    assert r.has(PUBACK_7), r
    upstream.wait_for(lambda m: m.get("device") == "dev0004" and m.get("gateway") == g.name,
                      1, gw.WAIT, what="reading over the legacy listener")


@pytest.mark.parametrize("proto", ["tls1_2", "tls1_3"])
def test_session_resumption(g, pki, tmp_path, proto):
    sess = tmp_path / "session.pem"
    first = publish(pki, g.port("compat"), proto, None, extra=("-sess_out", str(sess)))
    assert first.has(PUBACK_7) and not first.reused, first
    assert sess.exists() and sess.stat().st_size > 0, "no session/ticket from the gateway"
    seen = len(g.events("device_connected", device="dev0001", listener="compat"))
    again = publish(pki, g.port("compat"), proto, None, extra=("-sess_in", str(sess)))
    want = "Reused, %s" % ("TLSv1.2" if proto == "tls1_2" else "TLSv1.3")
    assert want in again.text and again.has(PUBACK_7), again
    # The resumed session still names the device by its certificate.
    g.wait_event("device_connected", device="dev0001", listener="compat", count=seen + 1)


@pytest.mark.parametrize("proto", ["tls1_2", "tls1_3"])
def test_session_resumption_again_and_again(g, pki, tmp_path, proto):
    # Sessions are stored by the gateway (stateful tickets, session ids). A TLS 1.3 ticket
    # is good once and the resumed handshake brings a new one, which resumes in turn; a
    # TLS 1.2 session id resumes as often as the device likes. Each resumed connection
    # still names the device by its certificate (the stored session carries it).
    port, want = g.port("compat"), "Reused, %s" % ("TLSv1.2" if proto == "tls1_2" else "TLSv1.3")
    sess = [tmp_path / ("s%d.pem" % i) for i in range(4)]
    first = publish(pki, port, proto, None, cert="dev0002", extra=("-sess_out", str(sess[0])))
    assert first.has(PUBACK_7) and not first.reused, first
    seen = len(g.events("device_connected", device="dev0002", listener="compat"))
    for i in range(1, 4):
        src = sess[i - 1] if proto == "tls1_3" else sess[0]
        r = publish(pki, port, proto, None, cert="dev0002",
                    extra=("-sess_in", str(src), "-sess_out", str(sess[i])))
        assert want in r.text and r.has(PUBACK_7), (i, r)
    g.wait_event("device_connected", device="dev0002", listener="compat", count=seen + 3)
    if proto == "tls1_3":
        # The first ticket was used up by the first resumption: a full handshake now.
        again = publish(pki, port, proto, None, cert="dev0002", extra=("-sess_in", str(sess[0])))
        assert again.has(PUBACK_7) and not again.reused, again


@pytest.mark.parametrize("proto", ["tls1_2", "tls1_3"])
def test_no_resumption_across_listeners(g, pki, tmp_path, proto):
    # A ticket from one listener is no good on another (other CA or cipher policy there).
    sess = tmp_path / "session.pem"
    first = publish(pki, g.port("compat"), proto, None, extra=("-sess_out", str(sess)))
    assert first.has(PUBACK_7), first
    other = publish(pki, g.port("modern"), proto, None, extra=("-sess_in", str(sess)))
    assert other.has(PUBACK_7) and not other.reused, other


@pytest.mark.parametrize("proto", ["tls1_2", "tls1_3"])
def test_session_resumption_off(g, pki, tmp_path, proto):
    sess = tmp_path / "session.pem"
    first = publish(pki, g.port("noresume"), proto, None, extra=("-sess_out", str(sess)))
    assert first.has(PUBACK_7), first
    if sess.exists() and sess.stat().st_size:
        again = publish(pki, g.port("noresume"), proto, None, extra=("-sess_in", str(sess)))
        assert again.has(PUBACK_7) and not again.reused, again
    if proto == "tls1_3":
        assert "Post-Handshake New Session Ticket" not in first.text, first


@pytest.mark.parametrize("proto", ["tls1_2", "tls1_3"])
def test_max_fragment_length(g, pki, upstream, proto):
    # RFC 6066 max_fragment_length = 512, as memory-starved ESP8266 stacks ask for: the
    # gateway echoes the extension and from then on sends records of at most 512 bytes
    # (OpenSSL's client checks: a longer record is a fatal record_overflow), and the device
    # sends its 3 KB publish in 512-byte records.
    payload = '{"d":{"temp":22.25,"pad":"%s"}}' % ("x" * 3000)
    data = connect("dev0002") + gw.publish_pkt("iot-2/evt/status/fmt/json", payload, qos=1,
                                               pid=7)
    r = gw.s_client(pki, g.port("compat"), "-" + proto, "-maxfraglen", "512", "-tlsextdebug",
                 cert="dev0002", data=data, until=PUBACK_7)
    assert 'TLS server extension "max fragment length"' in r.text, r
    assert r.has(PUBACK_7), r
    upstream.wait_for(lambda m: m.get("device") == "dev0002" and m.get("temperature_c") == 22.25,
                      1, gw.WAIT, what="reading sent in 512-byte records")


def test_identity_serial(g, pki, upstream):
    # identity = serial: the device id is the certificate serial number, upper-case hex
    # without separators, exactly as `openssl x509 -serial` prints it.
    out = subprocess.run(["openssl", "x509", "-in", pki.pem("dev0003"), "-noout", "-serial"],
                         capture_output=True, text=True, timeout=gw.WAIT, check=True).stdout
    serial = out.strip().split("=", 1)[1]
    assert re.fullmatch(r"[0-9A-F]+", serial), serial
    r = publish(pki, g.port("serial"), "tls1_3", None, cert="dev0003", client_id=serial)
    assert r.has(PUBACK_7), r
    (m,) = upstream.wait_readings(serial, g.name)
    gw.assert_reading(m, serial, g.name, 21.5, "number", seq=1,
                      topic="sensors/%s/temperature" % serial)
    g.wait_event("device_connected", device=serial, listener="serial")
