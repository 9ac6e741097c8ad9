"""Logging under systemd, against a real systemd-journald (in a private mount namespace, see
journal_run.py): native entries carry IOTGW_* fields an operator can filter on, including
IOTGW_PEER_ADDRESS, and CODE_FILE/CODE_LINE of the code that logged (not of log.c); a refused
certificate names the device it claims to be; `iotgw -t` errors in ExecStartPre= and
--log-stderr lines keep their priority ("<N>" prefixes), so `journalctl -p err` shows why the
service did not start."""

import json
import os
import shutil
import subprocess
import sys

import pytest

import gw

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("journalctl")
    or not os.access("/lib/systemd/systemd-journald", os.X_OK),
    reason="needs root, unshare, journalctl and /lib/systemd/systemd-journald")


@pytest.fixture(scope="module")
def journal(tmp_path_factory, pki, upstream):
    d = tmp_path_factory.mktemp("journald")
    g = gw.Gateway(d / "gw", pki, upstream=upstream, log_level="info",
                   listeners=[gw.listener("plain", "off"), gw.listener("mtls", "mutual")])
    bad = d / "bad.conf"
    bad.write_text("[listener x]\nbind = 127.0.0.1:1\ntls = off\nno_such_key = 1\n")
    spec = {"bin": gw.IOTGW_BIN, "conf": str(g.conf), "bad_conf": str(bad),
            "plain_port": g.port("plain"), "mtls_port": g.port("mtls"), "device": "dev0620",
            "ca": pki.pem("devices-ca"), "bad_cert": pki.pem("expired"),
            "bad_key": pki.key("expired")}
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable,
                        os.path.join(os.path.dirname(__file__), "journal_run.py"),
                        json.dumps(spec)], capture_output=True, text=True, timeout=120)
    if r.returncode != 0 and "Operation not permitted" in r.stderr:
        pytest.skip("cannot make a mount namespace here: %s" % r.stderr.strip()[-200:])
    assert r.returncode == 0, r.stderr[-3000:]
    entries = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    return entries, bad


def ours(entries, **fields):
    return [e for e in entries if all(e.get(k) == v for k, v in fields.items())]


def test_native_entries_carry_fields_and_the_callers_location(journal):
    entries, _ = journal
    conn = ours(entries, IOTGW_EVENT="device_connected", IOTGW_DEVICE="dev0620")
    assert conn, "no device_connected entry for dev0620"
    e = conn[0]
    assert e["IOTGW_PEER"].startswith("127.0.0.1:"), e
    assert e["IOTGW_PEER_ADDRESS"] == "127.0.0.1", e
    assert e["IOTGW_LISTENER"] == "plain", e
    assert e["PRIORITY"] == "6", e
    assert e["CODE_FILE"].endswith("session.c"), e
    assert int(e["CODE_LINE"]) > 0 and e.get("CODE_FUNC"), e
    assert not ours(entries, CODE_FILE="src/log.c"), "entries located in log.c"
    # MESSAGE stands alone in `journalctl -u iotgw` (no fields needed to know who).
    gone = ours(entries, IOTGW_EVENT="device_disconnected", IOTGW_DEVICE="dev0620")
    assert gone and "dev0620" in gone[0]["MESSAGE"], gone


def test_refused_certificate_names_the_device(journal):
    entries, _ = journal
    refused = ours(entries, IOTGW_EVENT="tls_handshake_failed")
    assert refused, "no tls_handshake_failed entry"
    e = refused[0]
    assert e.get("IOTGW_DEVICE") == "dev0666", e  # the expired certificate's CN
    assert e["PRIORITY"] == "4", e
    assert "expired" in e["MESSAGE"] and "subject CN=dev0666" in e["MESSAGE"], e
    assert e["IOTGW_PEER_ADDRESS"] == "127.0.0.1", e


def test_config_errors_and_log_stderr_keep_their_priority(journal):
    entries, bad = journal
    errs = [e for e in entries if e.get("SYSLOG_IDENTIFIER") == "iotgw"
            and str(bad) in e.get("MESSAGE", "")]
    assert errs, "no entry for iotgw -t on the broken file"
    # Errors at err (3), warnings (the plaintext listener) at warning (4).
    want = {e["MESSAGE"]: "4" if ": warning: " in e["MESSAGE"] else "3" for e in errs}
    assert {e["MESSAGE"]: e["PRIORITY"] for e in errs} == want
    assert "4" in want.values() and "3" in want.values(), want
    assert any("no_such_key" in e["MESSAGE"] for e in errs), errs
    plain = [e for e in entries if e.get("SYSLOG_IDENTIFIER") == "iotgw"
             and "event=plaintext_listener" in e.get("MESSAGE", "")
             and "IOTGW_EVENT" not in e]
    assert plain, "no --log-stderr line"
    assert plain[-1]["PRIORITY"] == "4", plain[-1]
    assert plain[-1]["MESSAGE"].startswith("iotgw["), plain[-1]["MESSAGE"]
