"""sd_notify protocol (Type=notify): READY=1 with STATUS=, RELOADING=1 then READY=1 around
SIGHUP, STOPPING=1 on shutdown, WATCHDOG=1 every WATCHDOG_USEC/2."""

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
    g.notify.sync()  # everything the exited daemon sent is collected
    assert state_changes(g.notify.messages()) == ["READY=1", "RELOADING=1", "READY=1",
                                                  "STOPPING=1"]
    assert not any("WATCHDOG=1" in m.split("\n") for m in g.notify.messages()), \
        "WATCHDOG=1 sent without WATCHDOG_USEC"


def test_failed_reload_still_ends_reloading(make_gateway, upstream, devices):
    g = make_gateway(upstream=upstream)
    good = g.conf.read_text()
    g.write_config(good + "\n[nonsense]\n")
    n = len(g.notify.messages())
    g.sighup()
    g.wait_event("config_reload_failed")
    # The old config stays in force ...
    d = devices(g.port(), "dev0601")
    d.publish("esp/t", "21")
    upstream.wait_readings("dev0601", g.name)
    # ... until the stop, which is the barrier: once STOPPING=1 and everything the exited
    # daemon sent before it are collected, so is whatever the failed reload sent.
    g.stop()
    g.notify.sync()
    changes = state_changes(g.notify.messages()[n:])
    # Nothing at all, or RELOADING=1 ended by READY=1: never a RELOADING=1 left open.
    assert changes in (["STOPPING=1"], ["RELOADING=1", "READY=1", "STOPPING=1"]), changes


def test_watchdog(make_gateway, upstream):
    g = make_gateway(upstream=upstream, env={"WATCHDOG_USEC": "200000"})
    n = len(g.notify.messages())
    pings = 21

    def heartbeat():
        got = [t for t, m in g.notify.times()[n:] if "WATCHDOG=1" in m.split("\n")]
        return got if len(got) >= pings else None
    got = gw.wait_until(heartbeat, what="%d WATCHDOG=1 with WATCHDOG_USEC=200000" % pings)
    # Every WATCHDOG_USEC / 2 = 100 ms, measured over 20 intervals: steady, not late (a
    # ping every 200 ms would let systemd's watchdog fire at the first delay) nor a flood.
    # Arrival times: a slow machine shifts single pings, hardly the mean of twenty.
    mean = (got[pings - 1] - got[0]) / (pings - 1)
    assert 0.05 <= mean <= 0.15, "WATCHDOG=1 every %.3f s on average (expected 0.1)" % mean


def test_without_notify_socket(make_gateway, upstream, devices):
    g = make_gateway(upstream=upstream, notify=False)
    g.wait_event("gateway_ready")
    d = devices(g.port(), "dev0600")
    d.publish("esp/t", "21")
    upstream.wait_readings("dev0600", g.name)


def test_long_start_extends_the_timeout(make_gateway, upstream, tmp_path):
    """A spool that remembers many devices takes a while to load: the daemon tells systemd
    (EXTEND_TIMEOUT_USEC with a STATUS= saying why) before READY=1, so TimeoutStartSec=
    does not kill a start that progresses."""
    import sqlite3
    state = tmp_path / "state"
    state.mkdir()
    db = sqlite3.connect(str(state / "spool.db"))
    db.execute("CREATE TABLE device_seq(device TEXT PRIMARY KEY, seq INTEGER NOT NULL) "
               "WITHOUT ROWID")
    db.executemany("INSERT INTO device_seq VALUES (?, ?)",
                   (("dev%06d" % i, i) for i in range(140_000)))
    db.commit()
    db.close()
    g = make_gateway(upstream=upstream, spool_dir=state)
    msgs = g.notify.messages()
    ready = next(i for i, m in enumerate(msgs) if gw.notify_fields(m).get("READY") == "1")
    ext = [gw.notify_fields(m) for m in msgs[:ready] if "EXTEND_TIMEOUT_USEC" in
           gw.notify_fields(m)]
    assert ext and ext[0]["STATUS"] == "opening the spool", ext
    loading = [f for f in ext if f["STATUS"].startswith("loading device sequence numbers")]
    assert len(loading) == 2, ext  # every 65536 of the 140 000
    assert all(int(f["EXTEND_TIMEOUT_USEC"]) >= 10_000_000 for f in ext), ext
    g.wait_event("spool_open")
    assert "140000 device(s) known" in g.events("spool_open")[0]["msg"]
