"""sd_notify protocol (Type=notify): READY=1 with STATUS=, RELOADING=1 then READY=1 around
SIGHUP, STOPPING=1 on shutdown, WATCHDOG=1 every WATCHDOG_USEC/2."""

import time

import gw

STATES = ("READY", "RELOADING", "STOPPING")


def state_changes(datagrams):
    """The READY/RELOADING/STOPPING assignments in order, e.g. ['READY=1', 'RELOADING=1']."""
    out = []
    for d in datagrams:
        f = gw.notify_fields(d)
        for k in STATES:
            if k in f:
                out.append("%s=%s" % (k, f[k]))
    return out


def test_notify_sequence(make_gateway, upstream):
    g = make_gateway(upstream=upstream)
    msgs = g.notify.messages()
    first = [m for m in msgs if any(k in gw.notify_fields(m) for k in STATES)][0]
    f = gw.notify_fields(first)
    assert f.get("READY") == "1", "first state notification is %r" % first
    assert f.get("STATUS"), "READY=1 without STATUS=: %r" % first
    # Listeners are bound when READY=1 is sent.
    gw.wait_port("127.0.0.1", g.port(), 1)

    n = len(g.notify.messages())
    g.sighup()
    i = g.notify.wait_for(lambda m: gw.notify_fields(m).get("RELOADING") == "1", start=n,
                          what="RELOADING=1")
    g.notify.wait_for(lambda m: gw.notify_fields(m).get("READY") == "1", start=i + 1,
                      what="READY=1 after RELOADING=1")
    g.wait_event("config_reloaded")

    n = len(g.notify.messages())
    g.stop()
    g.notify.wait_for(lambda m: gw.notify_fields(m).get("STOPPING") == "1", start=n,
                      what="STOPPING=1", timeout=2)
    assert state_changes(g.notify.messages()) == ["READY=1", "RELOADING=1", "READY=1",
                                                  "STOPPING=1"]
    assert not any("WATCHDOG=1" in m.split("\n") for m in g.notify.messages()), \
        "WATCHDOG=1 sent without WATCHDOG_USEC"


def test_failed_reload_still_ends_reloading(make_gateway, upstream):
    g = make_gateway(upstream=upstream)
    g.write_config(g.render() + "\n[nonsense]\n")
    n = len(g.notify.messages())
    g.sighup()
    g.wait_event("config_reload_failed")
    time.sleep(0.2)  # let the reader thread collect what was sent before the log line
    if "RELOADING=1" in state_changes(g.notify.messages()[n:]):
        # The old config stays in force: the daemon must say READY=1 again.
        i = g.notify.wait_for(lambda m: gw.notify_fields(m).get("RELOADING") == "1", start=n)
        g.notify.wait_for(lambda m: gw.notify_fields(m).get("READY") == "1", start=i + 1,
                          what="READY=1 after a refused reload", timeout=2)
    changes = state_changes(g.notify.messages()[n:])
    assert changes in ([], ["RELOADING=1", "READY=1"]), changes


def test_watchdog(make_gateway, upstream):
    g = make_gateway(upstream=upstream, env={"WATCHDOG_USEC": "200000"})
    n = len(g.notify.messages())
    time.sleep(1.0)
    pings = [m for m in g.notify.messages()[n:] if "WATCHDOG=1" in m.split("\n")]
    # Every 100 ms; allow for a slow (ASan) build but demand a steady heartbeat.
    assert len(pings) >= 4, "%d WATCHDOG=1 in 1 s with WATCHDOG_USEC=200000" % len(pings)


def test_without_notify_socket(make_gateway, upstream, devices):
    g = make_gateway(upstream=upstream, notify=False)
    g.wait_event("gateway_ready")
    d = devices(g.port(), "dev0600")
    d.publish("esp/t", "21")
    upstream.wait_readings("dev0600", g.name)
