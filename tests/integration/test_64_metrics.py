"""Issue 10: the [metrics] listener (/metrics in Prometheus text format, /healthz, /readyz),
`iotgw status`, presence messages upstream and periodic stats. Scraped with real clients:
urllib, `promtool check metrics`, a real Prometheus server, raw sockets for bad requests."""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request

import pytest

import gw


def metrics_opts(port):
    return "[metrics]\nbind = 127.0.0.1:%d\n" % port


http_get = gw.http_get
Scrape = gw.Scrape
wait_metric = gw.wait_metric


@pytest.fixture
def mport():
    return gw.free_port()


def test_exposition_counts_readings_rejections_and_latency(make_gateway, upstream, devices,
                                                           mport, tmp_path):
    g = make_gateway(upstream=upstream, extra=metrics_opts(mport))
    g.wait_event("upstream_connected")
    s0 = Scrape(mport)
    # promtool (Debian's prometheus package) is the reference parser of the format.
    f = tmp_path / "exposition.txt"
    f.write_text(s0.text)
    r = subprocess.run(["promtool", "check", "metrics"], stdin=open(f), capture_output=True,
                       text=True, timeout=gw.WAIT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert s0.get("iotgw_readings_accepted_total") == 0
    assert s0.get("iotgw_upstream_up") == 1
    assert s0.get("iotgw_connections", listener="plain", tls_version="none") == 0
    info = [k for k in s0.samples if k[0] == "iotgw_build_info"]
    assert len(info) == 1 and dict(info[0][1])["version"], info
    assert s0.get("process_open_fds") > 3 and s0.get("process_max_fds") > 100

    d = devices(g.port(), "dev0641")
    N = 30
    for i in range(N):
        d.publish("esp/t", "%d.5" % i, qos=1)
    d.publish("esp/t", "not a number", qos=1)      # malformed
    d.publish("esp/t", "900", qos=1)               # outside -40..125 C
    upstream.wait_readings("dev0641", g.name, count=N)
    upstream.wait_deadletters("dev0641", g.name, count=2)
    s = wait_metric(mport, "iotgw_readings_forwarded_total", lambda v: v >= N + 2)
    assert s.get("iotgw_readings_accepted_total") == N
    assert s.get("iotgw_readings_rejected_total", reason="malformed") == 1
    assert s.get("iotgw_readings_rejected_total", reason="implausible") == 1
    assert s.get("iotgw_readings_rejected_total", reason="no_rule") == 0
    # Every QoS 1 PUBLISH got its PUBACK: one latency observation each.
    assert s.get("iotgw_device_puback_latency_seconds_count") == N + 2
    assert s.get("iotgw_device_puback_latency_seconds_bucket", le="+Inf") == N + 2
    assert 0 < s.get("iotgw_device_puback_latency_seconds_sum") < (N + 2) * 5
    assert s.get("iotgw_upstream_puback_latency_seconds_count") == N + 2
    assert s.get("iotgw_connections", listener="plain", tls_version="none") == 1
    assert s.get("iotgw_device_connects_total", listener="plain") == 1
    assert s.get("iotgw_spool_commits_total") >= 1
    assert s.get("iotgw_spool_commit_duration_seconds_count") >= 1
    assert s.get("iotgw_spool_entries") == 0
    d.close()
    wait_metric(mport, "iotgw_connections", lambda v: v == 0, listener="plain",
                tls_version="none")


def test_handshake_failures_and_refusals_by_reason(make_gateway, upstream, devices, pki, mport):
    g = make_gateway(upstream=upstream, extra=metrics_opts(mport),
                     listeners=[gw.listener("mtls", "mutual")])
    port = g.port()
    ok = gw.Device(port, "dev0001", tls=pki.client_ctx(cert="dev0001"))
    try:
        for cert in ("intruder", "expired", None):
            c = gw.RawConn(port)
            try:
                c.start_tls(pki.client_ctx(cert=cert), "127.0.0.1")
                c.send(gw.connect_pkt("x"))
                c.read_packet(gw.WAIT)
            except (ssl.SSLError, ConnectionError, OSError, gw.Closed):
                pass
            finally:
                c.close()
        # A certificate for dev0002 with the client id of dev0003: refused with 5.
        c = gw.RawConn(port)
        c.start_tls(pki.client_ctx(cert="dev0002"), "127.0.0.1")
        c.send(gw.connect_pkt("dev0003"))
        assert c.read_packet(gw.WAIT) == b"\x20\x02\x00\x05"
        c.close()
        s = wait_metric(mport, "iotgw_handshake_failures_total",
                        lambda v: v == 1, listener="mtls", reason="no_certificate")
        assert s.get("iotgw_handshake_failures_total", listener="mtls", reason="unknown_ca") == 1
        assert s.get("iotgw_handshake_failures_total", listener="mtls", reason="expired") == 1
        assert s.get("iotgw_handshake_failures_total", listener="mtls", reason="revoked") == 0
        assert s.get("iotgw_handshakes_total", listener="mtls") == 2
        assert s.get("iotgw_connect_refusals_total", listener="mtls",
                     reason="not_authorized") == 1
        assert s.get("iotgw_device_connects_total", listener="mtls") == 1
        assert (s.get("iotgw_connections", listener="mtls", tls_version="TLSv1.3")
                + s.get("iotgw_connections", listener="mtls", tls_version="TLSv1.2")) == 1
        # The expiry of what this listener and the upstream present and trust; no CRL
        # configured, so no crl sample (absent, never 0).
        for kind in ("certificate", "ca"):
            assert s.get("iotgw_tls_expiry_timestamp_seconds", listener="mtls",
                         kind=kind) > time.time() + 86400
        assert s.get("iotgw_tls_expiry_timestamp_seconds", listener="upstream",
                     kind="certificate") > time.time() + 86400
        assert ("iotgw_tls_expiry_timestamp_seconds",
                (("kind", "crl"), ("listener", "mtls"))) not in s.samples
    finally:
        ok.close()


def status_cmd(g):
    return subprocess.run([gw.IOTGW_BIN, "status", "-c", str(g.conf)], capture_output=True,
                          text=True, timeout=gw.WAIT)


def wait_status_cmd(g, regex):
    last = []

    def have():
        last[:] = [status_cmd(g)]
        return re.search(regex, last[0].stdout, re.M)
    try:
        gw.wait_until(have, gw.WAIT, interval=0.1, what="iotgw status")
    except AssertionError:
        raise AssertionError("iotgw status never matched %r; last:\n%s%s" % (
            regex, last[0].stdout, last[0].stderr))
    return last[0]


def test_upstream_outage_shows_in_metrics_readyz_and_status(make_gateway, upstream, devices,
                                                            mport):
    g = make_gateway(upstream=upstream, extra=metrics_opts(mport))
    g.wait_event("upstream_connected")
    assert http_get(mport, "/healthz") == (200, "text/plain; charset=utf-8", "ok\n")
    code, _, body = http_get(mport, "/readyz")
    assert code == 200 and "ready" in body.splitlines()[0], body
    # The report is rewritten every second: wait for the one after the connect.
    r = wait_status_cmd(g, r"^upstream: connected for ")
    assert r.returncode == 0, r.stdout + r.stderr

    d = devices(g.port(), "dev0642")
    upstream.stop()
    try:
        g.wait_event("upstream_down")
        for i in range(5):
            d.publish("esp/t", "2%d" % i, qos=1)
        s = wait_metric(mport, "iotgw_upstream_up", lambda v: v == 0)
        assert s.get("iotgw_spool_entries") == 5
        assert s.get("iotgw_spool_oldest_age_seconds") >= 0
        assert s.total("iotgw_upstream_disconnects_total") >= 1, s.text
        wait_metric(mport, "iotgw_upstream_down_seconds", lambda v: v >= 1)
        # Buffering is the job: still ready, and the body says why the upstream is down.
        code, _, body = http_get(mport, "/readyz")
        assert code == 200, body
        assert re.search(r"^upstream: (down|connecting) for \d+", body, re.M), body
        assert re.search(r"^spool: 5 queued", body, re.M), body
        r = wait_status_cmd(g, r"^upstream: (down|connecting) for .+: .+")
        assert r.returncode == 0, r.stdout + r.stderr
        st = g.wait_status(lambda p: p["upstream"] != "connected" and p["queued"] == 5)
        assert re.search(r"; upstream (down|connecting) for \d+ s", st["text"]), st
    finally:
        upstream.start()
    g.wait_event("upstream_connected", count=2)
    upstream.wait_readings("dev0642", g.name, count=5, timeout=gw.WAIT + 5)
    s = wait_metric(mport, "iotgw_upstream_connects_total", lambda v: v == 2)
    assert s.get("iotgw_upstream_up") == 1
    assert s.get("iotgw_upstream_down_seconds") == 0
    assert s.get("iotgw_upstream_last_connected_timestamp_seconds") > time.time() - 60

    g.stop()
    r = status_cmd(g)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "not running" in r.stdout, r.stdout


def test_bad_requests_and_a_scrape_flood_do_not_starve_devices(make_gateway, upstream, devices,
                                                              mport):
    g = make_gateway(upstream=upstream, extra=metrics_opts(mport))
    assert http_get(mport, "/nope")[0] == 404
    assert http_get(mport, "/metrics", method="POST")[0] == 405
    code, _, body = http_get(mport, "/metrics", method="HEAD")
    assert code == 200 and body == ""
    c = socket.create_connection(("127.0.0.1", mport), timeout=gw.WAIT)
    c.sendall(b"GARBAGE\r\n\r\n")
    assert c.recv(100).startswith(b"HTTP/1.1 400 "), "garbage request not refused"
    c.close()
    c = socket.create_connection(("127.0.0.1", mport), timeout=gw.WAIT)
    c.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 8000)
    assert c.recv(100).startswith(b"HTTP/1.1 400 "), "oversized request not refused"
    c.close()
    # 40 connections that never send a request (more than the listener serves at once):
    # devices are served, and the metrics answer again once they are gone.
    idle = [socket.create_connection(("127.0.0.1", mport), timeout=gw.WAIT) for _ in range(40)]
    try:
        d = devices(g.port(), "dev0643")
        for i in range(10):
            d.publish("esp/t", "1%d" % i, qos=1)
        upstream.wait_readings("dev0643", g.name, count=10)
    finally:
        for s in idle:
            s.close()
    s = wait_metric(mport, "iotgw_readings_accepted_total", lambda v: v == 10)
    assert s.get("iotgw_http_requests_total", path="other", code="404") == 1
    assert s.get("iotgw_http_requests_total", path="/metrics", code="405") == 1


def test_readyz_and_ready_gauge_follow_spool_writes(make_gateway, upstream, tmpfs, mport):
    """A spool that cannot write makes the gateway unready (503, iotgw_ready 0) until it
    can again; the device is held back meanwhile and acknowledged afterwards."""
    fs = tmpfs("16m")
    upstream.stop()
    g = None
    try:
        g = make_gateway(upstream=upstream, spool_dir=fs / "state", extra=metrics_opts(mport))
        assert Scrape(mport).get("iotgw_ready") == 1
        c = gw.RawConn(g.port())
        c.send(gw.connect_pkt("dev0645"))
        assert c.read_packet(gw.WAIT) == gw.CONNACK_OK
        gw.fill_fs(fs / "filler")
        c.send(gw.publish_pkt("dev0645/t", "21.5", qos=1, pid=1))
        s = wait_metric(mport, "iotgw_ready", lambda v: v == 0)
        assert s.get("iotgw_spool_write_errors_total") >= 1
        assert s.get("iotgw_spool_full") == 1
        code, _, body = http_get(mport, "/readyz")
        assert code == 503 and "NOT READY: the spool cannot write" in body, (code, body)
        assert http_get(mport, "/healthz")[0] == 200  # alive: the loop turns
        (fs / "filler").unlink()
        assert c.read_packet(gw.WAIT) == b"\x40\x02\x00\x01", "no PUBACK after recovery"
        s = wait_metric(mport, "iotgw_ready", lambda v: v == 1)
        assert s.get("iotgw_spool_full_episodes_total") == 1
        assert s.get("iotgw_spool_full_seconds_total") > 0
        c.close()
        g.stop()
    finally:
        upstream.start()


def test_presence_birth_will_and_goodbye(make_gateway, upstream, mport):
    g = make_gateway(upstream=upstream, extra=metrics_opts(mport),
                     upstream_opts={"stats_topic": "iotgw/{gateway}/stats",
                                    "stats_interval": "1s"})
    topic = "iotgw/%s/status" % g.name
    birth = upstream.wait_for(lambda m: m.topic == topic and m.get("state") == "online")[-1]
    assert birth.json["gateway"] == g.name and birth.json["version"], birth
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", birth.json["started"]), birth
    stats = upstream.wait_for(lambda m: m.topic == "iotgw/%s/stats" % g.name)[-1]
    assert stats.json["gateway"] == g.name and "spool_entries" in stats.json, stats
    # kill -9: the broker publishes the Last Will.
    g.kill9()
    will = upstream.wait_for(lambda m: m.topic == topic and m.get("state") == "offline")[-1]
    assert will.json["reason"] == "connection lost", will
    # Start again: online; a clean stop says "stopped" itself (the will is dropped).
    n_online = len(upstream.messages(lambda m: m.topic == topic and m.get("state") == "online"))
    g.start()
    upstream.wait_for(lambda m: m.topic == topic and m.get("state") == "online",
                      count=n_online + 1)
    g.stop()
    bye = upstream.wait_for(lambda m: m.topic == topic and m.get("reason") == "stopped")[-1]
    assert bye.json["state"] == "offline", bye
    # Retained: a consumer that subscribes later learns the state at once.
    late = gw.Observer(upstream, gw.unique("late-"), clean_session=True)
    try:
        got = late.wait_for(lambda m: m.topic == topic)
        assert got[-1].retain and got[-1].json["reason"] == "stopped", got
    finally:
        late.close()


def test_config_checks(tmp_path, make_gateway, upstream, mport):
    g = make_gateway(upstream=upstream, start=False, extra="[metrics]\n")
    r = subprocess.run([gw.IOTGW_BIN, "-t", "-c", str(g.conf)], capture_output=True, text=True)
    assert r.returncode == 78 and "[metrics]: 'bind' is required" in r.stderr, r.stderr
    g.extra = "[metrics]\nbind = 127.0.0.1:%d\n" % g.port()
    g.write_config()
    r = subprocess.run([gw.IOTGW_BIN, "-t", "-c", str(g.conf)], capture_output=True, text=True)
    assert r.returncode == 78 and "collides with listener 'plain'" in r.stderr, r.stderr
    g.extra = "[metrics]\nbind = 0.0.0.0:%d\n" % mport
    g.write_config()
    r = subprocess.run([gw.IOTGW_BIN, "-t", "-c", str(g.conf)], capture_output=True, text=True)
    assert r.returncode == 0 and "is not loopback" in r.stderr, r.stderr
    g.upstream_opts["presence_topic"] = "iotgw/{device}/x"
    g.extra = ""
    g.write_config()
    r = subprocess.run([gw.IOTGW_BIN, "-t", "-c", str(g.conf)], capture_output=True, text=True)
    assert r.returncode == 78 and "only {gateway} can be filled in here" in r.stderr, r.stderr


def test_real_prometheus_scrapes_the_gateway(make_gateway, upstream, devices, mport, tmp_path):
    """Debian's prometheus scrapes the gateway every second; its query API shows the series
    move as readings flow and as the upstream goes down and up."""
    prom = shutil.which("prometheus")
    assert prom, "prometheus is not installed: run tools/install-deps"
    g = make_gateway(upstream=upstream, extra=metrics_opts(mport))
    g.wait_event("upstream_connected")
    web = gw.free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                   "scrape_configs:\n  - job_name: iotgw\n    static_configs:\n"
                   "      - targets: ['127.0.0.1:%d']\n" % mport)
    log = open(tmp_path / "prometheus.log", "wb")
    p = subprocess.Popen([prom, "--config.file=%s" % cfg, "--storage.tsdb.path=%s" % (tmp_path / "tsdb"),
                          "--web.listen-address=127.0.0.1:%d" % web],
                         stdout=log, stderr=log)
    gw.proc._track(p, "prometheus")

    def query(q):
        url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (web, urllib.request.quote(q))
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                res = json.loads(r.read())["data"]["result"]
        except (OSError, ValueError, KeyError):
            return None
        return float(res[0]["value"][1]) if res else None

    def wait_query(q, pred, what):
        last = []

        def have():
            v = query(q)
            last[:] = [v]
            return v is not None and pred(v)
        try:
            gw.wait_until(have, 30, interval=0.25, what=what)
        except AssertionError:
            raise AssertionError("%s: %s = %r; prometheus log:\n%s" % (
                what, q, last, gw.tail((tmp_path / "prometheus.log").read_text())))
    try:
        wait_query('up{job="iotgw"}', lambda v: v == 1, "target up")
        wait_query("iotgw_upstream_up", lambda v: v == 1, "upstream up")
        # Under load: 5 devices x 400 readings at 100/s each (about 4 s): the counters are
        # seen moving while it runs, and reach the total when it is done.
        load = gw.Load(g.port(), 5, 400, 100, prefix="dev0644")
        with load:
            wait_query("iotgw_readings_accepted_total", lambda v: 0 < v < 2000,
                       "readings counted while the load runs")
            wait_query("rate(iotgw_readings_forwarded_total[5s])", lambda v: v > 10,
                       "a forwarding rate while the load runs")
            load.wait_done(timeout=30)
        load.check_health()
        wait_query("iotgw_readings_accepted_total", lambda v: v == 2000, "readings counted")
        wait_query("iotgw_readings_forwarded_total", lambda v: v == 2000, "readings forwarded")
        wait_query("iotgw_device_puback_latency_seconds_count", lambda v: v == 2000,
                   "a PUBACK latency for each")
        d = devices(g.port(), "dev0644")
        upstream.stop()
        try:
            wait_query("iotgw_upstream_up", lambda v: v == 0, "upstream down seen")
            d.publish("esp/t", "30", qos=1)
            wait_query("iotgw_spool_entries", lambda v: v == 1, "backlog seen")
        finally:
            upstream.start()
        wait_query("iotgw_upstream_up", lambda v: v == 1, "upstream back")
        wait_query("iotgw_spool_entries", lambda v: v == 0, "backlog drained")
        wait_query("iotgw_upstream_connects_total", lambda v: v == 2, "reconnect counted")
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        gw.proc._untrack(p)
        log.close()
