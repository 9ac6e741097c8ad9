"""Device trust while devices stay connected: a device whose certificate is revoked is
disconnected at the reload that brings the new CRL (disconnect_revoked), or kept with
disconnect_revoked = no; watch_tls_files reloads on a changed CRL without SIGHUP; a device
certificate close to its end is logged (cert_expiring); the upstream broker's certificate
is checked against [upstream] crl."""

import shutil
import ssl

import pytest

import gw
from gw import PUBACK_7, crl_bundle

ROOT = gw.REV_ROOT  # conftest's rpki: the root of the revocation PKI
# s_client as device NAME against g's first listener: handshake, CONNECT, QoS 1 PUBLISH.
device = gw.s_client_device


@pytest.fixture(scope="module")
def lpki(rpki):
    for name in ("live-a", "live-b", "live-c"):
        if not (rpki.dir / (name + ".pem")).exists():
            rpki.run("client", name, "--ca", ROOT)
    if not (rpki.dir / "live-exp.pem").exists():
        rpki.run("--days", "5", "client", "live-exp", "--ca", ROOT)
    return rpki


def connected(pki, g, name):
    """A paho device with `name`'s certificate, client id = name, publishing on its topic."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.pem("devices-ca"))
    ctx.load_cert_chain(pki.pem(name), pki.key(name))
    d = gw.Device(g.port(), name, tls=ctx)
    d.publish("sensors/%s/t" % name, "21.5")
    return d


def gateway(make_gateway, upstream, pki, tmp_path, **opts):
    crl = tmp_path / "crl.pem"
    crl_bundle(pki, crl, cas=(ROOT,))
    gopts = opts.pop("gateway_opts", {})
    g = make_gateway(upstream=upstream, gateway=gopts, listeners=[
        gw.listener("mtls", "mutual", ca=pki.pem(ROOT), crl=str(crl), **opts)])
    g.crl = crl
    return g


def revoke_and_expect_closed(g, upstream, pki, crl, bad, good, revoke, cas):
    """Revokes (NAME, CA) in a new CRL at crl and reloads: the connected device `bad` (that
    NAME) gets cert_revoked and is disconnected; `good` is untouched and keeps publishing."""
    name = revoke[0]
    crl_bundle(pki, crl, revoke=[revoke], cas=cas)
    g.reload()
    ev = g.wait_event("cert_revoked", device=name)
    assert "revoked" in ev[0]["msg"], ev[0]["raw"]
    gw.wait_until(lambda: bad.unexpected_disconnects, what="%s disconnected" % name)
    seen = len(upstream.readings(good.client_id, g.name))
    good.publish("sensors/%s/t" % good.client_id, "22.5")
    upstream.wait_readings(good.client_id, g.name, count=seen + 1)
    assert good.unexpected_disconnects == []
    assert not g.events("cert_revoked", device=good.client_id)


def test_connected_device_is_disconnected_when_revoked(make_gateway, upstream, lpki, tmp_path):
    g = gateway(make_gateway, upstream, lpki, tmp_path)
    bad, good = connected(lpki, g, "live-a"), connected(lpki, g, "live-b")
    try:
        revoke_and_expect_closed(g, upstream, lpki, g.crl, bad, good, ("live-a", ROOT), (ROOT,))
        assert device(g, "live-a").refused  # and it cannot come back
    finally:
        bad.close()
        good.close()


def test_disconnect_revoked_no_keeps_the_connection(make_gateway, upstream, lpki, tmp_path):
    g = gateway(make_gateway, upstream, lpki, tmp_path, disconnect_revoked="no")
    d = connected(lpki, g, "live-c")
    try:
        crl_bundle(lpki, g.crl, revoke=[("live-c", ROOT)], cas=(ROOT,))
        g.reload()
        d.publish("sensors/live-c/t", "23.5")
        upstream.wait_readings("live-c", g.name, count=2)
        assert d.unexpected_disconnects == []
        assert not g.events("cert_revoked")
        assert device(g, "live-c").refused  # new connections meet the CRL
    finally:
        d.close()


def test_device_under_an_intermediate_is_rechecked_with_its_chain(make_gateway, upstream, lpki,
                                                                  tmp_path):
    # The gateway releases a connected device's parsed certificate and keeps its encoding and
    # that of the intermediate CA the device sent (not in the ca file). A reload re-verifies
    # the connection from them: kept while it still verifies, closed once revoked.
    inter = "live-int"
    if not (lpki.dir / (inter + ".pem")).exists():
        lpki.run("ca", inter, "--ca", ROOT)
        lpki.run("client", "live-i", "--ca", inter)
        lpki.run("client", "live-j", "--ca", inter)
    crl = tmp_path / "crl.pem"
    crl_bundle(lpki, crl, cas=(ROOT, inter))
    g = make_gateway(upstream=upstream, listeners=[
        gw.listener("mtls", "mutual", ca=lpki.pem(ROOT), crl=str(crl))])

    def chained(name):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(lpki.pem("devices-ca"))
        ctx.load_cert_chain(str(lpki.dir / (name + ".chain.pem")), lpki.key(name))
        d = gw.Device(g.port(), name, tls=ctx)
        d.publish("sensors/%s/t" % name, "21.5")
        return d

    bad, good = chained("live-i"), chained("live-j")
    try:
        crl_bundle(lpki, crl, cas=(ROOT, inter))  # a new CRL that revokes nobody
        g.reload()
        g.wait_event("config_reloaded")
        good.publish("sensors/live-j/t", "22.5")
        bad.publish("sensors/live-i/t", "22.5")
        upstream.wait_readings("live-j", g.name, count=2)
        upstream.wait_readings("live-i", g.name, count=2)
        assert not g.events("cert_revoked")
        assert bad.unexpected_disconnects == [] and good.unexpected_disconnects == []

        revoke_and_expect_closed(g, upstream, lpki, crl, bad, good, ("live-i", inter),
                                 (ROOT, inter))
    finally:
        bad.close()
        good.close()


def test_watch_tls_files_reloads_a_changed_crl(make_gateway, upstream, lpki, tmp_path):
    lpki.run("client", "live-w", "--ca", ROOT)
    g = gateway(make_gateway, upstream, lpki, tmp_path,
                gateway_opts={"watch_tls_files": "yes"})
    d = connected(lpki, g, "live-w")
    try:
        # An operator's deploy script replaces the file; nobody sends SIGHUP.
        crl_bundle(lpki, g.crl, revoke=[("live-w", ROOT)], cas=(ROOT,))
        g.wait_event("tls_files_changed")
        g.wait_event("config_reloaded")
        g.wait_event("cert_revoked", device="live-w")
        gw.wait_until(lambda: d.unexpected_disconnects, what="live-w disconnected")
        assert device(g, "live-w").refused
    finally:
        d.close()


def test_watch_ignores_other_files_in_the_directory(make_gateway, upstream, lpki, tmp_path):
    # handshake_timeout = 2s is the barrier: twice the watch's quiet period (1 s).
    g = gateway(make_gateway, upstream, lpki, tmp_path, handshake_timeout="2s",
                gateway_opts={"watch_tls_files": "yes"})
    (tmp_path / "unrelated.txt").write_text("x")
    # A silent TCP connection made after the write: the gateway reads the inotify event in
    # the same loop iteration that accepts it, or earlier. Had the file counted, the quiet
    # period's timer (1 s) would run out before this connection's handshake timer (2 s),
    # and tls_files_changed would be logged before tls_handshake_timeout.
    probe = gw.RawConn(g.port())
    try:
        probe.wait_closed(gw.WAIT)
    finally:
        probe.close()
    g.wait_event("tls_handshake_timeout", peer=probe.peer_str)
    assert not g.events("tls_files_changed")
    assert not g.events("config_reloaded")
    # The watch is live: a change to a watched file in the same directory is acted on.
    crl_bundle(lpki, g.crl, cas=(ROOT,))
    g.wait_event("tls_files_changed")
    g.wait_event("config_reloaded")


def test_expiring_device_certificate_is_logged(make_gateway, upstream, lpki, tmp_path):
    g = gateway(make_gateway, upstream, lpki, tmp_path)
    assert device(g, "live-exp").has(PUBACK_7)
    ev = g.wait_event("cert_expiring", device="live-exp")
    assert "in 4 day(s)" in ev[0]["msg"] or "in 5 day(s)" in ev[0]["msg"], ev[0]["raw"]
    # A certificate valid for the default 825 days is not worth a warning.
    assert device(g, "live-b").has(PUBACK_7)
    assert not g.events("cert_expiring", device="live-b")
    # cert_expiry_warning = 0 turns it off.
    (tmp_path / "off").mkdir()
    g2 = gateway(make_gateway, upstream, lpki, tmp_path / "off", cert_expiry_warning="0")
    assert device(g2, "live-exp").has(PUBACK_7)
    assert not g2.events("cert_expiring")


def test_upstream_broker_checked_against_crl(make_gateway, upstream, pki, tmp_path):
    # A copy of the upstream CA, so that revoking the broker here touches no other test.
    ca = tmp_path / "upca"
    ca.mkdir()
    for f in ("upstream-ca.pem", "upstream-ca.key", "broker.pem"):
        shutil.copy(pki.dir / f, ca / f)
    upki = gw.Pki(ca)
    upki.run("crl", "upstream-ca")
    good = make_gateway(upstream=upstream,
                        upstream_opts={"crl": str(ca / "upstream-ca.crl.pem")},
                        listeners=[gw.listener("plain", "off")])
    good.wait_event("upstream_connected")
    upki.run("revoke", "broker", "--ca", "upstream-ca")
    bad = make_gateway(upstream=upstream,
                       upstream_opts={"crl": str(ca / "upstream-ca.crl.pem")},
                       listeners=[gw.listener("plain", "off")])
    ev = bad.wait_event("upstream_connect_failed")
    assert not bad.events("upstream_connected")
    assert "revoked" in " ".join(e["raw"] for e in bad.events()), bad.log_text()[-2000:]
