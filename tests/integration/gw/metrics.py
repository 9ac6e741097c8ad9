"""The gateway's [metrics] listener as a client sees it: HTTP requests (urllib), the
Prometheus text format parsed into samples (Scrape), and waiting for a series to move."""

import re
import urllib.error
import urllib.request

from .env import WAIT
from .util import wait_until


def http_get(port, path, method="GET"):
    """(status, content type, body text) of one request to 127.0.0.1:port."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=WAIT) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Exposition text -> {(name, ((label, value), ...)): float}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        assert m, "not a sample line: %r" % line
        labels = tuple(sorted(LABEL_RE.findall(m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


class Scrape:
    """One GET /metrics: .text, .samples, .get(name, **labels)."""

    def __init__(self, port):
        status, ctype, self.text = http_get(port, "/metrics")
        assert status == 200, (status, self.text)
        assert ctype == "text/plain; version=0.0.4; charset=utf-8", ctype
        self.samples = parse_metrics(self.text)

    def get(self, name, **labels):
        key = (name, tuple(sorted(labels.items())))
        assert key in self.samples, "no %s%r in the exposition:\n%s" % (
            name, labels, "\n".join(l for l in self.text.splitlines() if name in l)[:2000])
        return self.samples[key]

    def total(self, name):
        """The sum over every label set of name."""
        return sum(v for (n, _), v in self.samples.items() if n == name)


def wait_metric(port, name, pred, timeout=WAIT, **labels):
    """Scrapes until name{labels} satisfies pred; returns that scrape."""
    last = []

    def have():
        s = Scrape(port)
        last[:] = [s.get(name, **labels)]
        return s if pred(last[0]) else None
    try:
        return wait_until(have, timeout, interval=0.1, what=name)
    except AssertionError as e:
        raise AssertionError("%s%r: last value %r (%s)" % (name, labels, last, e))
