"""MQTT 3.1.1 server behaviour, byte by byte, over raw sockets (plaintext listener).

A malformed packet closes only the connection that sent it (event=mqtt_protocol_error); a
witness device connected through the whole module keeps publishing successfully."""

import pytest

import gw

MAX_PACKET = 4096


@pytest.fixture(scope="module")
def g(request, tmp_path_factory, pki, upstream):
    return gw.module_gateway(request, tmp_path_factory, pki, upstream=upstream,
                             gateway={"max_packet_size": "4K"},
                             listeners=[gw.listener("plain", "off")])


@pytest.fixture(scope="module")
def witness(g):
    d = gw.Device(g.port(), "witness")
    yield d
    d.close()


def witness_ok(witness, upstream, g):
    """The witness publishes one more reading and it arrives upstream."""
    n = len(upstream.readings("witness", g.name))
    value = 10 + n
    witness.publish("esp/witness", str(value))
    got = upstream.wait_readings("witness", g.name, count=n + 1)
    assert got[-1].get("temperature_c") == value
    assert witness.unexpected_disconnects == [], "the witness was disconnected"


# -- CONNECT / CONNACK

def test_connect_311(g, raw):
    c = raw(g.port())
    c.send(gw.connect_pkt("dev0200"))
    c.expect(b"\x20\x02\x00\x00", what="CONNACK")
    g.wait_event("device_connected", device="dev0200", peer=c.peer_str)


def test_connect_mqtt31_mqisdp(g, raw, upstream):
    c = raw(g.port())
    c.send(gw.connect_pkt("dev0201", proto="MQIsdp", level=3))
    c.expect(b"\x20\x02\x00\x00", what="CONNACK")
    c.send(gw.publish_pkt("esp/t", "20.5", qos=1, pid=1))
    c.expect(b"\x40\x02\x00\x01", what="PUBACK")
    (m,) = upstream.wait_readings("dev0201", g.name)
    gw.assert_reading(m, "dev0201", g.name, 20.5, "number", seq=1)


@pytest.mark.parametrize("level", [5, 6])
def test_unsupported_protocol_level(g, raw, level):
    c = raw(g.port())
    c.send(gw.connect_pkt("dev0202", level=level, v5_props=(level == 5)))
    c.expect(b"\x20\x02\x00\x01", what="CONNACK rc 1")
    c.wait_closed()
    g.wait_event("connect_refused", peer=c.peer_str)
    assert not g.events("device_connected", peer=c.peer_str)


def test_empty_client_id_without_clean_session(g, raw):
    c = raw(g.port())
    c.send(gw.connect_pkt("", clean=False))
    c.expect(b"\x20\x02\x00\x02", what="CONNACK rc 2")
    c.wait_closed()
    g.wait_event("connect_refused", peer=c.peer_str)


@pytest.mark.parametrize("first", [gw.PINGREQ, gw.publish_pkt("esp/t", "21"),
                                   gw.subscribe_pkt(1, [("a", 0)])],
                         ids=["pingreq", "publish", "subscribe"])
def test_first_packet_not_connect(g, raw, witness, upstream, first):
    c = raw(g.port())
    c.send(first)
    _, got = c.wait_closed()
    assert got == b"", "answered a packet before CONNECT: %r" % got
    g.wait_event("mqtt_protocol_error", peer=c.peer_str)
    witness_ok(witness, upstream, g)


# -- malformed packets after a good CONNECT

def bad_packets():
    big = MAX_PACKET + 1000
    return {
        "varint_5_bytes": b"\x30\xff\xff\xff\xff\x7f",
        "publish_qos3": gw.packet(0x36, gw.mstr("esp/t") + b"\x00\x01" + b"21"),
        "subscribe_flags_0": gw.packet(0x80, b"\x00\x01" + gw.mstr("a/b") + b"\x00"),
        "pubrel_flags_0": b"\x60\x02\x00\x01",
        "pingreq_flags_1": b"\xc1\x00",
        "disconnect_flags": b"\xe2\x00",
        "reserved_type_0": b"\x00\x00",
        "reserved_type_15": b"\xf0\x00",
        "second_connect": gw.connect_pkt("again"),
        "publish_qos1_packet_id_0": gw.publish_pkt("esp/t", "21", qos=1, pid=0),
        "topic_with_wildcard": gw.publish_pkt("esp/#", "21"),
        "topic_invalid_utf8": gw.packet(0x30, b"\x00\x02\xff\xfe" + b"21"),
        "topic_longer_than_packet": gw.packet(0x30, b"\x00\x40" + b"esp/t"),
        "subscribe_no_filters": gw.packet(0x82, b"\x00\x01"),
        "subscribe_bad_qos": gw.packet(0x82, b"\x00\x01" + gw.mstr("a/b") + b"\x03"),
        "pingreq_with_body": b"\xc0\x01\x00",
        # Remaining length far beyond max_packet_size: refused from the header alone.
        "remaining_length_too_big": b"\x30" + gw.varint(1_000_000) + gw.mstr("esp/t"),
        "just_over_max_packet_size": b"\x30" + gw.varint(big) + gw.mstr("esp/t") + b"1" * 10,
    }


@pytest.mark.parametrize("case", sorted(bad_packets()))
def test_malformed_closes_only_that_connection(g, raw, witness, upstream, case):
    c = raw(g.port())
    c.connect("bad-%s" % case[:20])
    c.send(bad_packets()[case])
    _, got = c.wait_closed()
    assert got == b"", "%s: answered before closing: %r" % (case, got)
    g.wait_event("mqtt_protocol_error", peer=c.peer_str)
    witness_ok(witness, upstream, g)


def test_truncated_packet_then_close(g, raw, witness, upstream):
    c = raw(g.port())
    c.connect("dev0203")
    c.send(gw.publish_pkt("esp/t", "21.5", qos=1, pid=1)[:6])
    c.close()
    evs = gw.wait_until(lambda: [e for e in g.events() if e.get("peer") == c.peer_str
                                 and e["event"] in ("device_disconnected", "mqtt_protocol_error")],
                        what="the gateway noticing the closed connection")
    assert evs
    witness_ok(witness, upstream, g)
    assert not upstream.readings("dev0203"), "a truncated PUBLISH was forwarded"


def test_packet_bytes_one_at_a_time(g, raw, upstream):
    c = raw(g.port())
    c.send_slowly(gw.connect_pkt("dev0204"))
    c.expect(gw.CONNACK_OK, what="CONNACK")
    c.send_slowly(gw.publish_pkt("esp/t", "26.5", qos=1, pid=0x0102))
    c.expect(b"\x40\x02\x01\x02", what="PUBACK")
    upstream.wait_readings("dev0204", g.name)


def test_many_packets_in_one_segment(g, raw, upstream):
    c = raw(g.port())
    c.send(gw.connect_pkt("dev0205") + gw.publish_pkt("esp/t", "21", qos=1, pid=1)
           + gw.PINGREQ + gw.subscribe_pkt(2, [("cmd/#", 1)])
           + gw.publish_pkt("esp/t", "22", qos=1, pid=3) + gw.unsubscribe_pkt(4, ["cmd/#"]))
    c.expect(gw.CONNACK_OK, what="CONNACK")
    c.expect(b"\x40\x02\x00\x01", what="PUBACK 1")
    c.expect(gw.PINGRESP, what="PINGRESP")
    c.expect(b"\x90\x03\x00\x02\x80", what="SUBACK")
    c.expect(b"\x40\x02\x00\x03", what="PUBACK 3")
    c.expect(b"\xb0\x02\x00\x04", what="UNSUBACK")
    got = upstream.wait_readings("dev0205", g.name, count=2)
    assert [m.get("temperature_c") for m in got] == [21, 22]


# -- normal packets

def test_pingreq(g, raw):
    c = raw(g.port())
    c.connect("dev0206")
    c.send(gw.PINGREQ)
    c.expect(b"\xd0\x00", what="PINGRESP")


def test_subscribe_is_refused_per_filter(g, raw):
    c = raw(g.port())
    c.connect("dev0207")
    c.send(gw.subscribe_pkt(0x1234, [("iot-2/cmd/+/fmt/json", 1), ("cmd/#", 0)]))
    c.expect(b"\x90\x04\x12\x34\x80\x80", what="SUBACK")
    c.send(gw.unsubscribe_pkt(0x1235, ["cmd/#"]))
    c.expect(b"\xb0\x02\x12\x35", what="UNSUBACK")
    c.send(gw.PINGREQ)
    c.expect(gw.PINGRESP, what="PINGRESP (still connected)")


def test_qos1_puback_same_packet_id(g, raw, upstream):
    c = raw(g.port())
    c.connect("dev0208")
    c.send(gw.publish_pkt("esp/t", "21.25", qos=1, pid=0xBEEF))
    c.expect(b"\x40\x02\xbe\xef", what="PUBACK")
    (m,) = upstream.wait_readings("dev0208", g.name)
    gw.assert_reading(m, "dev0208", g.name, 21.25, "number", seq=1)


def test_qos2_exactly_once(g, raw, upstream):
    c = raw(g.port())
    c.connect("dev0209")
    c.send(gw.publish_pkt("esp/t", "31.5", qos=2, pid=7))
    c.expect(b"\x50\x02\x00\x07", what="PUBREC")
    # The device did not see the PUBREC and sends the PUBLISH again with DUP set.
    c.send(gw.publish_pkt("esp/t", "31.5", qos=2, pid=7, dup=True))
    c.expect(b"\x50\x02\x00\x07", what="PUBREC (for the DUP)")
    c.send(gw.pubrel_pkt(7))
    c.expect(b"\x70\x02\x00\x07", what="PUBCOMP")
    # The same packet id after PUBCOMP is a new message.
    c.send(gw.publish_pkt("esp/t", "32.5", qos=2, pid=7))
    c.expect(b"\x50\x02\x00\x07", what="PUBREC (new message)")
    c.send(gw.pubrel_pkt(7))
    c.expect(b"\x70\x02\x00\x07", what="PUBCOMP (new message)")
    # A marker after them: readings of one device are forwarded in order, so once the
    # marker is upstream any duplicate would be too.
    c.send(gw.publish_pkt("esp/t", "33.5", qos=1, pid=8))
    c.expect(b"\x40\x02\x00\x08", what="PUBACK")
    upstream.wait_for(lambda m: m.get("device") == "dev0209" and m.get("gateway") == g.name
                      and m.get("temperature_c") == 33.5, what="the marker reading")
    got = upstream.readings("dev0209", g.name)
    assert [m.get("temperature_c") for m in got] == [31.5, 32.5, 33.5]
    assert [m.get("seq") for m in got] == [1, 2, 3]


def test_pubrel_for_unknown_packet_id(g, raw):
    # 4.3.3: PUBCOMP even if the packet id is not (or no longer) known.
    c = raw(g.port())
    c.connect("dev0210")
    c.send(gw.pubrel_pkt(99))
    c.expect(b"\x70\x02\x00\x63", what="PUBCOMP")


def test_retained_flag_is_ignored(g, raw, upstream, pki):
    c = raw(g.port())
    c.connect("dev0211")
    c.send(gw.publish_pkt("esp/t", "27.5", qos=1, pid=1, retain=True))
    c.expect(b"\x40\x02\x00\x01", what="PUBACK")
    (m,) = upstream.wait_readings("dev0211", g.name)
    # A new subscriber on the upstream gets no retained reading. The broker queues retained
    # messages for a subscriber when it subscribes, so they would come before a reading
    # published after its SUBACK (the barrier).
    late = gw.Observer(upstream, "late-subscriber", clean_session=True)
    try:
        g.upstream_barrier(observer=late)
        assert not late.messages(lambda x: x.topic == m.topic), "reading was retained upstream"
    finally:
        late.close()


def test_disconnect(g, raw):
    c = raw(g.port())
    c.connect("dev0212")
    c.send(gw.DISCONNECT)
    c.wait_closed()
    g.wait_event("device_disconnected", device="dev0212")


def test_session_takeover(g, raw, upstream):
    a = raw(g.port())
    a.connect("dev0213")
    b = raw(g.port())
    b.connect("dev0213")
    a.wait_closed()  # 3.1.4-2: the old connection is closed
    g.wait_event("session_taken_over", device="dev0213")
    b.send(gw.publish_pkt("esp/t", "28", qos=1, pid=1))
    b.expect(b"\x40\x02\x00\x01", what="PUBACK")
    upstream.wait_readings("dev0213", g.name)
    b.send(gw.PINGREQ)
    b.expect(gw.PINGRESP, what="PINGRESP")
