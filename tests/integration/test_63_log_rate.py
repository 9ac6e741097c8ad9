"""A flood of one event does not flood the log: per event at most 1000 lines in 10 s, then
one event=log_suppressed line with the count (issue 12). Every occurrence is accounted for:
logged plus suppressed equals what happened; other events are not held back."""

import re
import socket

import gw

FLOOD = 1300


def test_flood_of_one_event_is_summarized(make_gateway, upstream):
    g = make_gateway(upstream=upstream, log_level="info")
    for i in range(FLOOD):
        # A reserved packet type as the first packet: one mqtt_protocol_error each. Waiting
        # for the close makes every one handled before the next.
        s = socket.create_connection(("127.0.0.1", g.port()), timeout=gw.WAIT)
        s.sendall(b"\xf0\x00")
        assert s.recv(16) == b"", "connection %d not closed after a malformed packet" % i
        s.close()
    # Another event in the middle of the flood is still logged.
    d = gw.Device(g.port(), "dev0630")
    d.close()
    g.wait_event("device_connected", device="dev0630")
    # A clean stop writes what was counted but not yet summarized.
    g.stop()
    logged = len(g.events("mqtt_protocol_error"))
    sums = g.events("log_suppressed")
    assert sums, "no log_suppressed line after %d protocol errors" % FLOOD
    suppressed = 0
    for ev in sums:
        m = re.match(r"(\d+) more event=mqtt_protocol_error line\(s\) suppressed in \d+ s",
                     ev["msg"])
        assert m, ev["raw"]
        assert ev["level"] == "warning", ev["raw"]  # the priority of what it stands for
        suppressed += int(m.group(1))
    assert 1000 <= logged < FLOOD, logged
    assert logged + suppressed == FLOOD, (logged, suppressed)
