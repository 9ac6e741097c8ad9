"""Small helpers every other module uses: bounded waiting (wait_until), log tails for
assertion messages, and names (safe_name for file and gateway names, unique for ids)."""

import itertools
import re
import time

from .env import WAIT


def tail(text, n=150):
    lines = text.splitlines()
    if len(lines) > n:
        lines = ["... (%d lines omitted)" % (len(lines) - n)] + lines[-n:]
    return "\n".join(lines)


def read_log(path):
    """A log file's text ("" before it exists), undecodable bytes replaced."""
    try:
        return open(path, errors="replace").read()
    except FileNotFoundError:
        return ""


def wait_until(pred, timeout=WAIT, interval=0.02, what="condition"):
    """Polls pred() until it returns something truthy; returns it. AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def safe_name(s, n=40):
    return re.sub(r"[^A-Za-z0-9._-]+", "-", s).strip("-")[:n] or "x"


_uniq = itertools.count(1)


def unique(prefix):
    return "%s%d" % (prefix, next(_uniq))
