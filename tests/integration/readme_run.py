"""Runs inside a private mount and network namespace made by test_05_readme_service.py
(unshare --mount --net): /etc, /usr/local and /var/lib are overlays whose changes vanish with
the namespace, so README's service steps can run as written, as root, without touching the
machine. Then it starts the service the way the installed unit says (ExecStartPre=,
ExecStart= as User=, StateDirectory=, NOTIFY_SOCKET) and tries ExecReload= with a broken
and a good file. Prints one JSON object with what happened; exits non-zero only when the
harness itself failed.

Not a test module (pytest collects only test_*.py); every step is bounded in time."""

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

STEP = 120.0

# What README's lines need from sudo: root (we are root), or another user with -u.
SHIMS = r'''
sudo() {
	if [ "$1" = "-u" ]; then local u=$2; shift 2; runuser -u "$u" -- "$@"; else "$@"; fi
}
'''

# Lines that need systemd as PID 1 or a person at a terminal.
SKIP = re.compile(r"^\s*(sudo\s+)?(sudoedit|systemctl|journalctl)\b")


def overlay(path, scratch):
    up, work = os.path.join(scratch, "up" + path), os.path.join(scratch, "work" + path)
    os.makedirs(up)
    os.makedirs(work)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    "lowerdir=%s,upperdir=%s,workdir=%s" % (path, up, work), path],
                   check=True, timeout=10)


def readme_block(root):
    text = open(os.path.join(root, "README.md")).read()
    section = text.split("## Running it as a service", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def unit_values(path, key):
    return [line.split("=", 1)[1].strip() for line in open(path)
            if line.startswith(key + "=")]


def main():
    root, scratch = sys.argv[1], sys.argv[2]
    out = {}
    for p in ("/etc", "/usr/local", "/var/lib"):
        overlay(p, scratch)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
    home = os.path.join(scratch, "home")
    os.makedirs(home)
    env = dict(os.environ, HOME=home, PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
               "/sbin:/bin")
    env.pop("NOTIFY_SOCKET", None)
    env.pop("JOURNAL_STREAM", None)

    # 1. README's lines, in order, stopping at the first failure: those before the service
    # starts (`systemctl enable --now`) now, the rest once it runs (step 2).
    lines = [l for l in readme_block(root).splitlines() if l.strip() and not l.startswith("#")]
    starts = next(i for i, l in enumerate(lines) if "enable --now" in l)
    ran, skipped = [], []

    def script_of(part):
        script = "set -e\n" + SHIMS + "cd %s\n" % shlex.quote(root)
        for l in part:
            if SKIP.match(l):
                skipped.append(l)
                continue
            ran.append(l)
            script += "echo %s >&2\n%s\n" % (shlex.quote("+ " + l), l)
        return script

    r = subprocess.run(["bash", "-c", script_of(lines[:starts])], env=env, capture_output=True,
                       text=True, timeout=STEP, stdin=subprocess.DEVNULL)
    out.update(readme_rc=r.returncode, readme_stderr=r.stderr[-6000:], ran=ran,
               skipped=skipped)
    if r.returncode != 0:
        print(json.dumps(out))
        return

    # 2. The installed unit, as systemd would run it.
    unit = "/usr/local/lib/systemd/system/iotgw.service"
    out["unit_exists"] = os.path.exists(unit)
    if not out["unit_exists"]:
        print(json.dumps(out))
        return
    user = unit_values(unit, "User")[0]
    state = "/var/lib/" + unit_values(unit, "StateDirectory")[0]
    os.makedirs(state, mode=0o700, exist_ok=True)
    subprocess.run(["chown", "%s:%s" % (user, user), state], check=True, timeout=10)

    def as_user(cmd):
        # setpriv execs (runuser forks): the process we start is the unit's main process.
        return ["setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups",
                "--"] + shlex.split(cmd)

    pre = unit_values(unit, "ExecStartPre")
    r = subprocess.run(as_user(pre[0]), env=env, capture_output=True, text=True, timeout=30)
    out.update(pre_rc=r.returncode, pre_out=(r.stdout + r.stderr)[-3000:])

    # Where the service user can reach it (the scratch directory may be under a 0700 one),
    # as systemd's /run/systemd/notify is.
    sockdir = tempfile.mkdtemp(prefix="iotgw-notify-", dir="/tmp")
    os.chmod(sockdir, 0o755)
    sock_path = os.path.join(sockdir, "notify")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(sock_path)
    os.chmod(sock_path, 0o666)
    ns.settimeout(1.0)
    start = unit_values(unit, "ExecStart")[0]
    log = open(os.path.join(scratch, "iotgw.log"), "w+")
    p = subprocess.Popen(as_user(start), env=dict(env, NOTIFY_SOCKET=sock_path),
                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    notes = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any("READY=1" in n for n in notes):
        if p.poll() is not None:
            break
        try:
            notes.append(ns.recv(4096).decode(errors="replace"))
        except socket.timeout:
            pass
    out["notify"] = notes
    out["ready"] = any("READY=1" in n for n in notes)
    mainpid = p.pid
    if out["ready"]:
        r = subprocess.run(["bash", "-c", script_of(lines[starts:])], env=env,
                           capture_output=True, text=True, timeout=STEP,
                           stdin=subprocess.DEVNULL)
        out.update(readme_running_rc=r.returncode, readme_running_out=(r.stdout + r.stderr)[-4000:])

        # 3. ExecReload= with a broken file fails before anything is signalled; with a
        # good one it checks, then SIGHUPs the main process.
        reload = unit_values(unit, "ExecReload")
        conf = "/etc/iotgw.conf"
        good = open(conf).read()
        with open(conf, "a") as f:
            f.write("\n[listener broken]\nno_such_key = 1\n")
        r = subprocess.run(as_user(reload[0]), env=env, capture_output=True, text=True,
                           timeout=30)
        out["reload_broken_rc"] = r.returncode
        with open(conf, "w") as f:
            f.write(good)
        rcs = []
        for cmd in reload:
            cmd = cmd.replace("$MAINPID", str(mainpid))
            rcs.append(subprocess.run(as_user(cmd) if "iotgw" in cmd else shlex.split(cmd),
                                      env=env, capture_output=True, text=True,
                                      timeout=30).returncode)
            if rcs[-1] != 0:
                break
        out["reload_good_rcs"] = rcs
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("RELOADING=1" in n for n in notes):
            try:
                notes.append(ns.recv(4096).decode(errors="replace"))
            except socket.timeout:
                pass
        out["reloaded"] = any("RELOADING=1" in n for n in notes)
    if p.poll() is None:
        os.kill(mainpid, signal.SIGTERM)
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(10)
    out["exit"] = p.returncode
    ns.close()
    shutil.rmtree(sockdir, ignore_errors=True)
    log.seek(0)
    out["log"] = log.read()[-6000:]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
