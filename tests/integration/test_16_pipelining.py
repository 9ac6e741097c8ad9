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


QOS0_READINGS = 100000


@pytest.mark.parametrize("listener", ["plain", "mtls"])
def test_qos0_flood_is_read_in_turns(make_gateway, upstream, raw, pki, listener):
    """QoS 0 has no acks to hold a device back. Sent faster than the gateway parses (the rate
    limits are off in tests), a flood used to be read in one go: every other device waited
    and the readings sat staged in memory until the next commit (5 M readings, 890 MB in one
    commit, in a probe). Now a connection is read 64 KiB at a time, then the others are
    served, and each loop turn ends with its group commit (over TLS what OpenSSL already
    decrypted may be read once more in the same turn): 100 000 readings of 16 bytes (1.6 MB,
    all in the socket buffers at once) take at least 12 turns, so at least that many commits.
    Before, they went in one."""
    mport = gw.free_port()
    upstream.stop()  # no deletes: every commit carries readings
    try:
        # durability = os: with fsync a checkpoint on the flush thread holds the commits
        # back while it runs, and several turns' readings may then share one.
        g2 = make_gateway(upstream=upstream, gateway={"log_level": "notice"}, durability="os",
                          listeners=[gw.listener(listener, "off" if listener == "plain"
                                                 else "mutual")],
                          extra="[metrics]\nbind = 127.0.0.1:%d\n" % mport)
        d = raw(g2.port())
        if listener == "mtls":
            d.start_tls(pki.client_ctx(cert="dev0004"), "127.0.0.1")
        d.connect("dev0004")
        before = gw.Scrape(mport).get("iotgw_spool_commits_total")
        d.send(gw.publish_pkt("dev0004/t", "21.5", qos=0) * QOS0_READINGS)
        gw.wait_metric(mport, "iotgw_readings_accepted_total",
                       lambda v: v == QOS0_READINGS, timeout=gw.WAIT + 30)
        commits = gw.Scrape(mport).get("iotgw_spool_commits_total") - before
        assert commits >= 1600000 // (2 * 65536), "%d readings in %d commits" % (
            QOS0_READINGS, commits)
        d.send(gw.PINGREQ)
        d.expect(gw.PINGRESP, what="PINGRESP after the flood")
    finally:
        upstream.start()
