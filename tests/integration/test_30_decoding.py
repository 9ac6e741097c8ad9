"""Payload decoding: Watson envelopes, flat JSON, plain numbers with units, raw ADC counts
with a [decode] calibration; exact temperature_c values (rounded to 2 decimals)."""

import pytest

import gw

DECODE = [
    ("adc", {"topic": "adc/#", "format": "adc", "devices": "dev0300 dev0301",
             "scale": "0.1", "offset": "-50"}),
    ("freezer", {"topic": "freezer/#", "min": "-60", "max": "0"}),
    ("us", {"topic": "us/#", "unit": "F"}),
    ("watson", {"topic": "iot-2/evt/+/fmt/json", "format": "watson"}),
    ("json-only", {"topic": "json/#", "format": "json"}),
    ("number-only", {"topic": "num/#", "format": "number"}),
    ("rest", {"topic": "#", "format": "auto"}),
]


@pytest.fixture(scope="module")
def g(request, tmp_path_factory, pki, upstream):
    return gw.module_gateway(request, tmp_path_factory, pki, upstream=upstream, decode=DECODE,
                             listeners=[gw.listener("plain", "off")])


# device, topic, payload, temperature_c, format, extra expectations
CASES = [
    ("dev0300", "adc/raw", "732", 23.2, "adc", {"raw": 732}),
    ("dev0301", "adc/a0", "250", -25.0, "adc", {"raw": 250}),
    ("dev0302", "adc/raw", "23.5", 23.5, "number", {}),  # not in the adc rule's devices
    ("dev0303", "iot-2/evt/status/fmt/json", '{"d":{"temp":21.5,"humidity":40}}', 21.5,
     "watson", {"humidity": 40, "event": "status"}),
    ("dev0304", "iot-2/evt/reading/fmt/json", '{"d":{"temperature":72.5,"unit":"F"}}', 22.5,
     "watson", {"event": "reading"}),
    ("dev0305", "json/x", '{"temperature":70.7,"humidity":40.1,"unit":"F"}', 21.5, "json",
     {"humidity": 40.1}),
    ("dev0306", "json/x", '{"temp":"21.456"}', 21.46, "json", {}),
    ("dev0307", "rest/x", "21.5C", 21.5, "number", {}),
    ("dev0308", "num/x", " 21.5 C", 21.5, "number", {}),
    ("dev0309", "num/x", "70.7F", 21.5, "number", {}),
    ("dev0310", "num/x", "21.5\u00b0C", 21.5, "number", {}),
    ("dev0311", "num/x", "-3", -3, "number", {}),
    ("dev0312", "us/x", "70.7", 21.5, "number", {}),
    ("dev0313", "freezer/x", "-55", -55, "number", {}),
    ("dev0314", "x/y", '{"d":{"temp":20}}', 20, "watson", {}),  # auto, no Watson topic
    ("dev0315", "x/y", '{"temp":20.25}', 20.25, "json", {}),
    ("dev0316", "us/x", '{"temp":70.7}', 21.5, "json", {}),
    ("dev0317", "us/x", '{"temp":21.5,"unit":"C"}', 21.5, "json", {}),
    ("dev0318", "num/x", "70F", 21.11, "number", {}),
    ("dev0319", "rest/x", "125", 125, "number", {}),
    ("dev0320", "rest/x", "-40", -40, "number", {}),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_decode(g, upstream, devices, case):
    device, topic, payload, temp, fmt, extra = case
    d = devices(g.port(), device)
    d.publish(topic, payload.encode("utf-8"))
    (m,) = upstream.wait_readings(device, g.name)
    gw.assert_reading(m, device, g.name, temp, fmt, seq=1, **extra)


def test_rule_range_rejects(g, upstream, devices):
    # freezer: max 0 C, so 5 C is outside the accepted range for that rule.
    d = devices(g.port(), "dev0321")
    d.publish("freezer/x", "5")
    (dl,) = upstream.wait_deadletters("dev0321", g.name)
    assert dl.get("topic") == "freezer/x"
    assert not upstream.readings("dev0321")


def test_adc_rule_only_for_its_topic(g, upstream, devices):
    # dev0300 is in the adc rule's device list, but not on an adc/ topic.
    n = len(upstream.readings("dev0300", g.name))
    d = devices(g.port(), "dev0300")
    d.publish("other/t", "21")
    got = upstream.wait_readings("dev0300", g.name, count=n + 1)
    gw.assert_reading(got[-1], "dev0300", g.name, 21, "number")
