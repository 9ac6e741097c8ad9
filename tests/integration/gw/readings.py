"""Checks of what arrives upstream: assert_reading (one reading message against the
contract), parse_ts (its RFC 3339 timestamp) and b64 (dead letters carry raw bytes in base64)."""

import base64
import datetime
import re
import time

TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def parse_ts(ts):
    assert TS_RE.match(ts), "ts %r is not RFC 3339 UTC with milliseconds" % ts
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def assert_reading(m, device, gateway, temperature_c, fmt, seq=None, humidity=None, event=None,
                   raw=None, topic=None):
    """Checks one upstream reading message against the contract (SPEC "Upstream messages")."""
    j = m.json
    assert isinstance(j, dict), "upstream message is not a JSON object: %r" % m
    keys = {"device", "gateway", "ts", "seq", "temperature_c", "format"}
    if humidity is not None:
        keys.add("humidity_pct")
    if event is not None:
        keys.add("event")
    if raw is not None:
        keys.add("raw")
    assert set(j) == keys, "reading keys %s, expected %s: %r" % (sorted(j), sorted(keys), m)
    assert j["device"] == device, m
    assert j["gateway"] == gateway, m
    assert j["format"] == fmt, m
    assert isinstance(j["seq"], int) and not isinstance(j["seq"], bool) and j["seq"] >= 1, m
    if seq is not None:
        assert j["seq"] == seq, m
    assert isinstance(j["temperature_c"], (int, float)), m
    assert abs(j["temperature_c"] - temperature_c) < 1e-9, "temperature_c %r != %r (%r)" % (
        j["temperature_c"], temperature_c, m)
    if humidity is not None:
        assert abs(j["humidity_pct"] - humidity) < 1e-9, m
    if event is not None:
        assert j["event"] == event, m
    if raw is not None:
        assert j["raw"] == raw, m
    assert abs(parse_ts(j["ts"]) - time.time()) < 300, "ts %s is not now" % j["ts"]
    if topic is not None:
        assert m.topic == topic, "topic %s, expected %s" % (m.topic, topic)
    assert not m.retain, "reading forwarded with the retain flag: %r" % m


def b64(data):
    return base64.b64encode(data).decode("ascii")
