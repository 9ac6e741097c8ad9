"""The event catalogue: `iotgw --events` prints the table in include/iotgw/events.h (the only
list; log calls cannot name anything else), iotgw(8) documents exactly those events, and every
event the other documents mention (event=NAME, IOTGW_EVENT=NAME) exists."""

import os
import re
import subprocess

import pytest

import gw

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def code_events():
    r = subprocess.run([gw.IOTGW_BIN, "--events"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    names = r.stdout.split()
    assert len(names) == len(set(names)) and len(names) > 40, names
    return set(names)


def man_events():
    text = open(os.path.join(ROOT, "docs", "iotgw.8")).read()
    section = text.split(".SS Events", 1)[1].split("\n.SH ", 1)[0]
    return set(re.findall(r"^\.TP\n\.B ([a-z0-9_]+)", section, re.M))


def test_man_page_documents_exactly_the_events_logged():
    code, man = code_events(), man_events()
    assert code - man == set(), "logged but not in iotgw(8): %s" % sorted(code - man)
    assert man - code == set(), "in iotgw(8) but never logged: %s" % sorted(man - code)


@pytest.mark.parametrize("doc", ["README.md", "conf/iotgw.conf", "docs/iotgw.conf.5",
                                 "docs/security.md", "docs/devices.md", "docs/architecture.md",
                                 "docs/iotgw.8"])
def test_documents_name_only_real_events(doc):
    text = open(os.path.join(ROOT, doc)).read().replace("\\-", "-")
    named = set(re.findall(r"(?:IOTGW_EVENT=|event=|events? `?)\\?(?:fB)?([a-z]+_[a-z0-9_]+)",
                           text))
    named |= set(re.findall(r"\(event\n\.BR? ([a-z]+_[a-z0-9_]+)", text))
    unknown = named - code_events()
    assert not unknown, "%s names events iotgw never logs: %s" % (doc, sorted(unknown))
