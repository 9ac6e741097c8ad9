"""The gateway's log lines: the line format (LOG_LINE_RE, LEVELS) and parse_log_line, which
turns one line into its event name and fields."""

import re

LEVELS = ("crit", "err", "warning", "notice", "info", "debug")
# Off the journal every line starts with its UTC time; "<N>" (sd-daemon) into a journal stream.
LOG_LINE_RE = re.compile(r"^(?:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z |<\d>)?"
                         r"iotgw\[(\d+)\]: (crit|err|warning|notice|info|debug) event=([a-z0-9_]+)")


def parse_log_line(line):
    """'iotgw[12]: warning event=x device=d peer=1.2.3.4:5: msg' -> dict, or None.
    Field order after event= is free; the fields end at the first token ending in ':'."""
    m = LOG_LINE_RE.match(line)
    if not m:
        return None
    ev = {"pid": int(m.group(1)), "level": m.group(2), "raw": line, "msg": ""}
    rest = line[m.start(3) - len("event="):]
    tokens = rest.split(" ")
    for i, tok in enumerate(tokens):
        km = re.match(r"^([a-z_]+)=(.*)$", tok)
        if not km:
            ev["msg"] = " ".join(tokens[i:])
            break
        k, v = km.group(1), km.group(2)
        end = v.endswith(":")
        if end:
            v = v[:-1]
        ev[k] = v
        if end:
            ev["msg"] = " ".join(tokens[i + 1:])
            break
    return ev
