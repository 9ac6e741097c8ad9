"""The monitoring files in contrib/ (Grafana dashboard, Prometheus alert rules and scrape
config) are valid, their alerts fire when they should, and they name only metrics that
iotgw(8) documents in METRICS, so documentation, dashboard and rules cannot drift apart.

No gateway runs here; promtool (Debian package prometheus, installed by tools/install-deps)
does the checking and must be present: a missing promtool fails, it does not skip."""

import json
import os
import re
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.no_iotgw

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DASHBOARD = os.path.join(ROOT, "contrib", "grafana", "iotgw-dashboard.json")
RULES = os.path.join(ROOT, "contrib", "prometheus", "iotgw-alerts.yml")
PROMCONF = os.path.join(ROOT, "contrib", "prometheus", "prometheus.yml")
MANPAGE = os.path.join(ROOT, "docs", "iotgw.8")
GUIDE = os.path.join(ROOT, "docs", "monitoring.md")

METRIC = re.compile(r"\b(?:iotgw|process)_[a-z0-9_]*[a-z0-9]")
HISTOGRAM_SUFFIX = re.compile(r"_(?:bucket|sum|count)$")


@pytest.fixture(scope="module")
def promtool():
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: run tools/install-deps (it installs the Debian "
                    "package prometheus, which provides promtool)", pytrace=False)
    return path


def run(cmd, cwd=None):
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout + r.stderr


def metric_names(text):
    """Metric names in PromQL (or any) text, histogram series folded into their family."""
    return {HISTOGRAM_SUFFIX.sub("", m) for m in METRIC.findall(text)}


def man_metrics():
    text = open(MANPAGE).read()
    assert "\n.SH METRICS\n" in text, "iotgw(8) has no METRICS section"
    section = text.split("\n.SH METRICS\n", 1)[1].split("\n.SH ", 1)[0]
    section = re.sub(r"\\f[BIRP]", " ", section.replace("\\-", "-").replace("\\&", ""))
    return set(METRIC.findall(section))


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def all_panels(dash):
    for p in dash["panels"]:
        yield p
        yield from p.get("panels", [])


def dashboard_exprs(dash):
    """[(panel title, refId, expr)] of every query, variables included."""
    out = []
    for p in all_panels(dash):
        for t in p.get("targets", []):
            out.append((p["title"], t.get("refId"), t.get("expr", "")))
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            out.append(("variable " + v["name"], "", q))
    return out


# ------------------------------------------------------------------ Prometheus files

def test_promtool_check_rules(promtool):
    rc, out = run([promtool, "check", "rules", RULES])
    assert rc == 0, out
    assert "SUCCESS" in out, out


def test_promtool_check_config(promtool, tmp_path):
    # The config names the rules file relative to itself: check the pair side by side.
    for f in (PROMCONF, RULES):
        shutil.copy(f, tmp_path)
    rc, out = run([promtool, "check", "config", "prometheus.yml"], cwd=tmp_path)
    assert rc == 0, out
    assert "1 rule files found" in out, out


def test_scrape_config_targets_the_documented_job():
    text = open(PROMCONF).read()
    assert re.search(r"^\s*- job_name: iotgw\s", text, re.M), text
    assert '"127.0.0.1:9883"' in text
    # The rules that use `up` assume that job name.
    assert 'up{job="iotgw"}' in open(RULES).read()


def test_readiness_needs_no_probe():
    """/readyz is also the gauge iotgw_ready, so the rules need nothing but the iotgw job:
    no blackbox exporter, no second scrape job."""
    rules = open(RULES).read()
    assert not re.search(r"\bprobe_", rules), "a rule needs a blackbox probe"
    block = re.split(r"^\s*- alert: ", rules, flags=re.M)
    ready = [b for b in block if b.startswith("IotgwNotReady")]
    assert len(ready) == 1 and re.search(r"^\s*expr: iotgw_ready == 0$", ready[0], re.M), ready
    assert re.findall(r"^\s*- job_name: (\S+)", open(PROMCONF).read(), re.M) == ["iotgw"]


def rules_without_descriptions():
    """The rules file with each `description: >-` block removed, so that promtool unit tests
    can state the alerts they expect by labels and summary alone."""
    out, skip_deeper_than, removed = [], None, 0
    for line in open(RULES).read().splitlines():
        indent = len(line) - len(line.lstrip())
        if skip_deeper_than is not None:
            if not line.strip() or indent > skip_deeper_than:
                continue
            skip_deeper_than = None
        if line.strip().startswith("description:"):
            skip_deeper_than = indent
            removed += 1
            continue
        out.append(line)
    return "\n".join(out) + "\n", removed


def alert_names():
    return re.findall(r"^\s*- alert: (\w+)\s*$", open(RULES).read(), re.M)


GW = {"job": "iotgw", "instance": "gw1:9883"}


def series(name, values, **labels):
    lab = dict(GW, **labels)
    return {"series": "%s{%s}" % (name, ",".join('%s="%s"' % kv for kv in sorted(lab.items()))),
            "values": values}


def expect(alertname, eval_time, summary=None, severity=None, **labels):
    """An alert_rule_test entry: no alert when summary is None, else exactly one."""
    if summary is None:
        return {"eval_time": eval_time, "alertname": alertname, "exp_alerts": []}
    lab = dict(GW, severity=severity, **labels)
    return {"eval_time": eval_time, "alertname": alertname,
            "exp_alerts": [{"exp_labels": lab, "exp_annotations": {"summary": summary}}]}


EXPIRY = "iotgw_tls_expiry_timestamp_seconds"


# Each case: input series and what the alerts do over time. Times are from the start (0 s).
ALERT_CASES = [
    # A stopped gateway: iotgw_ready 0 while it stops, then no series at all. That is
    # IotgwDown, not IotgwNotReady.
    {"interval": "1m",
     "input_series": [series("up", "1 1 0x10"),
                      series("iotgw_ready", "1 1 0 stale")],
     "alert_rule_test": [
         expect("IotgwDown", "5m"),
         expect("IotgwDown", "8m", "iotgw gw1:9883 cannot be scraped", "critical"),
         expect("IotgwNotReady", "8m")]},
    # Not ready from minute 2 (a listener not bound, the spool not writing).
    {"interval": "1m",
     "input_series": [series("iotgw_ready", "1 1 0x10")],
     "alert_rule_test": [
         expect("IotgwNotReady", "4m"),
         expect("IotgwNotReady", "8m", "iotgw gw1:9883 is not ready", "critical")]},
    # A dip of three minutes does not fire, nor does an upstream outage (still ready).
    {"interval": "1m",
     "input_series": [series("iotgw_ready", "1 1 0 0 0 1x15"),
                      series("iotgw_upstream_up", "1 0x19")],
     "alert_rule_test": [
         expect("IotgwNotReady", "5m"),
         expect("IotgwNotReady", "15m")]},
    {"interval": "1m",
     "input_series": [series("process_open_fds", "10x20", job="other")],
     "alert_rule_test": [
         expect("IotgwMetricsAbsent", "5m"),
         {"eval_time": "15m", "alertname": "IotgwMetricsAbsent",
          "exp_alerts": [{"exp_labels": {"job": "iotgw", "severity": "warning"},
                          "exp_annotations": {"summary": "No iotgw scrape target at all"}}]}]},
    {"interval": "1m",
     "input_series": [series("iotgw_start_time_seconds", "100 100 160 220 280 280")],
     "alert_rule_test": [
         expect("IotgwRestarting", "3m"),
         expect("IotgwRestarting", "5m", "iotgw gw1:9883 restarted 3 times in an hour",
                "warning")]},
    {"interval": "1m",
     "input_series": [series("iotgw_config_reloads_total", "0 0 1 1 1", result="failed"),
                      series("iotgw_config_reloads_total", "0 1 2 3 4", result="ok")],
     "alert_rule_test": [
         expect("IotgwConfigReloadFailed", "1m"),
         expect("IotgwConfigReloadFailed", "4m",
                "iotgw gw1:9883 refused a new configuration", "warning", result="failed")]},
    # Upstream down from minute 2; the alert says for how long.
    {"interval": "1m",
     "input_series": [series("iotgw_upstream_up", "1 1 0x10"),
                      series("iotgw_upstream_down_seconds", "0 0 0+60x10")],
     "alert_rule_test": [
         expect("IotgwUpstreamDown", "5m"),
         expect("IotgwUpstreamDown", "8m", "iotgw gw1:9883: upstream broker unreachable",
                "warning"),
         expect("IotgwUpstreamRefused", "8m")]},
    {"interval": "1m",
     "input_series": [series("iotgw_upstream_up", "0x20"),
                      series("iotgw_upstream_refusals_total", "0+1x20",
                             reason="not_authorized")],
     "alert_rule_test": [
         expect("IotgwUpstreamRefused", "10m",
                "iotgw gw1:9883: the upstream broker refuses the gateway (not_authorized)",
                "critical", reason="not_authorized")]},
    # One reading dropped at minute 6: critical at once, quiet again once it is 15 minutes old.
    {"interval": "1m",
     "input_series": [series("iotgw_readings_dropped_total", "0x5 1x30")],
     "alert_rule_test": [
         expect("IotgwReadingsDropped", "4m"),
         expect("IotgwReadingsDropped", "7m", "iotgw gw1:9883: readings dropped, data lost",
                "critical"),
         expect("IotgwReadingsDropped", "25m")]},
    # Drops from before the window, and the counter starting over at a restart, do not fire.
    {"interval": "1m",
     "input_series": [series("iotgw_readings_dropped_total", "3x10 0x20")],
     "alert_rule_test": [
         expect("IotgwReadingsDropped", "5m"),
         expect("IotgwReadingsDropped", "20m")]},
    # Connected, the subscription never granted (a broker ACL): critical after 5 min. Not
    # while the upstream is down, and not when it comes at minute 3.
    {"interval": "1m",
     "input_series": [series("iotgw_downlink_subscribed", "0x20"),
                      series("iotgw_upstream_up", "1x20")],
     "alert_rule_test": [
         expect("IotgwDownlinkNotSubscribed", "4m"),
         expect("IotgwDownlinkNotSubscribed", "6m",
                "iotgw gw1:9883: no command subscription upstream", "critical")]},
    {"interval": "1m",
     "input_series": [series("iotgw_downlink_subscribed", "0 0 0 1x20"),
                      series("iotgw_upstream_up", "0 0 1x20")],
     "alert_rule_test": [expect("IotgwDownlinkNotSubscribed", "10m")]},
    {"interval": "1m",
     "input_series": [series("iotgw_devices_over_share", "0 0 1x20 0x10")],
     "alert_rule_test": [
         expect("IotgwDeviceOverShare", "10m"),
         expect("IotgwDeviceOverShare", "20m",
                "iotgw gw1:9883: 1 device(s) held back over their share of the spool",
                "warning"),
         expect("IotgwDeviceOverShare", "30m")]},
    {"interval": "1m",
     "input_series": [series("iotgw_spool_full", "0 0 1x5 0x5")],
     "alert_rule_test": [
         expect("IotgwSpoolFull", "2m"),
         expect("IotgwSpoolFull", "4m", "iotgw gw1:9883: spool full, devices held back",
                "critical"),
         expect("IotgwSpoolFull", "10m")]},
    # 1 MB a minute into a 64 MiB spool: full in about an hour from the start.
    {"interval": "1m",
     "input_series": [series("iotgw_spool_bytes", "0+1000000x60"),
                      series("iotgw_spool_limit_bytes", "67108864x60"),
                      series("iotgw_spool_entries", "0+100x60"),
                      series("iotgw_spool_limit_entries", "100000x60")],
     "alert_rule_test": [
         expect("IotgwSpoolFillingUp", "5m"),
         expect("IotgwSpoolFillingUp", "30m",
                "iotgw gw1:9883: spool will be full within the hour", "warning")]},
    # A steady backlog does not predict a full spool.
    {"interval": "1m",
     "input_series": [series("iotgw_spool_bytes", "50000000x60"),
                      series("iotgw_spool_limit_bytes", "67108864x60")],
     "alert_rule_test": [expect("IotgwSpoolFillingUp", "50m")]},
    {"interval": "1m",
     "input_series": [series("iotgw_spool_oldest_age_seconds", "0+60x30")],
     "alert_rule_test": [
         expect("IotgwSpoolBacklogOld", "15m"),
         expect("IotgwSpoolBacklogOld", "25m",
                "iotgw gw1:9883: readings delayed by 25m 0s", "warning")]},
    {"interval": "1m",
     "input_series": [series("iotgw_spool_write_errors_total", "0 0 0 1 1 1 1 1 1 1 1 1 1")],
     "alert_rule_test": [
         expect("IotgwSpoolWriteErrors", "2m"),
         expect("IotgwSpoolWriteErrors", "4m", "iotgw gw1:9883: spool commits failing",
                "critical"),
         expect("IotgwSpoolWriteErrors", "12m")]},
    # Expiry timestamps against time(), which starts at 0: a CRL 10 days away warns after
    # an hour, a certificate 100 days away does not; one that expires at 30 min is critical.
    {"interval": "1m",
     "input_series": [
         series(EXPIRY, "864000x150", listener="devices", kind="crl"),
         series(EXPIRY, "8640000x150", listener="devices", kind="certificate"),
         series(EXPIRY, "1800x150", listener="upstream", kind="certificate")],
     "alert_rule_test": [
         expect("IotgwCertificateExpiringSoon", "30m"),
         expect("IotgwCertificateExpiringSoon", "2h",
                "iotgw gw1:9883: crl of devices expires in 9d 22h 0m 0s", "warning",
                listener="devices", kind="crl"),
         expect("IotgwCertificateExpired", "20m"),
         expect("IotgwCertificateExpired", "40m",
                "iotgw gw1:9883: certificate of upstream has expired", "critical",
                listener="upstream", kind="certificate")]},
    # kind="ca" (the earliest expiring trusted CA certificate) warns 90 days ahead, the other
    # kinds 14: a CA 60 days away warns, a server certificate as far away and a CA 100 days
    # away do not; the broker's CA (listener upstream) expiring at 20 min is critical.
    {"interval": "1m",
     "input_series": [
         series(EXPIRY, "5184000x150", listener="devices", kind="ca"),
         series(EXPIRY, "5184000x150", listener="devices", kind="certificate"),
         series(EXPIRY, "8640000x150", listener="lab", kind="ca"),
         series(EXPIRY, "1200x150", listener="upstream", kind="ca")],
     "alert_rule_test": [
         expect("IotgwCertificateExpiringSoon", "30m"),
         expect("IotgwCertificateExpiringSoon", "2h",
                "iotgw gw1:9883: ca of devices expires in 59d 22h 0m 0s", "warning",
                listener="devices", kind="ca"),
         expect("IotgwCertificateExpired", "10m"),
         expect("IotgwCertificateExpired", "30m",
                "iotgw gw1:9883: ca of upstream has expired", "critical",
                listener="upstream", kind="ca")]},
    # One failure a second on "devices" with as many successes (50 %): alert. On "lab"
    # one in eleven fails: no alert.
    {"interval": "1m",
     "input_series": [
         series("iotgw_handshake_failures_total", "0+60x40", listener="devices",
                reason="expired"),
         series("iotgw_handshakes_total", "0+60x40", listener="devices"),
         series("iotgw_handshake_failures_total", "0+60x40", listener="lab",
                reason="unknown_ca"),
         series("iotgw_handshakes_total", "0+600x40", listener="lab")],
     "alert_rule_test": [
         expect("IotgwHandshakeFailuresHigh", "10m"),
         expect("IotgwHandshakeFailuresHigh", "35m",
                "iotgw gw1:9883: many TLS handshakes fail on devices", "warning",
                listener="devices")]},
    {"interval": "1m",
     "input_series": [
         series("iotgw_connections", "500x20", listener="devices", tls_version="TLSv1.3"),
         series("iotgw_connections", "450x20", listener="devices", tls_version="TLSv1.2"),
         series("iotgw_connections_max", "1000x20", listener="devices"),
         series("iotgw_connections", "10x20", listener="lab", tls_version="none"),
         series("iotgw_connections_max", "1000x20", listener="lab")],
     "alert_rule_test": [
         expect("IotgwConnectionsNearLimit", "5m"),
         expect("IotgwConnectionsNearLimit", "15m",
                "iotgw gw1:9883: listener devices above 90% of max_connections", "warning",
                listener="devices")]},
]


def test_alerts_fire_when_they_should(promtool, tmp_path):
    rules, removed = rules_without_descriptions()
    names = alert_names()
    assert removed == len(names) > 10, (removed, names)
    (tmp_path / "iotgw-alerts.yml").write_text(rules)
    # JSON is YAML: the unit test file needs no YAML library.
    (tmp_path / "tests.yml").write_text(json.dumps({
        "rule_files": ["iotgw-alerts.yml"], "evaluation_interval": "1m",
        "tests": ALERT_CASES}, indent=1))
    rc, out = run([promtool, "test", "rules", "tests.yml"], cwd=tmp_path)
    assert rc == 0, out
    fired = {t["alertname"] for case in ALERT_CASES for t in case["alert_rule_test"]
             if t["exp_alerts"]}
    quiet = {t["alertname"] for case in ALERT_CASES for t in case["alert_rule_test"]
             if not t["exp_alerts"]}
    assert set(names) - fired == set(), "alerts without a firing test: %s" % (
        sorted(set(names) - fired))
    assert set(names) - quiet == set(), "alerts without a not-firing test: %s" % (
        sorted(set(names) - quiet))
    assert fired | quiet <= set(names), "tests of unknown alerts: %s" % (
        sorted((fired | quiet) - set(names)))


def test_monitoring_guide_lists_every_alert():
    """The alert table in docs/monitoring.md names exactly the rules in the file."""
    table = re.findall(r"^\| (Iotgw\w+) \|", open(GUIDE).read(), re.M)
    assert sorted(table) == sorted(alert_names()), (table, alert_names())


def test_every_alert_has_for_severity_summary_description():
    text = open(RULES).read()
    blocks = re.split(r"^\s*- alert: ", text, flags=re.M)[1:]
    assert len(blocks) == len(alert_names())
    for b in blocks:
        name = b.split()[0]
        for key in ("expr:", "for:", "severity:", "summary:", "description:"):
            assert re.search(r"^\s*%s" % key, b, re.M), "%s has no %s" % (name, key)


# ------------------------------------------------------------------ Grafana dashboard

def test_dashboard_is_valid_json_with_datasource_and_instance_variables():
    dash = load_dashboard()
    assert 36 <= dash["schemaVersion"] <= 39, dash["schemaVersion"]
    assert dash["uid"] and dash["title"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    ds = variables["DS_PROMETHEUS"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    inst = variables["instance"]
    q = inst["query"]["query"] if isinstance(inst["query"], dict) else inst["query"]
    assert q == "label_values(iotgw_build_info, instance)"
    assert inst["datasource"]["uid"] == "${DS_PROMETHEUS}"


def test_dashboard_panels_are_consistent():
    dash = load_dashboard()
    ids = [p["id"] for p in all_panels(dash)]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    n_queries = 0
    for p in all_panels(dash):
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, (p["title"], g)
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]
            assert t["expr"].strip(), p["title"]
            # Every query follows the gateway picker.
            assert 'instance=~"$instance"' in t["expr"], (p["title"], t["expr"])
            n_queries += 1
    assert n_queries >= 30, n_queries


def test_dashboard_queries_parse(promtool, tmp_path):
    """promtool has no stand-alone PromQL check: every dashboard query, with Grafana's
    variables filled in, becomes a recording rule and `promtool check rules` parses it."""
    subst = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h",
             '"$instance"': '".*"'}
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for i, (title, ref, expr) in enumerate(dashboard_exprs(load_dashboard())):
        if expr.startswith("label_values("):
            continue
        for k, v in subst.items():
            expr = expr.replace(k, v)
        assert "$" not in expr, "unknown Grafana variable in %s %s: %s" % (title, ref, expr)
        lines += ["      - record: dashboard:query_%d" % i,
                  "        expr: %s" % json.dumps(expr)]
    (tmp_path / "dashboard-rules.yml").write_text("\n".join(lines) + "\n")
    rc, out = run([promtool, "check", "rules", "dashboard-rules.yml"], cwd=tmp_path)
    assert rc == 0, out


def test_histograms_are_read_through_their_buckets():
    for title, ref, expr in dashboard_exprs(load_dashboard()):
        if "histogram_quantile" in expr:
            assert re.search(r"rate\((iotgw_[a-z_]+_seconds)_bucket\{", expr), (title, expr)
            assert "le)" in expr, (title, expr)


# ------------------------------------------------------------------ no drift

def test_man_page_documents_metrics():
    documented = man_metrics()
    assert len(documented) >= 40, sorted(documented)
    for basic in ("iotgw_build_info", "iotgw_upstream_up", "iotgw_spool_entries",
                  "process_cpu_seconds_total", "iotgw_device_puback_latency_seconds"):
        assert basic in documented, basic


@pytest.mark.parametrize("path", [DASHBOARD, RULES, PROMCONF],
                         ids=["dashboard", "alert-rules", "prometheus.yml"])
def test_files_use_only_documented_metrics(path):
    used = metric_names(open(path).read())
    if path != PROMCONF:
        assert len(used) >= 8, sorted(used)
    unknown = used - man_metrics()
    assert not unknown, "%s uses metrics iotgw(8) METRICS does not document: %s" % (
        os.path.relpath(path, ROOT), sorted(unknown))


def test_dashboard_covers_the_key_series():
    used = metric_names(open(DASHBOARD).read())
    for m in ("iotgw_readings_accepted_total", "iotgw_readings_rejected_total",
              "iotgw_readings_forwarded_total", "iotgw_spool_entries", "iotgw_spool_bytes",
              "iotgw_spool_limit_bytes", "iotgw_spool_oldest_age_seconds", "iotgw_spool_full",
              "iotgw_handshake_failures_total", "iotgw_connect_refusals_total",
              "iotgw_connections", "iotgw_device_puback_latency_seconds",
              "iotgw_upstream_puback_latency_seconds", "iotgw_upstream_up",
              "iotgw_upstream_down_seconds", "iotgw_upstream_disconnects_total",
              "iotgw_spool_commit_duration_seconds", "process_cpu_seconds_total",
              "process_resident_memory_bytes", "process_open_fds",
              "iotgw_tls_expiry_timestamp_seconds", "iotgw_ready",
              "iotgw_readings_dropped_total"):
        assert m in used, m


def panel_exprs(p):
    return " ".join(t.get("expr", "") for t in p.get("targets", []))


def test_dashboard_shows_readiness_by_upstream_and_dropped_by_rejected():
    panels = [p for p in all_panels(load_dashboard()) if p["type"] != "row"]
    stats = [p for p in panels if p["type"] == "stat"]
    ready = [p for p in stats if "iotgw_ready" in panel_exprs(p)]
    upstream = [p for p in stats if panel_exprs(p).startswith("iotgw_upstream_up{")]
    assert len(ready) == 1 and len(upstream) == 1, (ready, upstream)
    r, u = ready[0]["gridPos"], upstream[0]["gridPos"]
    assert r["y"] == u["y"] and u["x"] in (r["x"] + r["w"], r["x"] - u["w"]), (r, u)
    # The Upstream row's timeline carries readiness as well.
    assert any(p["type"] == "state-timeline" and "iotgw_upstream_up" in panel_exprs(p)
               and "iotgw_ready" in panel_exprs(p) for p in panels)
    # Dropped readings (lost) in the panel that shows rejected ones (dead-lettered).
    assert any("iotgw_readings_rejected_total" in panel_exprs(p)
               and "iotgw_readings_dropped_total" in panel_exprs(p) for p in panels)


def test_dashboard_expiry_panels_show_every_kind():
    panels = [p for p in all_panels(load_dashboard())
              if "iotgw_tls_expiry_timestamp_seconds" in panel_exprs(p)]
    assert len(panels) >= 2, [p["title"] for p in panels]
    for p in panels:
        # No kind matcher: certificate, ca and crl all count.
        assert "kind" not in panel_exprs(p).split("{", 1)[1].split("}", 1)[0], p["title"]
        text = (p["title"] + " " + p.get("description", "")).lower()
        for kind in ("certificate", "ca", "crl"):
            assert re.search(r"\b%s\b" % kind, text), (p["title"], kind)
    bars = [p for p in panels if p["type"] == "bargauge"]
    assert bars and all("{{kind}}" in t["legendFormat"] for p in bars for t in p["targets"])
