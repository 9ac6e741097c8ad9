"""PROXY protocol on listeners, with a real HAProxy (Debian's haproxy) in front of the gateway:
the device's own address (the client's source port) becomes the session's peer, in the log
lines and in the per-address limits, whether HAProxy passes TLS through (send-proxy-v2, with a
CRC32C, and send-proxy, v1) or terminates it and vouches for the client certificate's CN
(send-proxy-v2-ssl-cn with proxy_identity = ssl-cn). Connections from addresses outside
proxy_from are refused and logged; malformed, cut and late headers get a precise log line and
a close, while a device behind the balancer goes on publishing; proxy_protocol = optional takes
a header or none."""

import socket
import struct

import pytest

import gw

pytestmark = pytest.mark.skipif(not gw.haproxy_available(),
                                reason="haproxy is not installed (tools/install-deps)")

LOCAL = "127.0.0.1"
TRUSTED = {"proxy_from": "127.0.0.1/32"}
SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(src="192.0.2.10", sport=40001, dst="127.0.0.1", dport=1883, tlvs=b"",
              length=None, vercmd=0x21, fam=0x11):
    """A PROXY v2 header over TCP/IPv4 built by hand; length overrides the length field."""
    body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport)
    body += tlvs
    n = len(body) if length is None else length
    return SIG + bytes([vercmd, fam]) + struct.pack(">H", n) + body


def v1_header(src="192.0.2.10", sport=40001, dst="127.0.0.1", dport=1883):
    return ("PROXY TCP4 %s %s %d %d\r\n" % (src, dst, sport, dport)).encode()


@pytest.fixture(scope="module")
def g(request, tmp_path_factory, pki, upstream):
    mport = gw.free_port()
    g = gw.module_gateway(
        request, tmp_path_factory, pki, upstream=upstream, extra="[metrics]\nbind = %s:%d"
        % (LOCAL, mport), listeners=[
            gw.listener("barrier", "off"),
            gw.listener("mtls-v2", "mutual", proxy_protocol="v2", **TRUSTED),
            gw.listener("mtls-v1", "mutual", proxy_protocol="v1", proxy_from="127.0.0.0/8"),
            gw.listener("untrusted", "mutual", proxy_protocol="v2",
                        proxy_from="10.0.0.0/8, 2001:db8::/32"),
            gw.listener("raw-v2", "off", proxy_protocol="v2", handshake_timeout="1s",
                        **TRUSTED),
            gw.listener("raw-v1", "off", proxy_protocol="v1", **TRUSTED),
            gw.listener("opt-tls", "mutual", proxy_protocol="optional", **TRUSTED),
            gw.listener("opt-plain", "off", proxy_protocol="optional", **TRUSTED),
            gw.listener("sslcn", "off", proxy_protocol="v2", proxy_identity="ssl-cn",
                        **TRUSTED),
            gw.listener("rate", "off", proxy_protocol="v1", max_connection_rate_per_address=2,
                        **TRUSTED),
        ])
    g.mport = mport
    return g


@pytest.fixture(scope="module")
def lb(request, tmp_path_factory, pki, g):
    """HAProxy with one frontend per case; lb.port[NAME] is a frontend's port."""
    d = tmp_path_factory.mktemp("haproxy")
    crt = d / "gateway-with-key.pem"  # HAProxy wants the certificate and its key in one file
    crt.write_text(open(pki.pem("gateway")).read() + open(pki.key("gateway")).read())
    fronts = {
        "v2": ("", "mtls-v2", "send-proxy-v2 proxy-v2-options crc32c"),
        "v1": ("", "mtls-v1", "send-proxy"),
        "opt": ("", "opt-tls", "send-proxy-v2"),
        "raw": ("", "raw-v2", "send-proxy-v2"),
        "sslcn": (" ssl crt %s ca-file %s verify required" % (crt, pki.pem("devices-ca")),
                  "sslcn", "send-proxy-v2-ssl-cn"),
    }
    port = {k: gw.free_port() for k in fronts}
    sections = ""
    for k, (bind_opts, listener, server_opts) in fronts.items():
        sections += ("frontend fe_%s\n    bind %s:%d%s\n    default_backend be_%s\n\n"
                     "backend be_%s\n    server gw %s:%d %s\n\n"
                     % (k, LOCAL, port[k], bind_opts, k, k, LOCAL, g.port(listener),
                        server_opts))
    h = gw.HAProxy(d, sections)
    request.addfinalizer(h.close)
    h.start(wait=[(LOCAL, p) for p in port.values()])
    h.port = port
    return h


def tls_device(lb_port, pki, cert, client_id=None):
    """A device through the balancer: TLS with cert, CONNECT as client_id (the cert's name)."""
    c = gw.RawConn(lb_port, tls=pki.client_ctx(cert=cert), server_hostname=LOCAL)
    c.connect(client_id or cert)
    return c


def publish(c, device, value, pid):
    c.send(gw.publish_pkt("esp/%s/t" % device, value, qos=1, pid=pid))
    c.expect(b"\x40\x02" + pid.to_bytes(2, "big"), what="PUBACK")


def proxy_line(g, peer):
    """The debug line of the header that made peer the session's peer."""
    return g.wait_event("proxy_header", peer=peer)[0]


# ---- (a), (b): the device's address through HAProxy passing TLS through

@pytest.mark.parametrize("front,listener,version", [("v2", "mtls-v2", 2),
                                                     ("v1", "mtls-v1", 1)])
def test_device_address_through_haproxy(g, lb, upstream, pki, front, listener, version):
    device = "dev0001" if version == 2 else "dev0002"
    c = tls_device(lb.port[front], pki, device)
    try:
        publish(c, device, "21.5", 1)
        # The client's own source port, which only the header can tell the gateway.
        ev = g.wait_event("device_connected", device=device, listener=listener)
        assert ev[-1]["peer"] == c.peer_str, ev[-1]["raw"]
        hdr = proxy_line(g, c.peer_str)
        assert "PROXY protocol v%d header from balancer 127.0.0.1:" % version in hdr["msg"], \
            hdr["raw"]
        assert hdr["listener"] == listener
        (m,) = upstream.wait_readings(device, g.name)
        gw.assert_reading(m, device, g.name, 21.5, "number")
    finally:
        c.close()
    ev = g.wait_event("device_disconnected", device=device, listener=listener)
    assert ev[-1]["peer"] == c.peer_str, ev[-1]["raw"]


# ---- (c): only the balancers may connect

def test_untrusted_address_refused_and_logged(g, raw):
    mport = g.mport
    before = gw.Scrape(mport).get("iotgw_proxy_refusals_total", listener="untrusted",
                                  reason="untrusted")
    c = raw(g.port("untrusted"))
    # Closed before TLS: not a byte of a handshake comes back.
    waited, got = c.wait_closed()
    assert got == b""
    (ev,) = g.wait_event("proxy_untrusted", peer=c.peer_str)
    assert ev["level"] == "warning" and ev["listener"] == "untrusted", ev["raw"]
    assert ev["msg"].startswith("connection from 127.0.0.1 refused: not in proxy_from of "
                                "listener untrusted"), ev["raw"]
    assert not g.events("tls_handshake_failed", peer=c.peer_str)
    gw.wait_metric(mport, "iotgw_proxy_refusals_total", lambda v: v == before + 1,
                   listener="untrusted", reason="untrusted")


# ---- (d): malformed headers: a precise line, a close, and nobody else disturbed

MALFORMED = [
    # (listener, bytes, close after sending, a part of the reason)
    ("raw-v2", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", False,
     "PROXY protocol header: not a PROXY protocol header: the connection starts with 47 45 "
     "54 20 2f 20 48 54 ..."),
    ("raw-v2", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", False,
     "the connection starts with 16 03 01 00 a5 01 00 00 ..."),
    ("raw-v2", gw.connect_pkt("sneaky"), False, "the connection starts with 10 "),
    ("raw-v2", v2_header()[:20], True,
     "connection closed after 20 bytes of the PROXY protocol header"),
    ("raw-v2", b"", True, "connection closed before the PROXY protocol header"),
    ("raw-v2", v2_header(length=4), False, "v2: 4 address bytes, TCP over IPv4 needs 12"),
    ("raw-v2", v2_header(length=0xffff), False,
     "v2: a header of 65551 bytes (at most 536 are accepted)"),
    ("raw-v2", v2_header(tlvs=b"\x20\x00\x09abc"), False,
     "v2: TLV 0x20 at byte 28 says 9 bytes, 3 are left in the header"),
    ("raw-v2", v2_header(vercmd=0x11), False, "v2: version 1 (2 is the only one)"),
    ("raw-v2", v2_header(fam=0x12), False, "v2: a datagram (DGRAM) connection"),
    ("raw-v2", v1_header(), False, "a PROXY protocol v1 header, but only v2 is accepted here"),
    ("raw-v1", v1_header(src="192.0.2.256"), False,
     'v1: source address "192.0.2.256" is not an IPv4 address'),
    ("raw-v1", b"PROXY TCP4 192.0.2.1 127.0.0.1 1 2\n", False, "v1: LF without CR at byte 34"),
    ("raw-v1", b"PROXY UNKNOWN " + b"a" * 100, False, "v1: no CRLF within the first 107 bytes"),
    ("raw-v1", v2_header(), False, "a PROXY protocol v2 header, but only v1 is accepted here"),
]


def test_malformed_headers_closed_with_reason(g, lb, raw):
    # A device behind the balancer, connected before and kept throughout.
    by = raw(lb.port["raw"])
    by.connect("bystander")
    for i, (listener, data, half_close, why) in enumerate(MALFORMED):
        c = raw(g.port(listener))
        if data:
            c.send(data)
        if half_close:
            c.sock.shutdown(socket.SHUT_WR)
        waited, got = c.wait_closed()
        assert got == b"", (why, got)
        (ev,) = g.wait_event("proxy_header_invalid", peer=c.peer_str)
        assert why in ev["msg"], (why, ev["raw"])
        assert ev["msg"].endswith("; connection closed"), ev["raw"]
        assert ev["level"] == "warning" and ev["listener"] == listener, ev["raw"]
        publish(by, "bystander", "20.%02d" % i, i + 1)
    assert not by.available_packets() and not by.closed
    assert not g.events("mqtt_protocol_error")


def test_header_timeout(g, raw):
    c = raw(g.port("raw-v2"))
    c.send(v2_header()[:15])  # a beginning, then nothing: bounded by handshake_timeout (1 s)
    waited, _ = c.wait_closed(timeout=5)
    assert 0.8 < waited < 4, waited
    (ev,) = g.wait_event("proxy_header_timeout", peer=c.peer_str)
    assert ev["msg"] == ("no complete PROXY protocol header within 1000 ms "
                         "(handshake_timeout); connection closed"), ev["raw"]


def test_header_then_device_bytes_in_one_segment(g, upstream, raw):
    # The header and the CONNECT + PUBLISH in one send: exactly the header is taken.
    c = raw(g.port("raw-v2"))
    c.send(v2_header(src="192.0.2.33", sport=4433) + gw.connect_pkt("onesegment")
           + gw.publish_pkt("esp/t", "23.25", qos=1, pid=9))
    c.expect(gw.CONNACK_OK, what="CONNACK")
    c.expect(b"\x40\x02\x00\x09", what="PUBACK")
    ev = g.wait_event("device_connected", device="onesegment")
    assert ev[0]["peer"] == "192.0.2.33:4433", ev[0]["raw"]
    upstream.wait_readings("onesegment", g.name)


def test_header_byte_by_byte(g, raw):
    c = raw(g.port("raw-v1"))
    c.send_slowly(v1_header(src="198.51.100.7", sport=7777), delay=0.002)
    c.connect("slowheader")
    ev = g.wait_event("device_connected", device="slowheader")
    assert ev[0]["peer"] == "198.51.100.7:7777", ev[0]["raw"]


def test_local_and_unknown_keep_the_balancers_address(g, raw):
    c = raw(g.port("raw-v2"))
    c.send(SIG + b"\x20\x00\x00\x00")  # LOCAL, as a balancer's own health check
    c.connect("localcmd")
    (ev,) = g.wait_event("device_connected", device="localcmd")
    assert ev["peer"] == c.peer_str
    u = raw(g.port("raw-v1"))
    u.send(b"PROXY UNKNOWN\r\n")
    u.connect("unknownv1")
    (ev,) = g.wait_event("device_connected", device="unknownv1")
    assert ev["peer"] == u.peer_str


# ---- the per-address limits see the device's address, not the balancer's

def test_connection_rate_by_device_address(g, raw):
    # max_connection_rate_per_address = 2 on the listener (a bucket of 2, refilled at 2 per
    # second): of 5 connections of one device address made at once, at most 3 get in (the
    # third may run the bucket into debt), while another address behind the same balancer
    # (every connection here comes from 127.0.0.1) still gets in.
    conns = []
    for i in range(5):
        c = raw(g.port("rate"))
        c.send(v1_header(src="203.0.113.5", sport=5000 + i) + gw.connect_pkt("rate%d" % i))
        conns.append(c)
    admitted = 0
    for c in conns:
        try:
            admitted += c.read_packet() == gw.CONNACK_OK
        except gw.Closed:
            pass
    assert 2 <= admitted <= 3, admitted
    (lim,) = g.wait_event("connection_limit", listener="rate", level="warning")
    assert "from 203.0.113.5 (max_connection_rate_per_address)" in lim["msg"], lim["raw"]
    assert lim["peer"].startswith("203.0.113.5:500"), lim["raw"]
    other = raw(g.port("rate"))
    other.send(v1_header(src="203.0.113.6", sport=6000) + gw.connect_pkt("rate-other"))
    other.expect(gw.CONNACK_OK, what="CONNACK of another address")


# ---- (e): optional takes a header or none

def test_optional_takes_both(g, lb, pki, raw):
    via = tls_device(lb.port["opt"], pki, "dev0003")
    try:
        ev = g.wait_event("device_connected", device="dev0003", listener="opt-tls")
        assert ev[-1]["peer"] == via.peer_str, ev[-1]["raw"]
    finally:
        via.close()
    direct = raw(g.port("opt-tls"), tls=pki.client_ctx(cert="dev0004"),
                 server_hostname=LOCAL)
    direct.connect("dev0004")
    ev = g.wait_event("device_connected", device="dev0004", listener="opt-tls")
    assert ev[-1]["peer"] == direct.peer_str, ev[-1]["raw"]
    assert "no PROXY protocol header" in proxy_line(g, direct.peer_str)["msg"]
    # Plaintext: a v1 and a v2 header, and none.
    a = raw(g.port("opt-plain"))
    a.send(v1_header(src="192.0.2.77", sport=4242))
    a.connect("opt-v1")
    b = raw(g.port("opt-plain"))
    b.send(v2_header(src="192.0.2.78", sport=4343))
    b.connect("opt-v2")
    n = raw(g.port("opt-plain"))
    n.connect("opt-none")
    for dev, peer in (("opt-v1", "192.0.2.77:4242"), ("opt-v2", "192.0.2.78:4343"),
                      ("opt-none", n.peer_str)):
        (ev,) = g.wait_event("device_connected", device=dev, listener="opt-plain")
        assert ev["peer"] == peer, ev["raw"]
    # What begins like a header must be one.
    bad = raw(g.port("opt-plain"))
    bad.send(b"POST / HTTP/1.1\r\n\r\n")
    bad.wait_closed()
    (ev,) = g.wait_event("proxy_header_invalid", peer=bad.peer_str)
    assert "not a PROXY protocol header: the connection starts with 50 4f 53 54" in ev["msg"]


# ---- (f): HAProxy terminates TLS and vouches for the certificate's CN

def test_ssl_cn_identity(g, lb, upstream, pki):
    c = gw.RawConn(lb.port["sslcn"], tls=pki.client_ctx(cert="dev0004"),
                   server_hostname=LOCAL)
    try:
        c.connect("dev0004")
        publish(c, "dev0004", "19.75", 3)
        ev = g.wait_event("device_connected", device="dev0004", listener="sslcn")
        assert ev[-1]["peer"] == c.peer_str, ev[-1]["raw"]
        assert ev[-1].get("tls") is None, ev[-1]["raw"]  # TLS ended at the balancer
        (m,) = upstream.wait_readings("dev0004", g.name)
        gw.assert_reading(m, "dev0004", g.name, 19.75, "number")
    finally:
        c.close()
    # Its start-up warning says who authenticates the devices (the
    # balancer), not that nobody does.
    (w,) = g.events("plaintext_listener", listener="sslcn")
    assert "proxy_identity = ssl-cn" in w["msg"], w["raw"]
    assert "not authenticated" not in w["msg"], w["raw"]


def test_ssl_cn_client_id_must_match(g, lb, pki):
    # The CN is an authenticated identity: client_id = match applies, as with mutual TLS.
    c = gw.RawConn(lb.port["sslcn"], tls=pki.client_ctx(cert="dev0003"),
                   server_hostname=LOCAL)
    try:
        c.send(gw.connect_pkt("dev0001"))
        assert c.read_packet() == b"\x20\x02\x00\x05", "CONNACK not authorized expected"
        (ev,) = g.wait_event("client_id_mismatch", device="dev0003", listener="sslcn")
        assert 'client id "dev0001" does not match device dev0003' in ev["msg"], ev["raw"]
    finally:
        c.close()


def test_ssl_cn_listener_ignores_a_claim_without_the_balancers_word(g, upstream, raw):
    # A header without the SSL TLV (from an address in proxy_from): no identity, and the
    # client id names nobody.
    c = raw(g.port("sslcn"))
    c.send(v2_header(src="192.0.2.99", sport=9999) + gw.connect_pkt("claimer"))
    assert c.read_packet() == b"\x20\x02\x00\x05", "CONNACK not authorized expected"
    (ev,) = g.wait_event("identity_missing", peer="192.0.2.99:9999", listener="sslcn")
    assert "no SSL TLV" in ev["msg"], ev["raw"]
    # A verify failure the balancer reports (verify = 10) is no identity either.
    ssl_tlv = b"\x07" + struct.pack(">I", 10) + b"\x22\x00\x07dev0002"
    d = raw(g.port("sslcn"))
    d.send(v2_header(src="192.0.2.98", sport=9998, tlvs=b"\x20" + struct.pack(
        ">H", len(ssl_tlv)) + ssl_tlv) + gw.connect_pkt("claimer"))
    assert d.read_packet() == b"\x20\x02\x00\x05"
    (ev,) = g.wait_event("identity_missing", peer="192.0.2.98:9998", listener="sslcn")
    assert "could not verify the client certificate (verify result 10)" in ev["msg"], ev["raw"]
    assert not upstream.readings("claimer", g.name)


def test_ssl_cn_from_a_hand_made_header(g, upstream, raw):
    # What the balancer sends, byte for byte: the SSL TLV with the CN names the device.
    ssl_tlv = b"\x03" + struct.pack(">I", 0) + b"\x21\x00\x07TLSv1.3" + b"\x22\x00\x07dev0001"
    c = raw(g.port("sslcn"))
    c.send(v2_header(src="192.0.2.97", sport=9997, tlvs=b"\x20" + struct.pack(
        ">H", len(ssl_tlv)) + ssl_tlv) + gw.connect_pkt("dev0001"))
    c.expect(gw.CONNACK_OK, what="CONNACK")
    publish(c, "dev0001", "18.5", 4)
    ev = g.wait_event("device_connected", device="dev0001", listener="sslcn")
    assert ev[-1]["peer"] == "192.0.2.97:9997", ev[-1]["raw"]
    ms = upstream.wait_readings("dev0001", g.name, count=1)
    assert any(m.get("temperature_c") == 18.5 for m in ms)


def test_metrics_count_refusals(g):
    s = gw.Scrape(g.mport)
    assert s.get("iotgw_proxy_refusals_total", listener="raw-v2", reason="invalid") >= 10
    assert s.get("iotgw_proxy_refusals_total", listener="raw-v2", reason="timeout") >= 0
    assert s.get("iotgw_proxy_refusals_total", listener="untrusted", reason="untrusted") >= 1
    assert not any(k[0] == "iotgw_proxy_refusals_total" and ("listener", "barrier") in k[1]
                   for k in s.samples)


def test_reload_that_drops_a_balancer_closes_its_connections(make_gateway, upstream, raw):
    # Taking a balancer out of proxy_from must end what it already has open, as a new
    # connection from it would be refused: else it could go on claiming any address.
    lst = gw.listener("lb", "off", proxy_protocol="v1", proxy_from="127.0.0.0/8")
    g2 = make_gateway(upstream=upstream, listeners=[lst])
    c = raw(g2.port())
    c.send(v1_header(src="192.0.2.77", sport=4077) + gw.connect_pkt("dev0997"))
    c.expect(gw.CONNACK_OK, what="CONNACK through the balancer")
    # A reload that keeps the balancer keeps the connection.
    lst["opts"]["proxy_from"] = "10.0.0.0/8, 127.0.0.1/32"
    g2.write_config()
    g2.reload()
    c.send(gw.PINGREQ)
    c.expect(gw.PINGRESP, what="PINGRESP after a reload that kept the balancer")
    lst["opts"]["proxy_from"] = "10.0.0.0/8"
    g2.write_config()
    g2.reload()
    (ev,) = g2.wait_event("proxy_untrusted", device="dev0997")
    assert ev["level"] == "warning" and ev["peer"] == "192.0.2.77:4077", ev["raw"]
    assert ev["msg"] == ("balancer 127.0.0.1 is no longer in proxy_from of listener lb after "
                         "reload; connection closed"), ev["raw"]
    c.wait_closed()
