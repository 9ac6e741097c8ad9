"""ChaCha20-Poly1305 for devices that ask for it first (SSL_OP_PRIORITIZE_CHACHA).

The gateway picks cipher suites in its own order (AES-GCM first), except when the device's
most preferred suite is ChaCha20-Poly1305: then it gets ChaCha20. BearSSL on the ESP8266 (no
AES hardware) offers it first; a client that offers AES-GCM first keeps getting AES-GCM.
Seen from real clients (openssl s_client, Python's ssl) with their cipher order set
explicitly, on a listener of each tls_profile, and from the gateway's own log."""

import itertools
import ssl

import pytest

import gw

CHACHA12_EC = "ECDHE-ECDSA-CHACHA20-POLY1305"
CHACHA12_RSA = "ECDHE-RSA-CHACHA20-POLY1305"
AES128_EC = "ECDHE-ECDSA-AES128-GCM-SHA256"
AES256_EC = "ECDHE-ECDSA-AES256-GCM-SHA384"
AES128_RSA = "ECDHE-RSA-AES128-GCM-SHA256"
AES256_RSA = "ECDHE-RSA-AES256-GCM-SHA384"
CHACHA13 = "TLS_CHACHA20_POLY1305_SHA256"
AES128_13 = "TLS_AES_128_GCM_SHA256"
AES256_13 = "TLS_AES_256_GCM_SHA384"

# The ESP8266 Arduino core's default client list (BearSSL::WiFiClientSecure), in its order,
# as far as OpenSSL has the suites (no static ECDH, no 3DES).
BEARSSL_ESP8266 = ":".join([
    CHACHA12_EC, CHACHA12_RSA, AES128_EC, AES128_RSA, AES256_EC, AES256_RSA,
    "ECDHE-ECDSA-AES128-CCM", "ECDHE-ECDSA-AES256-CCM", "ECDHE-ECDSA-AES128-CCM8",
    "ECDHE-ECDSA-AES256-CCM8", "ECDHE-ECDSA-AES128-SHA256", "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES256-SHA384", "ECDHE-RSA-AES256-SHA384", "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA",
    "AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-CCM", "AES256-CCM", "AES128-CCM8",
    "AES256-CCM8", "AES128-SHA256", "AES256-SHA256", "AES128-SHA", "AES256-SHA"])

# Listener name -> key type of its certificate. One listener per tls_profile (the default,
# compatible, with both key types); tls = server, so each connection's client id, unique
# per case, names it in the gateway's log.
LISTENERS = {"modern": "ec", "compat": "ec", "compat-rsa": "rsa", "legacy": "rsa"}

_ids = itertools.count(1)


@pytest.fixture(scope="module")
def g(request, tmp_path_factory, pki, upstream):
    rsa = dict(cert=pki.pem("gateway-rsa"), key=pki.key("gateway-rsa"))
    return gw.module_gateway(request, tmp_path_factory, pki, upstream=upstream, listeners=[
        gw.listener("modern", "server", tls_profile="modern"),
        gw.listener("compat", "server"),  # the default profile
        gw.listener("compat-rsa", "server", tls_profile="compatible", **rsa),
        gw.listener("legacy", "server", tls_profile="legacy", **rsa),
    ])


def handshake(g, pki, listener, proto, offer):
    """openssl s_client offering `offer` in that order (TLS 1.2: -cipher, TLS 1.3:
    -ciphersuites), then CONNECT with a client id of its own; returns (SClient, client id)."""
    cid = "chacha97-%d" % next(_ids)
    opt = "-ciphersuites" if proto == "tls1_3" else "-cipher"
    r = gw.s_client(pki, g.port(listener), "-" + proto, opt, offer, cert=None,
                    data=gw.connect_pkt(cid, keepalive=30), until=gw.CONNACK_OK)
    return r, cid


def assert_gateway_chose(g, cid, cipher):
    """The gateway's own view: device_connected names the negotiated cipher."""
    ev = g.wait_event("device_connected", device=cid)
    assert ev[0]["msg"].endswith(", cipher %s)" % cipher), ev[0]["raw"]


def tls12_cases(kind):
    chacha, aes128, aes256 = ((CHACHA12_EC, AES128_EC, AES256_EC) if kind == "ec"
                              else (CHACHA12_RSA, AES128_RSA, AES256_RSA))
    return [
        # (a) ChaCha20 first: honoured, although the gateway ranks AES-GCM higher.
        ("chacha-first", "%s:%s" % (chacha, aes128), chacha),
        ("bearssl-esp8266", BEARSSL_ESP8266, chacha),
        # (b) AES-GCM first: AES-GCM.
        ("aes-first", "%s:%s" % (aes128, chacha), aes128),
        # Not led by ChaCha20: the gateway's order decides, not the client's (AES-128 before
        # AES-256 and ChaCha20).
        ("server-order", "%s:%s:%s" % (aes256, chacha, aes128), aes128),
    ]


# (protocol, listener, case, offered in this order, suite the device must get)
CASES = [("tls1_2", lst, name, offer, want) for lst, kind in LISTENERS.items()
         for name, offer, want in tls12_cases(kind)]
CASES += [("tls1_3", lst, name, offer, want) for lst in LISTENERS for name, offer, want in [
    # (c) the same in TLS 1.3, whose suites are the same in every profile.
    ("chacha-first", "%s:%s" % (CHACHA13, AES128_13), CHACHA13),
    ("aes-first", "%s:%s" % (AES128_13, CHACHA13), AES128_13),
    ("server-order", "%s:%s:%s" % (AES256_13, CHACHA13, AES128_13), AES128_13),
]]


@pytest.mark.parametrize("proto,listener,case,offer,want", CASES,
                         ids=["%s-%s-%s" % c[:3] for c in CASES])
def test_cipher_choice(g, pki, proto, listener, case, offer, want):
    r, cid = handshake(g, pki, listener, proto, offer)
    assert r.established and r.has(gw.CONNACK_OK), r
    assert r.version == ("TLSv1.3" if proto == "tls1_3" else "TLSv1.2"), r
    assert r.cipher == want, r
    assert_gateway_chose(g, cid, want)


@pytest.mark.parametrize("offer,want", [
    ("%s:%s" % (CHACHA12_EC, AES128_EC), CHACHA12_EC),
    ("%s:%s" % (AES128_EC, CHACHA12_EC), AES128_EC),
], ids=["chacha-first", "aes-first"])
def test_python_ssl_client_and_tls_established(g, pki, raw, offer, want):
    # Another client stack (Python's ssl, set_ciphers keeps the order), and the gateway's
    # debug event for the handshake itself, found by this connection's address.
    c = raw(g.port("compat"), tls=pki.client_ctx(max_version=ssl.TLSVersion.TLSv1_2,
                                                   ciphers=offer))
    assert c.sock.version() == "TLSv1.2"
    assert c.sock.cipher()[0] == want, c.sock.cipher()
    ev = g.wait_event("tls_established", peer=c.peer_str)
    assert ev[0]["level"] == "debug", ev[0]["raw"]
    assert ev[0]["msg"].endswith("cipher %s" % want), ev[0]["raw"]
