"""TLS sessions across a restart (keep_tls_sessions): after `systemctl restart`, devices
resume instead of each costing the gateway a full mutual-TLS handshake at once. Seen from a
real client: openssl s_client with -sess_out before the restart and -sess_in after it, TLS
1.2 (session id) and TLS 1.3 (ticket naming a stored session)."""

import stat
from pathlib import Path

import pytest

import gw

PUBACK_7 = gw.PUBACK_7
publish = gw.s_client_publish


def reused_text(proto):
    return "Reused, %s" % ("TLSv1.2" if proto == "tls1_2" else "TLSv1.3")


def first_session(g, pki, tmp_path, proto, cert="dev0001"):
    sess = tmp_path / ("%s-%s.pem" % (cert, proto))
    r = publish(pki, g.port(), proto, None, cert=cert, extra=("-sess_out", str(sess)))
    assert r.has(PUBACK_7) and not r.reused, r
    assert sess.exists() and sess.stat().st_size > 0, "no session/ticket from the gateway"
    return sess


@pytest.mark.parametrize("proto", ["tls1_2", "tls1_3"])
def test_devices_resume_after_a_restart(make_gateway, pki, upstream, tmp_path, proto):
    g = make_gateway(upstream=upstream, listeners=[gw.listener("mtls", "mutual")])
    sess = first_session(g, pki, tmp_path, proto)
    g.stop()
    (kept,) = g.events("tls_sessions")
    assert "1 TLS session(s) kept" in kept["msg"], kept["raw"]
    f = g.state_dir / "tls-sessions"
    # It holds master secrets: readable by the gateway's user only.
    assert stat.S_IMODE(f.stat().st_mode) == 0o600, oct(f.stat().st_mode)
    assert not (g.state_dir / "tls-sessions.tmp").exists()

    g.start()
    (loaded,) = g.events("tls_sessions")  # of this start
    assert "1 TLS session(s) from" in loaded["msg"], loaded["raw"]
    again = publish(pki, g.port(), proto, None, extra=("-sess_in", str(sess)))
    assert reused_text(proto) in again.text and again.has(PUBACK_7), again
    # The resumed session still names the device by its certificate.
    ev = g.wait_event("device_connected", device="dev0001")
    assert ev[-1]["listener"] == "mtls", ev[-1]["raw"]


def test_a_crash_keeps_the_last_saved_sessions(make_gateway, pki, upstream, tmp_path):
    # kill -9 writes nothing: what the last save (the previous clean stop here; in service
    # every 5 minutes when sessions changed) holds resumes, a session made after it does not.
    g = make_gateway(upstream=upstream, listeners=[gw.listener("mtls", "mutual")])
    before = first_session(g, pki, tmp_path, "tls1_2", cert="dev0001")
    g.stop()
    g.start()
    after = first_session(g, pki, tmp_path, "tls1_2", cert="dev0002")
    g.restart()  # kill -9, start
    old = publish(pki, g.port(), "tls1_2", None, extra=("-sess_in", str(before)))
    assert reused_text("tls1_2") in old.text and old.has(PUBACK_7), old
    new = publish(pki, g.port(), "tls1_2", None, cert="dev0002",
                  extra=("-sess_in", str(after)))
    assert "New, TLSv1.2" in new.text and new.has(PUBACK_7), new


def test_changed_trust_is_not_resumed_across_a_restart(make_gateway, pki, upstream, tmp_path):
    # A session made under other trust anchors must not skip the new checks: the session
    # id context (a digest of the CA and CRL files) differs, so OpenSSL refuses to resume
    # and the device does a full handshake against the new files.
    ca = tmp_path / "ca-bundle.pem"
    ca.write_bytes(Path(pki.pem("devices-ca")).read_bytes())
    g = make_gateway(upstream=upstream, listeners=[gw.listener("mtls", "mutual", ca=str(ca))])
    sess = first_session(g, pki, tmp_path, "tls1_3")
    g.stop()
    # The same CA plus another one: every device still verifies, but the trust changed.
    ca.write_bytes(ca.read_bytes() + Path(pki.pem("upstream-ca")).read_bytes())
    g.start()
    r = publish(pki, g.port(), "tls1_3", None, extra=("-sess_in", str(sess)))
    assert "New, TLSv1.3" in r.text and r.has(PUBACK_7), r


def test_keep_tls_sessions_off(make_gateway, pki, upstream, tmp_path):
    g = make_gateway(upstream=upstream, listeners=[gw.listener("mtls", "mutual")])
    first_session(g, pki, tmp_path, "tls1_2")
    g.stop()
    f = g.state_dir / "tls-sessions"
    assert f.exists()
    # Turned off: the file (secrets) goes at the next stop, and nothing resumes after it.
    g.gateway_opts["keep_tls_sessions"] = "no"
    g.write_config()
    g.start()
    assert not g.events("tls_sessions"), g.events("tls_sessions")
    sess = first_session(g, pki, tmp_path, "tls1_3")
    g.stop()
    assert not f.exists()
    g.start()
    r = publish(pki, g.port(), "tls1_3", None, extra=("-sess_in", str(sess)))
    assert "New, TLSv1.3" in r.text and r.has(PUBACK_7), r


def test_a_damaged_file_costs_full_handshakes_only(make_gateway, pki, upstream, tmp_path):
    g = make_gateway(upstream=upstream, listeners=[gw.listener("mtls", "mutual")])
    sess = first_session(g, pki, tmp_path, "tls1_2")
    g.stop()
    f = g.state_dir / "tls-sessions"
    data = f.read_bytes()
    f.write_bytes(data[:len(data) - 40])  # cut inside the session's encoding
    g.start()
    (w,) = g.events("tls_sessions")
    assert w["level"] == "warning" and "not a complete session file" in w["msg"], w["raw"]
    r = publish(pki, g.port(), "tls1_2", None, extra=("-sess_in", str(sess)))
    assert "New, TLSv1.2" in r.text and r.has(PUBACK_7), r
    f.write_bytes(b"not a session file at all")
    g.stop()  # the clean stop rewrites it whole
    g.start()
    assert not [e for e in g.events("tls_sessions") if e["level"] == "warning"], \
        g.events("tls_sessions")
