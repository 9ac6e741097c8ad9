"""Start-up, log line format, log levels, graceful stop and the small CLI flags."""

import signal
import socket
import subprocess

import pytest

import gw


def test_startup_events_and_log_format(make_gateway, upstream):
    g = make_gateway(upstream=upstream, listeners=[
        gw.listener("plain", "off"), gw.listener("tls", "server"), gw.listener("mtls", "mutual")])
    g.wait_event("gateway_ready")
    for name in ("plain", "tls", "mtls"):
        g.wait_event("listener_bound", listener=name)
    warn = g.wait_event("plaintext_listener", listener="plain")
    assert warn[0]["level"] == "warning", warn[0]["raw"]
    assert not g.events("plaintext_listener", listener="tls")
    assert not g.events("plaintext_listener", listener="mtls")
    g.wait_event("upstream_connected")
    # Every port really accepts connections.
    for name in ("plain", "tls", "mtls"):
        gw.wait_port("127.0.0.1", g.port(name), 2)
    lines = [ln for ln in g.log_lines() if ln.strip()]
    assert lines
    for ln in lines:
        ev = gw.parse_log_line(ln)
        assert ev is not None, "log line not in the contract format: %r" % ln
        assert ev["pid"] == g.pid, ln
    g.stop()
    g.wait_event("gateway_stopping")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_stop_with_connected_devices(make_gateway, upstream, devices, sig):
    g = make_gateway(upstream=upstream)
    d = devices(g.port(), "dev0500")
    d.publish("t/x", "21.5")
    upstream.wait_readings("dev0500", g.name)
    g.stop(sig)  # asserts exit status 0 within 10 s


def test_log_level_and_debug_flag(make_gateway, upstream, devices):
    quiet = make_gateway(upstream=upstream, log_level="warning")
    d = devices(quiet.port(), "dev0501")
    d.publish("t/x", "21.5")
    upstream.wait_readings("dev0501", quiet.name)
    quiet.wait_event("plaintext_listener")
    assert not quiet.events("reading_accepted"), "debug line at log_level = warning"
    assert not quiet.events("device_connected"), "info line at log_level = warning"
    below = [e["raw"] for e in quiet.events() if e["level"] not in ("crit", "err", "warning")]
    assert below == [], "lines below log_level = warning:\n" + "\n".join(below)
    quiet.stop()

    loud = make_gateway(upstream=upstream, log_level="warning", start=False)
    loud.start(args=("-d",))
    d = devices(loud.port(), "dev0502")
    d.publish("t/x", "21.5")
    upstream.wait_readings("dev0502", loud.name)
    ev = loud.wait_event("reading_accepted", device="dev0502")
    assert ev[0]["level"] == "debug"
    con = loud.wait_event("device_connected", device="dev0502")
    assert con[0]["listener"] == "plain"
    assert con[0]["peer"] == "127.0.0.1:%d" % d.c.socket().getsockname()[1]


def test_port_in_use_fails_startup(make_gateway, upstream):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        g = make_gateway(upstream=upstream, start=False,
                         listeners=[gw.listener("plain", "off", port=busy.getsockname()[1])])
        g.start(wait_ready=False)
        rc = g.wait_exit()
    assert rc != 0, "iotgw started although its port was taken"
    g.notify.sync()  # everything the exited daemon sent is collected
    assert not any("READY=1" in m.split("\n") for m in g.notify.messages()), \
        "READY=1 sent although a listener could not be bound"


def test_version_and_help():
    r = subprocess.run([gw.IOTGW_BIN, "--version"], capture_output=True, text=True,
                       timeout=gw.WAIT)
    assert r.returncode == 0, r.stderr
    assert "iotgw" in (r.stdout + r.stderr)
    r = subprocess.run([gw.IOTGW_BIN, "-h"], capture_output=True, text=True, timeout=gw.WAIT)
    assert r.returncode == 0, r.stderr
    assert "-c" in (r.stdout + r.stderr)
    r = subprocess.run([gw.IOTGW_BIN, "--no-such-option"], capture_output=True, text=True,
                       timeout=gw.WAIT)
    assert r.returncode != 0


def test_restart_after_kill9_on_the_same_ports(make_gateway, upstream, devices, raw, pki):
    # systemd restarts a crashed daemon at once: the listeners must bind again although
    # the killed process left connections in TIME_WAIT (SO_REUSEADDR).
    g = make_gateway(upstream=upstream, listeners=[gw.listener("plain", "off"),
                                                   gw.listener("mtls", "mutual")])
    d = devices(g.port("plain"), "dev0503")
    d.publish("t/x", "20")
    c = raw(g.port("mtls"), tls=pki.client_ctx(cert="dev0001"))
    c.connect("dev0001")
    upstream.wait_readings("dev0503", g.name)
    g.kill9()
    c.wait_closed()
    g.start()
    d2 = devices(g.port("plain"), "dev0503")
    d2.publish("t/x", "21")
    # The first reading may arrive twice (its upstream PUBACK can be lost with the
    # process); the new one carries the next seq, persisted across the crash.
    got = upstream.wait_for(lambda m: m.get("device") == "dev0503"
                            and m.get("temperature_c") == 21)
    assert [m.get("seq") for m in got] == [2]
    c2 = raw(g.port("mtls"), tls=pki.client_ctx(cert="dev0001"))
    c2.connect("dev0001")


def test_sigusr1_logs_the_status_and_keeps_running(make_gateway, upstream, raw):
    g = make_gateway(upstream=upstream)
    c = raw(g.port())
    c.connect("dev0290")
    g.send_signal(signal.SIGUSR1)
    ev = g.wait_event("status")
    assert ev[0]["level"] == "notice", ev[0]["raw"]
    assert "1 connections" in ev[0]["msg"] and "spool" in ev[0]["msg"], ev[0]["raw"]
    # Still serving the connected device afterwards.
    c.send(gw.PINGREQ)
    c.expect(b"\xd0\x00", what="PINGRESP after SIGUSR1")
    assert g.running
