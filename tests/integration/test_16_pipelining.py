"""A device flushing an offline backlog pipelines thousands of QoS 1 PUBLISHes without waiting
for a single PUBACK. The gateway holds such a device back while its acks wait for the spool
commit (so one fast device cannot starve the others) and must read it again after every
commit: every PUBLISH gets its PUBACK, in order, and every reading arrives upstream.

Regression: a hold set again while the commit released the previous one was cleared, so the
session stayed paused for good after 2048 PUBACKs and was closed by its keepalive. Over TLS
the records of a held device are read ahead and decrypted inside OpenSSL, where epoll cannot
see them: reading again must not wait for bytes that will never come (conn feeds a readable
event for them)."""

import socket
import threading

import pytest

import gw


@pytest.fixture(scope="module")
def g(request, tmp_path_factory, pki, upstream):
    return gw.module_gateway(request, tmp_path_factory, pki, upstream=upstream,
                             listeners=[gw.listener("plain", "off"),
                                        gw.listener("mtls", "mutual")])


@pytest.mark.parametrize("listener,count", [("plain", 3000), ("plain", 8000), ("mtls", 8000)])
def test_pipelined_burst_is_fully_acknowledged(g, raw, upstream, pki, listener, count):
    if listener == "mtls":
        device = "dev0004"  # the certificate's CN
        c = raw(g.port("mtls"))
        c.start_tls(pki.client_ctx(cert=device), "127.0.0.1")
    else:
        device = "dev016%d" % (count // 1000)
        c = raw(g.port())
    c.connect(device, keepalive=60)
    topic = "%s/t" % device if listener == "mtls" else "esp/t"  # the default publish_acl
    burst = b"".join(gw.publish_pkt(topic, "%d.5" % (i % 100), qos=1, pid=1 + i % 65535)
                     for i in range(count))
    # Sent from a thread: if the gateway stops reading, sendall blocks once the socket
    # buffers are full, and the reader below must still report what it got.
    err = []

    def send():
        try:
            c.sock.sendall(burst)
        except OSError as e:
            err.append(e)
    # An SSL socket is not for two threads; the gateway writes its PUBACKs (32 KiB for
    # 8000) into our receive buffer while it reads, so sending first cannot deadlock.
    t = threading.Thread(target=send, daemon=True)
    if listener == "mtls":
        send()
    else:
        t.start()
    got = 0
    try:
        while got < count:
            pid = 1 + got % 65535
            c.expect(b"\x40\x02" + pid.to_bytes(2, "big"), timeout=gw.WAIT,
                     what="PUBACK %d of %d" % (got + 1, count))
            got += 1
    except (AssertionError, socket.timeout) as e:
        raise AssertionError("%d of %d PUBACKs received: %s" % (got, count, e))
    if t.is_alive() or listener != "mtls":
        t.join(gw.WAIT)
    assert not err, err
    # The upstream drains at its own pace (slow under ASan): wait as long as it makes progress.
    readings = []
    while len(readings) < count:
        before = len(upstream.readings(device, g.name))
        try:
            readings = upstream.wait_readings(device, g.name, count=count, timeout=gw.WAIT)
        except AssertionError:
            if len(upstream.readings(device, g.name)) == before:
                raise
    assert [m.get("seq") for m in readings[:count]] == list(range(1, count + 1))
    # The device is still served after its burst.
    c.send(gw.PINGREQ)
    c.expect(b"\xd0\x00", what="PINGRESP")
