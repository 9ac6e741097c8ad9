"""`iotgw -t -c FILE`: check a configuration and exit (0 ok, 1 with FILE:LINE: lines).

Every problem is reported, each on one "FILE:LINE: message" line with the line number of
the offending key (or section header)."""

import os
import pty
import re
import grp
import pathlib
import pwd
import shutil
import tempfile
import socket
import subprocess

import pytest

import gw


def run_check(path, timeout=gw.WAIT):
    return subprocess.run([gw.IOTGW_BIN, "-t", "-c", str(path)], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def diagnostics(stderr, path):
    """[(line, message)] of the error lines (warnings excluded) naming path. A problem of
    the whole file may be printed as "FILE:0: message" or "FILE: message" (line 0); the
    "FILE: N error(s)" summary is not a diagnostic."""
    out = []
    rx = re.compile(r"^%s:(\d+): (.*)$" % re.escape(str(path)))
    whole = re.compile(r"^%s: (.*)$" % re.escape(str(path)))
    for ln in stderr.splitlines():
        m = rx.match(ln)
        if m and not m.group(2).startswith("warning"):
            out.append((int(m.group(1)), m.group(2)))
            continue
        m = whole.match(ln)
        if m and not m.group(1).startswith("warning") \
                and not re.match(r"^\d+ errors?(\(s\))?$", m.group(1)):
            out.append((0, m.group(1)))
    return out


class Conf:
    """Builds a config line by line, remembering the line number of tagged lines."""

    def __init__(self):
        self.lines = []
        self.tags = {}

    def add(self, text, tag=None):
        self.lines.append(text)
        if tag:
            self.tags[tag] = len(self.lines)
        return self

    def insert_after(self, tag, text, newtag):
        n = self.tags[tag]
        self.lines.insert(n, text)
        self.tags = {t: (k + 1 if k > n else k) for t, k in self.tags.items()}
        self.tags[newtag] = n + 1
        return self

    def text(self):
        return "\n".join(self.lines) + "\n"


def base_conf(pki, port, tags=()):
    """A valid configuration; lines listed in tags can be replaced by the caller."""
    c = Conf()
    c.add("# iotgw -t test configuration")
    c.add("[gateway]", "gateway")
    c.add("name = gw-check", "name")
    c.add("max_packet_size = 16K", "max_packet_size")
    c.add("connect_timeout = 10s", "connect_timeout")
    c.add("")
    c.add("; a mutual TLS listener")
    c.add("[listener devices]", "listener")
    c.add("bind = 127.0.0.1:%d" % port, "bind")
    c.add("tls = mutual", "tls")
    c.add("cert = %s" % pki.pem("gateway"), "cert")
    c.add("key = %s" % pki.key("gateway"), "key")
    c.add("ca = %s" % pki.pem("devices-ca"), "ca")
    c.add("handshake_timeout = 10s", "handshake_timeout")
    c.add("")
    c.add("[upstream]", "upstream")
    c.add("host = 127.0.0.1", "host")
    c.add("port = 8883", "port")
    c.add("ca = %s" % pki.pem("upstream-ca"), "up_ca")
    c.add("cert = %s" % pki.pem("gateway-upstream"), "up_cert")
    c.add("key = %s" % pki.key("gateway-upstream"), "up_key")
    c.add("reconnect_min = 200ms", "reconnect_min")
    c.add("reconnect_max = 1s", "reconnect_max")
    c.add("topic = sensors/{device}/temperature", "topic")
    c.add("")
    c.add("[decode adc]", "decode")
    c.add("topic = adc/#", "decode_topic")
    c.add("format = adc", "format")
    c.add("scale = 0.1")
    c.add("offset = -50")
    return c


def replace(c, tag, text):
    c.lines[c.tags[tag] - 1] = text
    return c


def test_valid_config_exits_0(pki, tmp_path):
    # The listener port is in use: -t checks, it does not bind (it runs beside the daemon).
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        c = base_conf(pki, busy.getsockname()[1])
        path = tmp_path / "ok.conf"
        path.write_text(c.text())
        r = run_check(path)
    assert r.returncode == 0, "exit %d:\n%s%s" % (r.returncode, r.stdout, r.stderr)
    assert diagnostics(r.stderr, path) == [], r.stderr


def test_valid_config_with_every_listener_kind(pki, tmp_path):
    g = gw.Gateway(tmp_path / "g", pki, listeners=[
        gw.listener("plain", "off"), gw.listener("tls", "server"),
        gw.listener("mtls", "mutual", identity="san-dns", tls_min_version="1.3",
                    max_connections=100)],
        decode=[("watson", {"topic": "iot-2/evt/+/fmt/json", "format": "watson"}),
                ("rest", {"topic": "#", "format": "auto", "unit": "F", "min": -60, "max": 60})],
        spool={"max_messages": 1000, "max_bytes": "1M"},
        gateway={"max_keepalive": "1h", "log_level": "notice"})
    r = run_check(g.conf)
    assert r.returncode == 0, "exit %d:\n%s\n%s%s" % (r.returncode, g.conf.read_text(),
                                                      r.stdout, r.stderr)
    assert diagnostics(r.stderr, g.conf) == [], r.stderr


def test_ca_on_server_listener_is_a_warning(pki, tmp_path):
    c = replace(base_conf(pki, gw.free_port()), "tls", "tls = server")
    path = tmp_path / "warn.conf"
    path.write_text(c.text())
    r = run_check(path)
    assert r.returncode == 0, "exit %d:\n%s%s" % (r.returncode, r.stdout, r.stderr)
    assert "%s:%d: warning" % (path, c.tags["ca"]) in r.stderr, r.stderr


def test_every_problem_reported_with_its_line(pki, tmp_path):
    c = base_conf(pki, gw.free_port())
    c.insert_after("name", "colour = blue", "unknown")
    replace(c, "cert", "cert = %s" % (tmp_path / "missing" / "gateway.pem"))
    replace(c, "handshake_timeout", "handshake_timeout = soon")
    path = tmp_path / "bad.conf"
    path.write_text(c.text())
    r = run_check(path)
    assert r.returncode == 78, "exit %d:\n%s%s" % (r.returncode, r.stdout, r.stderr)
    got = sorted(n for n, _ in diagnostics(r.stderr, path))
    want = sorted([c.tags["unknown"], c.tags["cert"], c.tags["handshake_timeout"]])
    assert got == want, "error lines %s, expected %s (one per problem):\n%s\n%s" % (
        got, want, c.text(), r.stderr)


# (tag of the line to replace or None to append, new text, the line expected in the diagnostic)
SINGLE_PROBLEMS = {
    "unknown_key": ("connect_timeout", "connect_timeout_ms = 5", "connect_timeout"),
    "bad_size": ("max_packet_size", "max_packet_size = 12", "max_packet_size"),
    "size_too_big": ("max_packet_size", "max_packet_size = 2M", "max_packet_size"),
    "bad_duration": ("connect_timeout", "connect_timeout = 10x", "connect_timeout"),
    "duration_out_of_range": ("connect_timeout", "connect_timeout = 0", "connect_timeout"),
    "bad_tls_mode": ("tls", "tls = maybe", "tls"),
    "bad_identity": ("handshake_timeout", "identity = fingerprint", "handshake_timeout"),
    "bad_bind": ("bind", "bind = localhost:8883", "bind"),
    "bad_port": ("bind", "bind = 127.0.0.1:70000", "bind"),
    "bad_gateway_name": ("name", "name = gw/1", "name"),
    "bad_log_level": ("max_packet_size", "log_level = loud", "max_packet_size"),
    "missing_key_file": ("key", "key = /nonexistent/iotgw-test/gateway.key", "key"),
    "missing_ca_file": ("ca", "ca = /nonexistent/iotgw-test/ca.pem", "ca"),
    "missing_upstream_cert": ("up_cert", "cert = /nonexistent/iotgw-test/up.pem", "up_cert"),
    "reconnect_max_below_min": ("reconnect_max", "reconnect_max = 150ms", "reconnect_max"),
    "bad_topic_placeholder": ("topic", "topic = sensors/{serial}/temperature", "topic"),
    "wildcard_in_topic": ("topic", "topic = sensors/#", "topic"),
    "bad_decode_format": ("format", "format = xml", "format"),
    "duplicate_key": ("connect_timeout", "name = gw-again", "connect_timeout"),
    "unknown_section": ("gateway", "[gatewy]", "gateway"),
}


@pytest.mark.parametrize("case", sorted(SINGLE_PROBLEMS))
def test_single_problem(pki, tmp_path, case):
    tag, text, line_tag = SINGLE_PROBLEMS[case]
    c = replace(base_conf(pki, gw.free_port()), tag, text)
    path = tmp_path / ("%s.conf" % case)
    path.write_text(c.text())
    r = run_check(path)
    assert r.returncode == 78, "%s: exit %d:\n%s%s" % (case, r.returncode, r.stdout, r.stderr)
    diags = diagnostics(r.stderr, path)
    assert diags, "%s: no FILE:LINE: diagnostic on stderr:\n%s" % (case, r.stderr)
    want = c.tags[line_tag]
    if case == "unknown_section":
        # The keys of an unknown section may be reported too; the header line must be.
        assert want in [n for n, _ in diags], r.stderr
    else:
        assert [n for n, _ in diags] == [want], "%s: diagnostics %s, expected line %d:\n%s" % (
            case, diags, want, r.stderr)


def test_certificate_not_matching_key(pki, tmp_path):
    c = replace(base_conf(pki, gw.free_port()), "key", "key = %s" % pki.key("dev0001"))
    path = tmp_path / "mismatch.conf"
    path.write_text(c.text())
    r = run_check(path)
    assert r.returncode == 78, "exit %d:\n%s%s" % (r.returncode, r.stdout, r.stderr)
    lines = [n for n, _ in diagnostics(r.stderr, path)]
    assert lines and set(lines) <= {c.tags["cert"], c.tags["key"]}, r.stderr


def test_garbage_certificate_file(pki, tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    c = replace(base_conf(pki, gw.free_port()), "cert", "cert = %s" % junk)
    path = tmp_path / "junk.conf"
    path.write_text(c.text())
    r = run_check(path)
    assert r.returncode == 78, r.stderr
    assert [n for n, _ in diagnostics(r.stderr, path)] == [c.tags["cert"]], r.stderr


def test_missing_listener_and_upstream_host(pki, tmp_path):
    path = tmp_path / "empty.conf"
    path.write_text("[gateway]\nname = lonely\n")
    r = run_check(path)
    assert r.returncode == 78, r.stderr
    assert diagnostics(r.stderr, path), r.stderr


def test_unreadable_file(tmp_path):
    path = tmp_path / "does-not-exist.conf"
    r = run_check(path)
    assert r.returncode == 78, r.stderr
    assert [n for n, _ in diagnostics(r.stderr, path)] == [0], r.stderr


def test_daemon_refuses_to_start_with_bad_config(pki, tmp_path):
    c = replace(base_conf(pki, gw.free_port()), "connect_timeout", "connect_timeout = 10x")
    path = tmp_path / "bad.conf"
    path.write_text(c.text())
    r = subprocess.run([gw.IOTGW_BIN, "-c", str(path), "--log-stderr"], capture_output=True,
                       text=True, timeout=gw.WAIT, stdin=subprocess.DEVNULL)
    assert r.returncode == 78, "exit %d:\n%s" % (r.returncode, r.stderr)
    assert "%s:%d:" % (path, c.tags["connect_timeout"]) in r.stderr, r.stderr


# ---- mistakes that break every device, caught by -t with FILE:LINE and a hint ----

def check_one(pki, tmp_path, tag, text, args=(), stdin=subprocess.DEVNULL):
    c = replace(base_conf(pki, gw.free_port()), tag, text)
    path = tmp_path / ("%s.conf" % tag)
    path.write_text(c.text())
    r = subprocess.run([gw.IOTGW_BIN, "-t", "-c", str(path), *args], capture_output=True,
                       text=True, timeout=gw.WAIT, stdin=stdin)
    return r, diagnostics(r.stderr, path), c.tags[tag]


def test_client_certificate_as_listener_certificate(pki, tmp_path):
    # dev0001's certificate says clientAuth only: devices would refuse it as a server's.
    r, diags = check_one(pki, tmp_path, "cert", "cert = %s" % pki.pem("dev0001"))[:2]
    c = base_conf(pki, 1)
    assert r.returncode == 78, r.stderr
    line = c.tags["cert"]
    assert any(n == line and "not for TLS servers" in m and "serverAuth" in m and "iotgw-pki"
               in m for n, m in diags), r.stderr


def test_server_certificate_as_upstream_client_certificate(pki, tmp_path):
    r, diags, line = check_one(pki, tmp_path, "up_cert", "cert = %s" % pki.pem("broker"))
    assert r.returncode == 78, r.stderr
    assert any(n == line and "not for TLS clients" in m and "clientAuth" in m
               for n, m in diags), r.stderr


def test_leaf_certificate_as_ca(pki, tmp_path):
    r, diags, line = check_one(pki, tmp_path, "ca", "ca = %s" % pki.pem("dev0002"))
    assert r.returncode == 78, r.stderr
    assert any(n == line and "not a CA certificate" in m and "dev0002" in m
               for n, m in diags), r.stderr


def test_encrypted_key_is_refused_without_a_prompt(pki, tmp_path):
    enc = tmp_path / "enc.key"
    subprocess.run(["openssl", "pkey", "-in", pki.key("gateway"), "-aes256", "-passout",
                    "pass:secret", "-out", str(enc)], check=True, timeout=gw.WAIT)
    os.chmod(enc, 0o600)
    # On a terminal, OpenSSL's default would ask "Enter PEM pass phrase" and wait.
    master, slave = pty.openpty()
    try:
        r, diags, line = check_one(pki, tmp_path, "key", "key = %s" % enc, stdin=slave)
    finally:
        os.close(master)
        os.close(slave)
    assert r.returncode == 78, r.stderr
    assert any(n == line and "is encrypted" in m for n, m in diags), r.stderr


@pytest.fixture
def open_dir():
    """A directory other users can traverse (pytest's own tmp is 0700)."""
    d = tempfile.mkdtemp(prefix="iotgw-t-u-", dir="/tmp")
    os.chmod(d, 0o755)
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="-u needs root")
def test_check_as_the_service_user(pki, open_dir):
    # A key only root can read, a spool only root can write: fine for root's -t, fatal for
    # the service; -t -u names both.
    tmp_path = open_dir
    nogroup = grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_gid
    files = {}
    for tag, src, mode in (("cert", pki.pem("gateway"), 0o644),
                           ("ca", pki.pem("devices-ca"), 0o644),
                           ("up_ca", pki.pem("upstream-ca"), 0o644),
                           ("up_cert", pki.pem("gateway-upstream"), 0o644),
                           ("up_key", pki.key("gateway-upstream"), 0o640),
                           ("key", pki.key("gateway"), 0o600)):
        files[tag] = tmp_path / os.path.basename(src)
        shutil.copy(src, files[tag])
        os.chown(files[tag], 0, nogroup)
        os.chmod(files[tag], mode)
    key = files["key"]  # root only, for now
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    c = base_conf(pki, gw.free_port())
    for tag, f in files.items():
        replace(c, tag, "%s = %s" % (c.lines[c.tags[tag] - 1].split(" =")[0], f))
    c.add("[spool]")
    c.add("dir = %s" % spool)
    path = tmp_path / "svc.conf"
    path.write_text(c.text())
    os.chmod(path, 0o644)
    as_root = subprocess.run([gw.IOTGW_BIN, "-t", "-c", str(path)], capture_output=True,
                             text=True, timeout=gw.WAIT, stdin=subprocess.DEVNULL)
    assert as_root.returncode == 0, as_root.stderr
    r = subprocess.run([gw.IOTGW_BIN, "-t", "-u", "nobody", "-c", str(path)],
                       capture_output=True, text=True, timeout=gw.WAIT,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 78, r.stderr
    diags = diagnostics(r.stderr, path)
    assert any(n == c.tags["key"] and "Permission denied" in m for n, m in diags), r.stderr
    # The spool is reported only once the files load: the key readable by the group now.
    os.chmod(key, 0o640)
    r = subprocess.run([gw.IOTGW_BIN, "-t", "-u", "nobody", "-c", str(path)],
                       capture_output=True, text=True, timeout=gw.WAIT,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 78, r.stderr
    assert "is not a directory this user" in r.stderr and str(spool) in r.stderr, r.stderr
    # ... and standing in for the service, a spool outside /var/lib/iotgw needs the unit
    # to allow it.
    assert "ReadWritePaths=%s" % spool in r.stderr, r.stderr


def test_expiry_is_warned_ahead_of_time(tmp_path, pki):
    # A server certificate with 10 days left and a CRL with 2: `-t` (and every start and
    # reload, through the same check) warns at their lines, long before devices fail.
    p = gw.Pki(tmp_path / "soon")
    p.run("ca", "soon-ca")
    p.run("--days", "10", "server", "soon-gw", "--ca", "soon-ca")
    p.run("--days", "2", "crl", "soon-ca")
    c = base_conf(pki, gw.free_port())
    replace(c, "cert", "cert = %s" % p.pem("soon-gw"))
    replace(c, "key", "key = %s" % p.key("soon-gw"))
    replace(c, "ca", "ca = %s" % p.pem("soon-ca"))
    c.insert_after("ca", "crl = %s" % p.pem("soon-ca.crl"), "crl")
    path = tmp_path / "soon.conf"
    path.write_text(c.text())
    r = run_check(path)
    assert r.returncode == 0, r.stderr
    warn = "%s:%d: warning: listener 'devices': " % (path, c.tags["cert"])
    assert any(l.startswith(warn) and "certificate CN=soon-gw" in l
               and re.search(r"\(in (9|10) days\)", l) for l in r.stderr.splitlines()), r.stderr
    warn = "%s:%d: warning: listener 'devices': CRL of CN=soon-ca" % (path, c.tags["crl"])
    assert any(l.startswith(warn) and re.search(r"\(in (1 day|2 days)\)", l)
               for l in r.stderr.splitlines()), r.stderr
    # Shorter than the time left: quiet.
    c.insert_after("name", "expiry_warning = 1d", "expiry")
    path.write_text(c.text())
    r = run_check(path)
    assert r.returncode == 0 and "soon-gw" not in r.stderr and "CRL of" not in r.stderr, \
        r.stderr


def test_per_device_spool_limit_not_below_the_spool_is_a_warning(pki, tmp_path):
    c = base_conf(pki, gw.free_port())
    c.add("[spool]")
    c.add("max_messages = 1000")
    c.add("max_messages_per_device = 1000", "per_device")
    c.add("max_bytes_per_device = 1M", "per_device_bytes")
    path = tmp_path / "share.conf"
    path.write_text(c.text())
    r = run_check(path)
    assert r.returncode == 0, "exit %d:\n%s%s" % (r.returncode, r.stdout, r.stderr)
    assert ("%s:%d: warning: max_messages_per_device (1000) is not below max_messages (1000)"
            % (path, c.tags["per_device"])) in r.stderr, r.stderr
    assert "max_bytes_per_device" not in r.stderr, r.stderr
