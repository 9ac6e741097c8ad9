"""Bad payloads are reported, not lost: a dead-letter record with the reason and the raw
bytes (base64) goes to the dead-letter topic, event=payload_rejected is logged, the PUBLISH
is acknowledged and the device stays connected."""

import pytest

import gw


@pytest.fixture(scope="module")
def g(request, tmp_path_factory, pki, upstream):
    return gw.module_gateway(request, tmp_path_factory, pki, upstream=upstream,
                             listeners=[gw.listener("plain", "off")])


# device, topic, payload, a substring the reason must contain (or None)
CASES = [
    ("dev0330", "esp/t", b"130", "130"),
    ("dev0331", "esp/t", b"abc", None),
    ("dev0332", "esp/t", b'{"temp":', None),
    ("dev0333", "iot-2/evt/status/fmt/json", b'{"d":{"temp":21.5,"humidity":150}}', None),
    ("dev0334", "esp/t", b"", None),
    ("dev0335", "esp/t", b"\xff\xfe\x00\x80", None),
    ("dev0336", "esp/t", b"NaN", None),
    ("dev0337", "esp/t", b'{"humidity":40}', None),
    ("dev0338", "esp/t", b"1e999", None),
    ("dev0339", "esp/t", b"-41", "41"),
    ("dev0340", "iot-2/evt/status/fmt/json", b'{"temp":21.5}', None),  # no "d" envelope
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_dead_letter(g, upstream, devices, case):
    device, topic, payload, reason_part = case
    d = devices(g.port(), device)
    d.publish(topic, payload, qos=1)  # asserts the PUBACK
    (m,) = upstream.wait_deadletters(device, g.name)
    assert m.topic == "iotgw/%s/deadletter/%s" % (g.name, device)
    j = m.json
    assert set(j) == {"device", "gateway", "ts", "topic", "reason", "payload_b64",
                      "payload_len"}, j
    assert j["device"] == device
    assert j["gateway"] == g.name
    gw.parse_ts(j["ts"])
    assert j["topic"] == topic
    assert isinstance(j["reason"], str) and j["reason"].strip(), j
    if reason_part:
        assert reason_part in j["reason"], j["reason"]
    assert j["payload_b64"] == gw.b64(payload)
    assert j["payload_len"] == len(payload)
    ev = g.wait_event("payload_rejected", device=device)
    assert ev[0]["level"] != "debug", "rejections must be visible at the default log level"
    # Still connected, and the next good reading goes through. Dead letters do not
    # consume seq numbers: a gap in seq upstream always means a missing reading.
    d.publish(topic if not topic.startswith("iot-2") else "esp/t", "21.5")
    (r,) = upstream.wait_readings(device, g.name)
    gw.assert_reading(r, device, g.name, 21.5, "number", seq=1)
    assert d.unexpected_disconnects == []
    assert not g.events("device_disconnected", device=device)


def test_seq_counts_only_readings(g, upstream, devices):
    d = devices(g.port(), "dev0341")
    for p in ("20", "999", "21", "oops", "22"):
        d.publish("esp/t", p)
    got = upstream.wait_readings("dev0341", g.name, count=3)
    assert [m.get("seq") for m in got] == [1, 2, 3]
    assert [m.get("temperature_c") for m in got] == [20, 21, 22]
    assert len(upstream.wait_deadletters("dev0341", g.name, count=2)) == 2


def test_custom_dead_letter_topic(make_gateway, upstream, devices):
    g2 = make_gateway(upstream=upstream,
                      upstream_opts={"dead_letter_topic": "rejects/{gateway}/{device}"})
    d = devices(g2.port(), "dev0342")
    d.publish("esp/t", "hot")
    (m,) = upstream.wait_deadletters("dev0342", g2.name)
    assert m.topic == "rejects/%s/dev0342" % g2.name
