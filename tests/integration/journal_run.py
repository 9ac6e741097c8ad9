"""Runs inside a private mount namespace made by test_62_journald.py (unshare --mount): a
real systemd-journald on tmpfs-backed /run/systemd, /run/log and /var/log/journal, and the
gateway connected to it the way systemd connects a service: stderr is a stream to
/run/systemd/journal/stdout opened with journald's stream header, and JOURNAL_STREAM names
it. Then it drives the scenario given as JSON on argv[1] and prints `journalctl -o json`.

Not a test module (pytest collects only test_*.py); every step is bounded in time."""

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time

STEP = 10.0


def sh(*args):
    subprocess.run(args, check=True, timeout=STEP)


def wait_for(pred, what):
    deadline = time.monotonic() + STEP
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit("journal_run: no %s within %.0fs" % (what, STEP))
        time.sleep(0.05)


def journal_stream(identifier):
    """A stderr for a child, as systemd makes one: (socket, JOURNAL_STREAM value)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect("/run/systemd/journal/stdout")
    # identifier, unit id, priority, level_prefix, forward to syslog, kmsg, console
    s.sendall(("%s\n\n6\n1\n0\n0\n0\n" % identifier).encode())
    st = os.fstat(s.fileno())
    return s, "%d:%d" % (st.st_dev, st.st_ino)


def run_gateway(binary, conf, args, env_extra):
    s, stream = journal_stream("iotgw")
    env = dict(os.environ, JOURNAL_STREAM=stream, **env_extra)
    env.pop("NOTIFY_SOCKET", None)
    p = subprocess.Popen([binary, "-c", conf, *args], stdin=subprocess.DEVNULL,
                         stdout=s.fileno(), stderr=s.fileno(), env=env)
    s.close()
    return p


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def mqtt_connect(client_id):
    cid = client_id.encode()
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(cid).to_bytes(2, "big") + cid
    return bytes([0x10, len(body)]) + body


def main():
    spec = json.loads(sys.argv[1])
    sh("mount", "-t", "tmpfs", "tmpfs", "/run/systemd")
    os.makedirs("/run/log", exist_ok=True)
    sh("mount", "-t", "tmpfs", "tmpfs", "/run/log")
    os.makedirs("/var/log/journal", exist_ok=True)
    sh("mount", "-t", "tmpfs", "tmpfs", "/var/log/journal")
    os.makedirs("/run/systemd/journal", exist_ok=True)
    jd = subprocess.Popen(["/lib/systemd/systemd-journald"], stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: os.path.exists("/run/systemd/journal/stdout")
                 and os.path.exists("/run/systemd/journal/socket"), "journald sockets")

        # 1. ExecStartPre=iotgw -t on a broken file: errors at PRIORITY 3.
        p = run_gateway(spec["bin"], spec["bad_conf"], ["-t"], {})
        p.wait(STEP)

        # 2. The daemon, native entries with fields.
        p = run_gateway(spec["bin"], spec["conf"], [], {})
        wait_for(lambda: port_open(spec["plain_port"]), "plaintext listener")
        c = socket.create_connection(("127.0.0.1", spec["plain_port"]), timeout=STEP)
        c.sendall(mqtt_connect(spec["device"]))
        c.recv(4)
        c.sendall(b"\xe0\x00")  # DISCONNECT
        c.close()
        # A refused certificate on the mutual listener.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(spec["ca"])
        ctx.load_cert_chain(spec["bad_cert"], spec["bad_key"])
        ctx.check_hostname = False
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        raw = socket.create_connection(("127.0.0.1", spec["mtls_port"]), timeout=STEP)
        try:
            ctx.wrap_socket(raw).close()
        except (ssl.SSLError, OSError):
            pass
        raw.close()
        # The client may see the alert before the gateway has logged it.
        wait_for(lambda: subprocess.run(
            ["journalctl", "-q", "--no-pager", "IOTGW_EVENT=tls_handshake_failed"],
            capture_output=True, text=True, timeout=STEP).stdout.strip(), "refusal entry")
        p.send_signal(signal.SIGTERM)
        p.wait(STEP)

        # 3. --log-stderr under systemd: plain lines with "<N>" prefixes.
        p = run_gateway(spec["bin"], spec["conf"], ["--log-stderr"], {})
        wait_for(lambda: port_open(spec["plain_port"]), "plaintext listener (--log-stderr)")
        p.send_signal(signal.SIGTERM)
        p.wait(STEP)

        wait_for(lambda: "plaintext_listener" in subprocess.run(
            ["journalctl", "-q", "--no-pager", "-o", "cat", "_PID=%d" % p.pid],
            capture_output=True, text=True, timeout=STEP).stdout, "--log-stderr lines")
        out = subprocess.run(["journalctl", "-o", "json", "--no-pager"], capture_output=True,
                             text=True, timeout=STEP, check=True)
        sys.stdout.write(out.stdout)
    finally:
        jd.terminate()
        jd.wait(STEP)


if __name__ == "__main__":
    main()
