"""README's "Running it as a service", followed literally: every line of its block runs in
order as root in a scratch mount and network namespace (readme_run.py; /etc, /usr/local and
/var/lib are throw-away overlays), then the service starts as the installed unit says:
ExecStartPre= (iotgw -t) as the service user, ExecStart= as User= with NOTIFY_SOCKET until
READY=1, ExecReload= refusing a broken file and reloading a good one, SIGTERM. So README,
`make install`, the unit and conf/iotgw.conf cannot drift apart again."""

import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("runuser"),
    reason="needs root, unshare and runuser")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("readme")
    r = subprocess.run(["unshare", "--mount", "--net", "--propagation", "private",
                        sys.executable, os.path.join(os.path.dirname(__file__), "readme_run.py"),
                        ROOT, str(scratch)], capture_output=True, text=True, timeout=300)
    if r.returncode != 0 and "Operation not permitted" in r.stderr:
        pytest.skip("cannot make namespaces here: %s" % r.stderr.strip()[-200:])
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_readme_steps_run_as_written(run):
    assert run["readme_rc"] == 0, "README step failed:\n" + run["readme_stderr"]
    assert any("make install" in l for l in run["ran"]), run["ran"]
    assert any("sudo -u iotgw iotgw -t" in l for l in run["ran"]), run["ran"]
    # Only what needs systemd as PID 1 or a person was left out.
    assert all(any(w in l for w in ("sudoedit", "systemctl", "journalctl"))
               for l in run["skipped"]), run["skipped"]


def test_service_starts_as_the_unit_says(run):
    assert run.get("unit_exists"), "make install did not install the unit under PREFIX"
    assert run["pre_rc"] == 0, "ExecStartPre failed as the service user:\n" + run["pre_out"]
    assert run["ready"], "no READY=1:\n%s\n%s" % (run["notify"], run["log"])
    assert run["exit"] == 0, run["log"]
    # README's lines for a running service (iotgw --spool-stats) work too.
    assert run["readme_running_rc"] == 0, run["readme_running_out"]
    assert "daemon: running" in run["readme_running_out"], run["readme_running_out"]


def test_reload_checks_the_file_first(run):
    assert run["reload_broken_rc"] == 78, "systemctl reload would not fail on a broken file"
    assert run["reload_good_rcs"] == [0, 0], run["reload_good_rcs"]
    assert run["reloaded"], run["notify"]
