"""Many boxes: two identical gateways, each in a network namespace of its own ("box") with its
own disk spool, behind HAProxy in a third (TCP mode, send-proxy-v2, health checks on each
gateway's /readyz), all forwarding to one upstream broker. Devices publish numbered QoS 1
readings through the balancer; the broker is stopped so that both spools hold a backlog; one
gateway is killed with SIGKILL mid-load; its devices reconnect through the balancer to the
other; it is started again on its spool, HAProxy sees it ready again, and it drains. Every
reading a device saw PUBACKed arrives upstream (counted end to end, as test_81 does), under
the name of the gateway that took it: (gateway, device, seq) names one reading, and repeats
are bounded by what the devices re-sent and what was in flight upstream.

The namespaces, bridge and veth pairs are made by the test and removed in its finally block;
the test skips only when namespaces cannot be made here."""

import re
import time
import urllib.request

import pytest

import gw

DEVICES = 6
RATE = 20          # readings per second per device
COUNT = 240        # per device: 12 s of load
WINDOW = 10        # unacknowledged PUBLISHes per device
INFLIGHT = 16      # [upstream] inflight
BOXES = ("gwa", "gwb")
MQTT, BARRIER, METRICS, STATS = 1883, 1884, 9883, 8404

_NO_NETNS = gw.netns_unavailable()
pytestmark = [
    pytest.mark.skipif(not gw.haproxy_available(),
                       reason="haproxy is not installed (tools/install-deps)"),
    pytest.mark.skipif(_NO_NETNS is not None, reason=str(_NO_NETNS)),
]


def haproxy_sections(lan):
    lb = lan.addr("lb")
    servers = "".join("    server %s %s:%d\n" % (b, lan.addr(b), MQTT) for b in BOXES)
    # The balancer of docs/deployment.md: TCP mode, the PROXY header to each gateway, a
    # gateway taken out when its /readyz (on the [metrics] port) fails twice, a connection
    # to a dead one retried on the other.
    return ("frontend mqtt\n"
            "    bind %s:%d\n"
            "    default_backend gateways\n\n"
            "backend gateways\n"
            "    balance roundrobin\n"
            "    option httpchk GET /readyz\n"
            "    http-check expect status 200\n"
            "    retries 3\n"
            "    option redispatch 1\n"
            "    default-server send-proxy-v2 check port %d inter 200ms fall 2 rise 2\n"
            "%s\n"
            "frontend stats\n"
            "    mode http\n"
            "    bind %s:%d\n"
            "    stats enable\n"
            "    stats uri /stats\n" % (lb, MQTT, METRICS, servers, lb, STATS))


def server_status(lan):
    """{server: "UP" | "DOWN" | ...} from HAProxy's CSV statistics."""
    url = "http://%s:%d/stats;csv" % (lan.addr("lb"), STATS)
    with urllib.request.urlopen(url, timeout=gw.WAIT) as r:
        lines = r.read().decode().splitlines()
    cols = lines[0].lstrip("# ").split(",")
    out = {}
    for line in lines[1:]:
        row = dict(zip(cols, line.split(",")))
        if row.get("pxname") == "gateways" and row.get("svname") in BOXES:
            out[row["svname"]] = row["status"].split(" ")[0]
    return out


def wait_server(lan, box, status):
    return gw.wait_until(lambda: server_status(lan).get(box) == status, gw.WAIT,
                         interval=0.05, what="HAProxy marking %s %s" % (box, status))


def devices_on(g):
    """Load devices connected to gateway g (the current process's log)."""
    return {e["device"] for e in g.events("device_connected", listener="devices")}


def test_failover_behind_haproxy_loses_no_acked_reading(pki, tmp_path):
    lan = gw.Lan(["lb", *BOXES])
    boxes, lb, up = {}, None, None
    errors = []
    try:
        lan.up()
        host = lan.addr("host")
        # The broker stays in the test's namespace: the gateways reach it over the LAN, and
        # verify its certificate for that address.
        cert = "broker-" + lan.net.replace(".", "-")
        pki.run("server", cert, "--ca", "upstream-ca", "--san", "IP:127.0.0.1,IP:%s" % host)
        up = gw.Upstream(pki, tmp_path / "upstream", hosts=("127.0.0.1", host), cert=cert)
        up.start()
        up.start_observer()
        for b in BOXES:
            a = lan.addr(b)
            boxes[b] = gw.Gateway(
                tmp_path / b, pki, upstream=up, name="gw-t99-%s" % b, prefix=lan.exec(b),
                upstream_opts={"host": host, "inflight": INFLIGHT},
                extra="[metrics]\nbind = %s:%d" % (a, METRICS),
                listeners=[gw.listener("devices", "off", host=a, port=MQTT,
                                       proxy_protocol="v2",
                                       proxy_from="%s/32" % lan.addr("lb")),
                           gw.listener("barrier", "off", host=a, port=BARRIER)])
            boxes[b].start()
            boxes[b].wait_event("upstream_connected")
        lb = gw.HAProxy(tmp_path / "lb", haproxy_sections(lan), prefix=lan.exec("lb"))
        lb.start(wait=[(lan.addr("lb"), MQTT), (lan.addr("lb"), STATS)])
        for b in BOXES:
            wait_server(lan, b, "UP")
        run(lan, boxes, up)
    finally:
        for g in boxes.values():
            try:
                g.finalize()  # a running gateway must stop with exit 0
            except AssertionError as e:
                errors.append(str(e))
        if lb is not None:
            lb.close()
        if up is not None:
            up.close()
        lan.close()
    assert not errors, "\n\n".join(errors)


def run(lan, boxes, up):
    a, b = boxes["gwa"], boxes["gwb"]
    load = gw.Load(MQTT, DEVICES, COUNT, RATE, prefix="box", window=WINDOW,
                   host=lan.addr("lb"))
    t0 = time.monotonic()
    try:
        with load:
            load.wait_acked(DEVICES * RATE * 2)       # about 2 s into the load
            on_a, on_b = devices_on(a), devices_on(b)
            assert on_a and on_b and not on_a & on_b, (on_a, on_b)
            # Both spools get a backlog only they hold.
            up.stop()
            load.wait_acked(DEVICES * RATE * 3)
            load.burst(WINDOW)
            acked_before = load.total_acked()
            a.kill9()
            t_kill = time.monotonic()
            # Its devices come back through the balancer, to the other box.
            gw.wait_until(lambda: all(d.connected and d.connects >= 2 for d in load.devices
                                      if d.device_id in on_a),
                          gw.WAIT, interval=0.05, what="gwa's devices reconnected")
            t_back = time.monotonic()
            wait_server(lan, "gwa", "DOWN")
            gw.wait_until(lambda: on_a <= devices_on(b), gw.WAIT,
                          what="gwa's devices %s on gwb" % sorted(on_a))
            lost = {d.device_id for d in load.devices if d.losses}
            assert lost == on_a, (lost, on_a)
            # Started again on its own spool: the backlog is still there ...
            a.start()
            (ev,) = a.wait_event("spool_open")
            m = re.search(r"(\d+) queued", ev["msg"])
            assert m and int(m.group(1)) > 0, ev["raw"]
            backlog = int(m.group(1))
            # ... and HAProxy's check of /readyz takes it back.
            wait_server(lan, "gwa", "UP")
            up.start()
            load.wait_done(timeout=COUNT / RATE + gw.WAIT)
    finally:
        if not up.running:
            up.start()
    load.check_health(allow_losses=True)
    for g in boxes.values():
        rejected = g.events("upstream_rejected", all_runs=True)
        assert not rejected, "\n".join(e["raw"] for e in rejected)
        # Both drain: nothing queued in either spool in the end.
        g.wait_status(lambda p: p["queued"] == 0, timeout=gw.WAIT,
                      what="%s drained" % g.name)

    # The gateways saw the devices' own address (the test's end of the LAN), never the
    # balancer's, and the balancer's only in the header lines.
    for g in boxes.values():
        for e in g.events("device_connected", listener="devices", all_runs=True):
            assert e["peer"].startswith(lan.addr("host") + ":"), e["raw"]
        hdr = g.events("proxy_header", listener="devices", all_runs=True)
        assert hdr and all("from balancer %s:" % lan.addr("lb") in e["msg"] for e in hdr)

    t = tally(up.observer, boxes, load)
    print("test_99 many boxes: %.1fs; %d acked before the kill, %d in all; devices back on "
          "gwb %.2fs after it; gwa restarted with %d queued; devices re-sent %d PUBLISHes; "
          "%s" % (time.monotonic() - t0, acked_before, load.total_acked(), t_back - t_kill,
                  backlog, sum(d.resent for d in load.devices), t["summary"]))
    assert load.total_acked() == DEVICES * COUNT
    assert t["missing"] == {}, t["summary"]
    assert t["unexpected"] == {}, t["summary"]
    for name, per in t["per_gateway"].items():
        # (gateway, device, seq) names one reading; per gateway, the replayed backlog
        # comes first.
        assert per.seq_conflicts == [], (name, per.summary())
        assert per.order_errors == [], (name, per.summary())
    # Repeats: readings the devices sent again (the killed box had committed, not yet
    # acknowledged them) and upstream messages whose broker PUBACK or delete the kill lost.
    resent = sum(d.resent for d in load.devices)
    assert t["repeats"] - t["resent_upstream"] <= resent <= DEVICES * WINDOW, t["summary"]
    bound = 3 * INFLIGHT + DEVICES * RATE // 10
    assert t["resent_upstream"] <= bound, t["summary"]


def tally(observer, boxes, load):
    """Every reading of the load upstream, whichever gateway forwarded it: missing (acked,
    never arrived), unexpected (never published), repeats (arrivals beyond the first of a
    reading), and per gateway the Tally of test_81 for its order and seqs."""
    for g in boxes.values():  # a later reading through each: what came before has arrived
        g.upstream_barrier(listener_name="barrier", observer=observer)
    acked, published = load.acked(), load.published()
    names = {g.name for g in boxes.values()}
    seen = {d: [] for d in acked}
    for m in observer.messages(lambda m: m.get("gateway") in names and m.get("device") in seen
                               and "temperature_c" in (m.json or {})):
        seen[m.get("device")].append(gw.reading_number(m))
    missing = {d: sorted(set(acked[d]) - set(n)) for d, n in seen.items()
               if set(acked[d]) - set(n)}
    unexpected = {d: sorted(set(n) - published[d]) for d, n in seen.items()
                  if set(n) - published[d]}
    repeats = sum(len(n) - len(set(n)) for n in seen.values())
    empty = {d: [] for d in acked}
    per = {g.name: gw.Tally(observer, g.name, empty, published) for g in boxes.values()}
    resent_upstream = sum(p.resent_upstream for p in per.values())
    summary = ("acked %d, arrived %d, missing %s, unexpected %s, repeats %d (same gateway "
               "and seq %d); per gateway: %s" % (
                   sum(len(v) for v in acked.values()), sum(len(n) for n in seen.values()),
                   {d: v[:10] for d, v in missing.items()}, unexpected or "none", repeats,
                   resent_upstream,
                   {n: "arrived %d, order errors %d, seq conflicts %d" % (
                       p.total_arrived, len(p.order_errors), len(p.seq_conflicts))
                    for n, p in per.items()}))
    return {"missing": missing, "unexpected": unexpected, "repeats": repeats,
            "resent_upstream": resent_upstream, "per_gateway": per, "summary": summary}
