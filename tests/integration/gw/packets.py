"""Raw MQTT 3.1.1 packets, byte-exact, for protocol tests: encoders (connect_pkt,
publish_pkt, ...) and the fixed packets (PINGREQ, CONNACK_OK, ...). No I/O."""


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def mstr(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return len(b).to_bytes(2, "big") + b


def packet(first_byte, body=b""):
    return bytes([first_byte]) + varint(len(body)) + body


def connect_pkt(client_id, keepalive=60, clean=True, proto="MQTT", level=4, username=None,
                password=None, flags=None, v5_props=False):
    f = 0
    if clean:
        f |= 0x02
    if username is not None:
        f |= 0x80
    if password is not None:
        f |= 0x40
    if flags is not None:
        f = flags
    body = mstr(proto) + bytes([level, f]) + keepalive.to_bytes(2, "big")
    if v5_props:
        body += b"\x00"  # MQTT 5 property length 0
    body += mstr(client_id)
    if username is not None:
        body += mstr(username)
    if password is not None:
        body += mstr(password)
    return packet(0x10, body)


def publish_pkt(topic, payload, qos=0, pid=None, dup=False, retain=False):
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    first = 0x30 | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
    body = mstr(topic)
    if qos > 0:
        body += (pid if pid is not None else 1).to_bytes(2, "big")
    return packet(first, body + payload)


def pubacks(pkts):
    """The packet ids of a list of PUBACKs (AssertionError for any other packet)."""
    for p in pkts:
        assert p[:2] == b"\x40\x02" and len(p) == 4, "not a PUBACK: %s" % p.hex(" ")
    return [int.from_bytes(p[2:4], "big") for p in pkts]


def pubrel_pkt(pid):
    return b"\x62\x02" + pid.to_bytes(2, "big")


def subscribe_pkt(pid, filters):
    body = pid.to_bytes(2, "big")
    for f, q in filters:
        body += mstr(f) + bytes([q])
    return packet(0x82, body)


def unsubscribe_pkt(pid, filters):
    body = pid.to_bytes(2, "big")
    for f in filters:
        body += mstr(f)
    return packet(0xA2, body)


PINGREQ = b"\xc0\x00"
PINGRESP = b"\xd0\x00"
DISCONNECT = b"\xe0\x00"
CONNACK_OK = b"\x20\x02\x00\x00"
