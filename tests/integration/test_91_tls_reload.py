"""Device trust over time: certificate revocation lists (crl =) checked on every handshake for
the whole chain and re-read on SIGHUP, revocation of a device and of an intermediate CA made
with tools/iotgw-pki, server certificates swapped while devices stay connected, broken or
world-readable keys refused (at start, by `iotgw -t`, and on reload with the old context
kept), and session tickets that survive a reload unless the trust settings changed."""

import os
import re
import shutil
import ssl
import stat
import subprocess

import pytest

import gw
from test_90_tls_profiles import PUBACK_7, connect, s_client

# A PKI of its own: rev-root signs rev-a, rev-b and the intermediate rev-int, which signs
# rev-c and rev-d. Revocations change these CAs' databases only.
ROOT, INTER = "rev-root", "rev-int"


@pytest.fixture(scope="module")
def rpki(pki):
    if not (pki.dir / (INTER + ".pem")).exists():
        pki.run("ca", ROOT)
        pki.run("ca", INTER, "--ca", ROOT)
        for name in ("rev-a", "rev-b", "rev-e"):
            pki.run("client", name, "--ca", ROOT)
        for name in ("rev-c", "rev-d"):
            pki.run("client", name, "--ca", INTER)
    return pki


def crl_bundle(pki, path, revoke=(), cas=(ROOT, INTER)):
    """Revokes each (NAME, CANAME), then writes the CRLs of `cas` into path (atomically, as
    an operator's deploy script would)."""
    for name, ca in revoke:
        pki.run("revoke", name, "--ca", ca)
    for ca in cas:
        pki.run("crl", ca)
    tmp = str(path) + ".new"
    with open(tmp, "wb") as out:
        for ca in cas:
            out.write((pki.dir / (ca + ".crl.pem")).read_bytes())
    os.replace(tmp, path)


def device(g, name, proto="tls1_2", extra=()):
    """s_client as device `name` (with its intermediate when it has one) against g's first
    listener: handshake, CONNECT, QoS 1 PUBLISH; returns the SClient (r.has(PUBACK_7) when
    it got through)."""
    opts = ["-" + proto, *extra]
    chain = g.pki.dir / (name + ".chain.pem")
    if chain.exists():
        opts += ["-cert_chain", str(chain)]
    data = connect(name) + gw.publish_pkt("esp/%s/t" % name, "20.5", qos=1, pid=7)
    return s_client(g.pki, g.port(), *opts, cert=name, data=data, until=PUBACK_7)


def refused(r):
    return not r.has(gw.CONNACK_OK) and not r.has(PUBACK_7)


@pytest.fixture
def rg(make_gateway, upstream, rpki, tmp_path):
    """A gateway with one mutual listener trusting rev-root, with CRLs of rev-root and
    rev-int in crl.pem (nothing newly revoked)."""
    crl = tmp_path / "crl.pem"
    crl_bundle(rpki, crl)
    g = make_gateway(upstream=upstream, listeners=[
        gw.listener("mtls", "mutual", ca=rpki.pem(ROOT), crl=str(crl))])
    g.crl = crl
    g.reloads = 0
    return g


def hup(g):
    """SIGHUP and wait until this reload is done (not an earlier one)."""
    g.reloads += 1
    g.sighup()
    g.wait_event("config_reloaded", count=g.reloads)


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
        hup(g)
        r = device(g, "rev-a")
        assert refused(r) and "alert certificate revoked" in r.text, r
        revoked_logged(g)
        # TLS 1.3: the client finishes first; the gateway still refuses before MQTT.
        assert refused(device(g, "rev-a", "tls1_3"))

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
    hup(g)
    assert refused(device(g, "rev-d"))
    assert device(g, "rev-c").has(PUBACK_7)
    # The intermediate itself: the root's CRL revokes every device below it (CRL_CHECK_ALL).
    crl_bundle(rpki, g.crl, revoke=[(INTER, ROOT)])
    hup(g)
    r = device(g, "rev-c")
    assert refused(r) and "alert certificate revoked" in r.text, r
    revoked_logged(g, count=2)
    assert device(g, "rev-e").has(PUBACK_7)  # root-signed, untouched


@pytest.mark.parametrize("proto", ["tls1_2", "tls1_3"])
def test_resumption_across_reload(rg, rpki, tmp_path, proto):
    g = rg
    sess = tmp_path / "sess.pem"
    first = device(g, "rev-e", proto, extra=("-sess_out", str(sess)))
    assert first.has(PUBACK_7) and not first.reused, first
    want = "Reused, %s" % ("TLSv1.2" if proto == "tls1_2" else "TLSv1.3")
    # A reload that changes nothing about trust: ticket keys are kept, the ticket resumes.
    hup(g)
    again = device(g, "rev-e", proto, extra=("-sess_in", str(sess)))
    assert want in again.text and again.has(PUBACK_7), again
    # A new CRL (even one revoking nothing new): no resumption past the new checks, a full
    # handshake instead, which still succeeds.
    crl_bundle(rpki, g.crl)
    hup(g)
    full = device(g, "rev-e", proto, extra=("-sess_in", str(sess)))
    assert full.has(PUBACK_7) and not full.reused, full


def test_bad_crl_on_reload_keeps_old(rg, rpki):
    g = rg
    crl_bundle(rpki, g.crl, revoke=[("rev-a", ROOT)])
    hup(g)
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
        assert refused(device(g, "rev-a"))
        assert device(g, "rev-b").has(PUBACK_7)
    g.crl.write_bytes(good)
    hup(g)
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
