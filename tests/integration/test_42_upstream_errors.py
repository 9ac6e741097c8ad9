"""Upstream failures say what happened and what to check, once: a broker that refuses the
gateway's client certificate, and TLS spoken to a port that does not speak it, each give
one upstream_connect_failed line naming the [upstream] key and its line; libmosquitto's own
words are folded into it (and kept at debug level only)."""

import socket
import threading

import gw


def one_failure(g):
    ev = g.wait_event("upstream_connect_failed", timeout=gw.WAIT + 5)
    libs = [e for e in g.events("upstream_library") if e["level"] != "debug"]
    assert not libs, "the same failure said twice: %s" % [e["raw"] for e in libs]
    return ev[0]


def test_broker_refuses_the_gateways_client_certificate(make_gateway, upstream, pki):
    # A client certificate from a CA the broker does not trust.
    g = make_gateway(upstream=upstream,
                     upstream_opts={"cert": pki.pem("intruder"), "key": pki.key("intruder")})
    e = one_failure(g)
    line = next(i for i, l in enumerate(g.conf.read_text().splitlines(), 1)
                if l.startswith("cert = ") and "intruder" in l)
    # Usually the broker's TLS alert names the refusal; when the connection is reset before
    # the alert is read, the line says what usually causes a close before CONNACK.
    assert ("refused the gateway's client certificate (" in e["msg"]
            or "refuse the gateway's client certificate" in e["msg"]), e["raw"]
    assert "[upstream] cert and key (line %d)" % line in e["msg"], e["raw"]


def test_tls_to_a_port_that_is_not_tls(make_gateway, upstream):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.2)
    port = srv.getsockname()[1]
    stop = threading.Event()

    def answer_http():
        # The gateway retries; each attempt gets the same answer. Bounded: 50 x 0.2 s.
        for _ in range(50):
            if stop.is_set():
                return
            try:
                c, _ = srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with c:
                c.settimeout(gw.WAIT)
                try:
                    c.recv(512)
                    c.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
                except OSError:
                    pass
    t = threading.Thread(target=answer_http, daemon=True)
    t.start()
    try:
        g = make_gateway(upstream=upstream, upstream_opts={"port": port})
        e = one_failure(g)
        assert "does not answer in TLS" in e["msg"] and "plaintext port" in e["msg"], e["raw"]
        assert "[upstream] host/port (line" in e["msg"], e["raw"]
        g.stop()
    finally:
        stop.set()
        t.join(gw.WAIT)
        srv.close()
