"""What the gateway reports about itself outside the log: `iotgw --spool-stats`
(spool_stats, SpoolStats), the STATE_DIR/status file (parse_kv) and the STATUS= text it sends
to the service manager (parse_status)."""

import re
import subprocess

from .env import IOTGW_BIN, WAIT


def parse_kv(text):
    """'key: value' lines (iotgw --spool-stats, STATE_DIR/status) -> dict of strings."""
    out = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


class SpoolStats:
    """The result of `iotgw --spool-stats`: rc, stdout, stderr and the parsed fields."""

    def __init__(self, r):
        self.rc = r.returncode
        self.stdout = r.stdout
        self.stderr = r.stderr
        self.fields = parse_kv(r.stdout) if r.returncode == 0 else {}

    def __getitem__(self, key):
        assert key in self.fields, "no '%s:' line in iotgw --spool-stats output (rc %d):\n%s%s" % (
            key, self.rc, self.stdout, self.stderr)
        return self.fields[key]

    def int(self, key):
        v = self[key]
        assert re.fullmatch(r"\d+", v), "--spool-stats %s: %r is not a count" % (key, v)
        return int(v)

    def __repr__(self):
        return "<spool-stats rc=%d\n%s%s>" % (self.rc, self.stdout, self.stderr)


def spool_stats(conf):
    r = subprocess.run([IOTGW_BIN, "--spool-stats", "-c", str(conf)], capture_output=True,
                       text=True, timeout=WAIT)
    return SpoolStats(r)


# "3 connections; upstream connected; spool 12 queued (oldest 4s); 100 readings, 2 rejected;
#  57 commits, 57 fsyncs" (" FULL" after "(oldest Ns)" while devices are held back), and
#  while the upstream is not connected "; upstream down for 42 s: <why>"
STATUS_RE = re.compile(
    r"^(?P<connections>\d+) connections?; upstream (?P<upstream>[a-z_ -]+); "
    r"spool (?P<queued>\d+) queued \(oldest (?P<oldest>\d+)s\)(?P<full> FULL)?; "
    r"(?P<readings>\d+) readings?, (?P<rejected>\d+) rejected; "
    r"(?P<commits>\d+) commits?, (?P<fsyncs>\d+) fsyncs?"
    r"(?:; upstream (?:down|connecting) for (?P<down_for>[^:]+?)(?:: (?P<why>.*))?)?$")


def parse_status(text):
    """A STATUS= text -> dict (ints for the counts, full: bool, text: the original), or None
    when it does not have the spool format above."""
    m = STATUS_RE.match(text)
    if not m:
        return None
    d = {k: (int(v) if v is not None and v.isdigit() else v) for k, v in m.groupdict().items()}
    d["full"] = bool(m.group("full"))
    d["text"] = text
    return d
