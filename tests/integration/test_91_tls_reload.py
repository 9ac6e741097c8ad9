"""Device trust over time: certificate revocation lists (crl =) checked on every handshake for
the whole chain and re-read on SIGHUP, revocation of a device and of an intermediate CA made
with tools/iotgw-pki, server certificates swapped while devices stay connected, broken or
world-readable keys refused (at start, by `iotgw -t`, and on reload with the old context
kept), and session tickets that survive a reload unless the trust settings changed."""

import os
import re
import shutil
import ssl
import subprocess

import pytest

import gw
from gw import PUBACK_7, crl_bundle

# The revocation PKI (conftest's rpki): rev-root signs rev-a, rev-b, rev-e and the
# intermediate rev-int, which signs rev-c and rev-d.
ROOT, INTER = gw.REV_ROOT, gw.REV_INTER
# s_client as device NAME against g's first listener: handshake, CONNECT, QoS 1 PUBLISH.
device = gw.s_client_device


@pytest.fixture
def rg(make_gateway, upstream, rpki, tmp_path):
    """A gateway with one mutual listener trusting rev-root, with CRLs of rev-root and
    rev-int in crl.pem (nothing newly revoked)."""
    crl = tmp_path / "crl.pem"
    crl_bundle(rpki, crl)
    g = make_gateway(upstream=upstream, listeners=[
        gw.listener("mtls", "mutual", ca=rpki.pem(ROOT), crl=str(crl))])
    g.crl = crl
    return g


def revoked_logged(g, count=1):
    """Waits for `count` tls_handshake_failed lines naming the revocation. The device sees
    the alert before the gateway has logged why it sent it: waited for, not looked up."""
    def lines():
        got = [e for e in g.events("tls_handshake_failed") if "certificate revoked" in e["raw"]]
        return got if len(got) >= count else None
    try:
        return gw.wait_until(lines, what="%d tls_handshake_failed naming the revocation"
                             % count)
    except AssertionError as e:
        raise AssertionError("%s:\n%s" % (e, g.log_text()[-3000:]))


def test_revoked_device_refused_after_sighup(rg, rpki, upstream):
    g = rg
    assert device(g, "rev-a").has(PUBACK_7)
    # rev-b stays connected across the reload (a device whose certificate is still good).
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(rpki.pem("devices-ca"))
    ctx.load_cert_chain(rpki.pem("rev-b"), rpki.key("rev-b"))
    d = gw.Device(g.port(), "rev-b", tls=ctx)
    try:
        d.publish("rev-b/t", "19")
        upstream.wait_readings("rev-b", g.name)

        crl_bundle(rpki, g.crl, revoke=[("rev-a", ROOT)])
        g.reload()
        r = device(g, "rev-a")
        assert r.refused and "alert certificate revoked" in r.text, r
        revoked_logged(g)
        # TLS 1.3: the client finishes first; the gateway still refuses before MQTT.
        assert device(g, "rev-a", "tls1_3").refused

        # Not revoked: the connected device goes on, new connections work.
        d.publish("rev-b/t", "19.5")
        upstream.wait_readings("rev-b", g.name, count=2)
        assert d.unexpected_disconnects == []
        assert device(g, "rev-b").has(PUBACK_7)
        assert device(g, "rev-b", "tls1_3").has(PUBACK_7)
    finally:
        d.close()


def test_intermediate_revocation(rg, rpki):
    g = rg
    for name in ("rev-c", "rev-d"):
        assert device(g, name).has(PUBACK_7), name
    # A device under the intermediate: the intermediate's CRL is checked.
    crl_bundle(rpki, g.crl, revoke=[("rev-d", INTER)])
    g.reload()
    assert device(g, "rev-d").refused
    assert device(g, "rev-c").has(PUBACK_7)
    # The intermediate itself: the root's CRL revokes every device below it (CRL_CHECK_ALL).
    crl_bundle(rpki, g.crl, revoke=[(INTER, ROOT)])
    g.reload()
    r = device(g, "rev-c")
    assert r.refused and "alert certificate revoked" in r.text, r
    revoked_logged(g, count=2)
    assert device(g, "rev-e").has(PUBACK_7)  # root-signed, untouched


@pytest.mark.parametrize("proto", ["tls1_2", "tls1_3"])
def test_resumption_across_reload(rg, rpki, tmp_path, proto):
    g = rg
    sess = tmp_path / "sess.pem"
    first = device(g, "rev-e", proto, extra=("-sess_out", str(sess)))
    assert first.has(PUBACK_7) and not first.reused, first
    want = "Reused, %s" % ("TLSv1.2" if proto == "tls1_2" else "TLSv1.3")
    # A reload that changes nothing about trust: the stored sessions are kept, the ticket resumes.
    g.reload()
    again = device(g, "rev-e", proto, extra=("-sess_in", str(sess)))
    assert want in again.text and again.has(PUBACK_7), again
    # A new CRL (even one revoking nothing new): no resumption past the new checks, a full
    # handshake instead, which still succeeds.
    crl_bundle(rpki, g.crl)
    g.reload()
    full = device(g, "rev-e", proto, extra=("-sess_in", str(sess)))
    assert full.has(PUBACK_7) and not full.reused, full


def test_bad_crl_on_reload_keeps_old(rg, rpki):
    g = rg
    crl_bundle(rpki, g.crl, revoke=[("rev-a", ROOT)])
    g.reload()
    good = g.crl.read_bytes()
    line = conf_line(g.conf.read_text(), "crl = ")
    cases = [
        (b"this is not a CRL\n", "holds no CRL"),
        (good.replace(b"\n", b"\n", 1)[:120] + b"garbage\n-----END X509 CRL-----\n",
         "cannot load CRL file"),
        ((rpki.dir / (INTER + ".crl.pem")).read_bytes(), "has no CRL of CA CN=%s" % ROOT),
    ]
    for n, (text, msg) in enumerate(cases, 1):
        g.crl.write_bytes(text)
        g.sighup()
        g.wait_event("config_reload_failed", count=n)
        errs = [e for e in g.events("config_error") if msg in e["raw"]]
        assert errs and (":%d:" % line) in errs[0]["raw"], (msg, g.log_text()[-3000:])
        # The old context (with the CRL revoking rev-a) keeps serving.
        assert device(g, "rev-a").refused
        assert device(g, "rev-b").has(PUBACK_7)
    g.crl.write_bytes(good)
    g.reload()
    assert device(g, "rev-b").has(PUBACK_7)


def conf_line(text, prefix, after=None):
    """1-based number of the first line starting with prefix (after the line `after`)."""
    start = 0
    lines = text.splitlines()
    if after:
        start = next(i for i, ln in enumerate(lines) if ln.startswith(after))
    for i in range(start, len(lines)):
        if lines[i].startswith(prefix):
            return i + 1
    raise AssertionError("no line %r in:\n%s" % (prefix, text))


# ---- server certificates and keys ----

def copy_pair(pki, name, cert, key):
    shutil.copy(pki.pem(name), cert)
    shutil.copy(pki.key(name), key)
    os.chmod(key, 0o600)


def server_der(g, port):
    c = gw.RawConn(port, tls=g.pki.client_ctx())
    try:
        return c.sock.getpeercert(binary_form=True)
    finally:
        c.close()


def test_server_cert_swapped_while_device_connected(make_gateway, upstream, pki, tmp_path,
                                                    devices):
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    copy_pair(pki, "gateway", cert, key)
    g = make_gateway(upstream=upstream, listeners=[
        gw.listener("mtls", "mutual", cert=str(cert), key=str(key))])
    d = devices(g.port(), "dev0001", tls=pki.client_ctx(cert="dev0001"))
    d.publish("dev0001/t", "20")
    upstream.wait_readings("dev0001", g.name)
    assert server_der(g, g.port()) == pki.der("gateway")

    copy_pair(pki, "gateway-b", cert, key)
    g.sighup()
    g.wait_event("config_reloaded")
    assert server_der(g, g.port()) == pki.der("gateway-b"), "old certificate after SIGHUP"
    # The device connected under the old certificate keeps its session and publishes.
    d.publish("dev0001/t", "21")
    got = upstream.wait_readings("dev0001", g.name, count=2)
    assert got[-1].get("temperature_c") == 21
    assert d.unexpected_disconnects == []
    d2 = devices(g.port(), "dev0002", tls=pki.client_ctx(cert="dev0002"))
    d2.publish("dev0002/t", "22")
    upstream.wait_readings("dev0002", g.name)


def test_broken_cert_or_key_on_sighup_keeps_old(make_gateway, upstream, pki, tmp_path,
                                                devices):
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    copy_pair(pki, "gateway", cert, key)
    g = make_gateway(upstream=upstream, listeners=[
        gw.listener("mtls", "mutual", cert=str(cert), key=str(key))])
    d = devices(g.port(), "dev0001", tls=pki.client_ctx(cert="dev0001"))
    text = g.conf.read_text()
    cert_line, key_line = conf_line(text, "cert = "), conf_line(text, "key = ")
    broken = [
        # (what to do, message, line)
        (lambda: cert.write_text("-----BEGIN CERTIFICATE-----\nbroken\n"
                                 "-----END CERTIFICATE-----\n"),
         "cannot load certificate", cert_line),
        (lambda: (copy_pair(pki, "gateway", cert, key), key.write_text("not a key\n")),
         "cannot load private key", key_line),
        (lambda: (copy_pair(pki, "gateway", cert, key), shutil.copy(pki.key("gateway-b"), key)),
         "does not match certificate", key_line),
        (lambda: (copy_pair(pki, "gateway-b", cert, key), os.chmod(key, 0o644)),
         "is readable by other users (mode 0644); chmod 600 or 640", key_line),
    ]
    for n, (change, msg, line) in enumerate(broken, 1):
        change()
        g.sighup()
        g.wait_event("config_reload_failed", count=n)
        errs = [e for e in g.events("config_error") if msg in e["raw"]]
        assert errs and (":%d:" % line) in errs[0]["raw"], (msg, g.log_text()[-3000:])
        assert server_der(g, g.port()) == pki.der("gateway"), msg
        d.publish("dev0001/t", str(20 + n))
        upstream.wait_readings("dev0001", g.name, count=n)
    assert d.unexpected_disconnects == []
    os.chmod(key, 0o640)  # group-readable is fine
    g.sighup()
    g.wait_event("config_reloaded")
    assert server_der(g, g.port()) == pki.der("gateway-b")


def run_check(path):
    return subprocess.run([gw.IOTGW_BIN, "-t", "-c", str(path)], capture_output=True, text=True,
                          timeout=gw.WAIT)


@pytest.mark.parametrize("which", ["listener", "upstream"])
def test_world_readable_key_refuses_start(make_gateway, upstream, pki, tmp_path, which):
    key = tmp_path / "loose.key"
    if which == "listener":
        shutil.copy(pki.key("gateway"), key)
        g = make_gateway(upstream=upstream, start=False,
                         listeners=[gw.listener("tls", "server", key=str(key))])
        line = conf_line(g.conf.read_text(), "key = ")
    else:
        shutil.copy(pki.key("gateway-upstream"), key)
        g = make_gateway(upstream=upstream, start=False,
                         upstream_opts={"key": str(key)})
        line = conf_line(g.conf.read_text(), "key = ", after="[upstream]")
    os.chmod(key, 0o644)
    want = "key file %s is readable by other users (mode 0644); chmod 600 or 640" % key

    r = run_check(g.conf)
    assert r.returncode == 78, r
    assert "%s:%d: %s" % (g.conf, line, want) in r.stderr, r.stderr

    g.start(wait_ready=False)
    rc = g.wait_exit()
    assert rc != 0
    assert want in g.log_text() and (":%d:" % line) in g.log_text(), g.log_text()

    os.chmod(key, 0o640)
    assert run_check(g.conf).returncode == 0


def test_check_reports_crl_problems(make_gateway, upstream, pki, rpki, tmp_path):
    crl = tmp_path / "crl.pem"
    g = make_gateway(upstream=upstream, start=False, listeners=[
        gw.listener("mtls", "mutual", ca=rpki.pem(ROOT), crl=str(crl))])
    line = conf_line(g.conf.read_text(), "crl = ")
    cases = [
        (None, "cannot read CRL file %s: No such file or directory" % crl),
        (b"", "CRL file %s holds no CRL" % crl),
        (b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
         "cannot load CRL file %s" % crl),
    ]
    rpki.run("crl", INTER)
    cases.append(((rpki.dir / (INTER + ".crl.pem")).read_bytes(),
                  "CRL file %s has no CRL of CA CN=%s" % (crl, ROOT)))
    for content, msg in cases:
        if content is None:
            if crl.exists():
                crl.unlink()
        else:
            crl.write_bytes(content)
        r = run_check(g.conf)
        assert r.returncode == 78, (msg, r)
        assert "%s:%d: %s" % (g.conf, line, msg) in r.stderr, (msg, r.stderr)
    crl_bundle(rpki, crl)
    r = run_check(g.conf)
    assert r.returncode == 0, r

    # crl on a listener without client certificates: a parser error on its line
    g.listeners = [gw.listener("tls", "server", crl=str(crl))]
    g.write_config()
    r = run_check(g.conf)
    assert r.returncode == 78
    assert "%s:%d: listener 'tls': 'crl' requires tls = mutual" % (
        g.conf, conf_line(g.conf.read_text(), "crl = ")) in r.stderr, r.stderr


def test_upstream_crl_checked(make_gateway, upstream, pki, tmp_path):
    crl = tmp_path / "up.crl.pem"
    crl.write_text("nothing here\n")
    g = make_gateway(upstream=upstream, start=False, upstream_opts={"crl": str(crl)})
    line = conf_line(g.conf.read_text(), "crl = ", after="[upstream]")
    r = run_check(g.conf)
    assert r.returncode == 78
    assert "%s:%d: CRL file %s holds no CRL" % (g.conf, line, crl) in r.stderr, r.stderr
    pki.run("crl", "upstream-ca")
    shutil.copy(pki.dir / "upstream-ca.crl.pem", crl)
    r = run_check(g.conf)
    assert r.returncode == 0, r


def test_legacy_profile_needs_rsa_certificate(make_gateway, upstream, pki):
    g = make_gateway(upstream=upstream, start=False, listeners=[
        gw.listener("old", "server", tls_profile="legacy")])
    r = run_check(g.conf)
    assert r.returncode == 0, r
    line = conf_line(g.conf.read_text(), "tls_profile = ")
    assert re.search(r"%s:%d: warning: listener old: TLS 1\.2 RSA key exchange suites are "
                     r"enabled but \S+ is not an RSA certificate" % (re.escape(str(g.conf)), line),
                     r.stderr), r.stderr
    assert "tls_profile = legacy accepts TLS 1.2 RSA key exchange" in r.stderr
