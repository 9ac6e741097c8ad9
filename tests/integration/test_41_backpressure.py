"""A full spool stops the gateway from taking more readings (no PUBACK, TCP back-pressure)
instead of dropping them; when the upstream comes back everything is delivered in order."""

import socket
import threading

import gw

SPOOL = 5
N = 12


def test_full_spool_applies_back_pressure(make_gateway, upstream, raw):
    upstream.stop()
    try:
        g = make_gateway(upstream=upstream, spool={"max_messages": SPOOL})
        d = raw(g.port())
        d.connect("dev0410")
        # All N PUBLISHes in one write: the gateway has every one of them to read at once.
        d.send(b"".join(gw.publish_pkt("esp/t", str(20 + i), qos=1, pid=i + 1)
                        for i in range(N)))
        g.wait_event("spool_full")
        # The spool takes exactly SPOOL readings; their PUBACKs follow the disk flush.
        acked = []
        while len(acked) < SPOOL:
            acked += gw.pubacks([d.read_packet(gw.WAIT)])
        # Barrier: a later loop iteration. Nothing beyond the spool's room was acknowledged.
        g.loop_barrier()
        extra = gw.pubacks(d.available_packets())
        assert not extra, "PUBACKs beyond a spool of %d with the upstream down: %s" % (
            SPOOL, acked + extra)
        assert acked == list(range(1, SPOOL + 1)), acked
        assert not d.closed, "the device was disconnected while held back"
    finally:
        upstream.start()
    # The rest is acknowledged once the spool drains, in order, on the same connection.
    while len(acked) < N:
        acked += gw.pubacks([d.read_packet(gw.WAIT + 5)])
    assert acked == list(range(1, N + 1)), acked
    g.wait_event("spool_resumed")
    got = upstream.wait_readings("dev0410", g.name, count=N, timeout=gw.WAIT + 5)
    assert [m.get("temperature_c") for m in got] == [20 + i for i in range(N)]
    assert [m.get("seq") for m in got] == list(range(1, N + 1))
    d.send(gw.PINGREQ)
    d.expect(gw.PINGRESP, what="PINGRESP (still connected)")


def test_other_devices_wait_too_but_are_not_dropped(make_gateway, upstream, devices):
    upstream.stop()
    try:
        g = make_gateway(upstream=upstream, spool={"max_messages": SPOOL})
        a = devices(g.port(), "dev0411")
        b = devices(g.port(), "dev0412")
        ia = [a.publish_async("esp/t", str(10 + i)) for i in range(4)]
        ib = [b.publish_async("esp/t", str(30 + i)) for i in range(4)]
        g.wait_event("spool_full")
    finally:
        upstream.start()
    for i in ia + ib:
        i.wait_for_publish(gw.WAIT + 5)
    ga = upstream.wait_readings("dev0411", g.name, count=4, timeout=gw.WAIT + 5)
    gb = upstream.wait_readings("dev0412", g.name, count=4, timeout=gw.WAIT + 5)
    assert [m.get("temperature_c") for m in ga] == [10, 11, 12, 13]
    assert [m.get("temperature_c") for m in gb] == [30, 31, 32, 33]


def test_new_device_is_served_while_the_spool_is_full(make_gateway, upstream, raw):
    # A device that connects while the spool is full gets its CONNACK at once (it used to be
    # left unread until connect_timeout closed it) and is held at its first reading.
    upstream.stop()
    try:
        g = make_gateway(upstream=upstream, spool={"max_messages": SPOOL},
                         gateway={"connect_timeout": "30s"})
        a = raw(g.port())
        a.connect("dev0413")
        a.send(b"".join(gw.publish_pkt("esp/t", str(40 + i), qos=1, pid=i + 1)
                        for i in range(SPOOL + 1)))
        g.wait_event("spool_full")
        b = raw(g.port())
        b.send(gw.connect_pkt("dev0414"))
        b.expect(gw.CONNACK_OK, timeout=gw.WAIT, what="CONNACK while the spool is full")
        b.send(gw.publish_pkt("esp/t", "50", qos=1, pid=9))
        g.loop_barrier()
        assert b.available_packets() == [], "a PUBACK with the spool full"
        assert not b.closed
    finally:
        upstream.start()
    b.expect(b"\x40\x02\x00\x09", timeout=gw.WAIT + 5, what="PUBACK once the spool drains")
    upstream.wait_readings("dev0414", g.name, count=1, timeout=gw.WAIT + 5)


def test_device_not_reading_its_pubacks_is_not_read(make_gateway, upstream, raw):
    """A device that publishes QoS 1 without reading its PUBACKs stops being read once more
    than 16 KiB of replies wait for it (after the kernel's small send buffer): it cannot fill
    the spool for everyone. Others are served meanwhile, and once it reads, it is read again
    and every reading it sent is taken."""
    g = make_gateway(upstream=upstream)
    total = 60000
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(gw.WAIT)
    s.connect(("127.0.0.1", g.port()))
    s.sendall(gw.connect_pkt("dev0415"))
    assert s.recv(4) == gw.CONNACK_OK
    burst = b"".join(gw.publish_pkt("esp/t", "%d.5" % (i % 50), qos=1, pid=1 + i % 65535)
                     for i in range(total))
    err = []

    def send():
        try:
            s.sendall(burst)
        except OSError as e:
            err.append(e)
    t = threading.Thread(target=send, daemon=True)
    t.start()
    g.wait_event("device_not_reading", device="dev0415", timeout=gw.WAIT + 10)
    taken = len(g.events("reading_accepted", device="dev0415"))
    # Another device is served while dev0415 waits for itself; after that round trip and a
    # later loop iteration, not one more of dev0415's readings was taken (what it sent
    # waits in the kernel's buffers).
    d = raw(g.port())
    d.connect("dev0416")
    d.send(gw.publish_pkt("esp/t", "22.5", qos=1, pid=1))
    d.expect(b"\x40\x02\x00\x01", what="PUBACK for another device")
    g.loop_barrier()
    assert len(g.events("reading_accepted", device="dev0415")) == taken < total, taken
    # It reads: everything it sent is taken and acknowledged, in order.
    got = 0
    buf = b""
    while got < total:
        data = s.recv(65536)
        assert data, "closed after %d PUBACKs" % got
        buf += data
        while len(buf) >= 4:
            assert buf[:2] == b"\x40\x02", buf[:4].hex(" ")
            assert int.from_bytes(buf[2:4], "big") == 1 + got % 65535
            buf = buf[4:]
            got += 1
    t.join(gw.WAIT)
    assert not err, err
    s.close()
