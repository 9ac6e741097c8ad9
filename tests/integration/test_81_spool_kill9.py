"""Durable spool, crash: iotgw is killed with SIGKILL in the middle of a steady load and
started again at once on the same state directory (what systemd's Restart= does). The
devices reconnect and re-send what was not acknowledged. Every reading a device saw
PUBACKed, before or after the crash, must arrive upstream at least once; repeats are counted
and bounded; the per-device seq is never reused and continues above the pre-crash values."""

import re
import time

import pytest

import gw

DEVICES = 5
RATE = 40
COUNT = 160        # per device: 4 s of load
WINDOW = 10        # unacknowledged PUBLISHes per device
INFLIGHT = 16      # [upstream] inflight


@pytest.mark.parametrize("backlog", [False, True], ids=["upstream-up", "upstream-down"])
def test_kill9_under_load_loses_no_acked_reading(make_gateway, upstream, backlog):
    # upstream-up: the spool is nearly empty, readings and upstream messages are in flight.
    # upstream-down: the broker is stopped 1 s before the kill, so the killed process leaves
    # a backlog of about 200 acknowledged readings that only exist in spool.db.
    g = make_gateway(upstream=upstream, upstream_opts={"inflight": INFLIGHT},
                     name="gw-t81-%s" % ("backlog" if backlog else "nobacklog"))
    g.wait_event("upstream_connected")
    load = gw.Load(g.port(), DEVICES, COUNT, RATE, prefix="dev081%d" % backlog, window=WINDOW)
    t0 = time.monotonic()
    try:
        with load:
            load.wait_acked(DEVICES * RATE * 1)          # about 1 s into the load
            if backlog:
                upstream.stop()
            load.wait_acked(DEVICES * RATE * 2)          # about 2 s into the load
            # Die with readings in flight: each device sends a window's worth at once, and
            # the kill lands while some are read, some committed, some acknowledged.
            load.burst(WINDOW)
            acked_before = load.total_acked()
            g.kill9()
            t_kill = time.monotonic()
            g.start()
            t_restart = time.monotonic()
            ev = g.wait_event("spool_open")
            if backlog:
                # "spool DIR/spool.db: N queued (oldest Ss), durability fsync"
                m = re.search(r"(\d+) queued", ev[0]["msg"])
                assert m and int(m.group(1)) >= 100, ev[0]["raw"]
                # The restarted gateway meets the broker still down; the backlog goes out
                # after a reconnect.
                g.wait_event("upstream_connect_failed")
                upstream.start()
            load.wait_done(timeout=COUNT / RATE + gw.WAIT)
    finally:
        if not upstream.running:
            upstream.start()
    load.check_health(allow_losses=True)
    # Every reading is valid and small: the broker can take each one, nothing is dropped
    # (a publish failing because the connection is going away is not a rejection).
    rejected = g.events("upstream_rejected", all_runs=True)
    assert not rejected, "acknowledged readings dropped:\n" + "\n".join(e["raw"] for e in rejected)
    # The observer (gw.SupervisedClient) reconnects after whatever the broker's stop did to
    # its socket, so what is missing here is missing upstream; late repeats are counted up
    # to a barrier reading published afterwards.
    t = gw.wait_tally(upstream.observer, g.name, load, timeout=gw.WAIT + 5, barrier=g)
    print("test_81 %s: %.1fs; %d acked before the kill, %d in all; restart took %.2fs; "
          "devices re-sent %d PUBLISHes; observer loop errors %r; %s"
          % ("backlog" if backlog else "no backlog", time.monotonic() - t0, acked_before,
             load.total_acked(), t_restart - t_kill, sum(d.resent for d in load.devices),
             [e for _, e in upstream.observer.c.loop_errors], t.summary()))

    # Every device saw the crash and came back.
    for d in load.devices:
        assert d.losses, "%s did not lose its connection at the kill" % d.device_id
        assert d.connects >= 2, d.snapshot()
    assert load.total_acked() == DEVICES * COUNT
    assert t.missing == {}, t.summary()
    assert t.unexpected == {}, t.summary()
    # Repeats with a new seq: readings committed but not yet PUBACKed when the process died,
    # which the devices sent again; never more than they re-sent (at most their windows).
    resent = sum(d.resent for d in load.devices)
    assert t.resent_device <= resent <= DEVICES * WINDOW, t.summary()
    # Repeats with the same seq: upstream messages sent but whose deletion was not
    # committed (in flight, or acknowledged by the broker while its delete waited to share a
    # commit: at most 50 ms, about DEVICES * RATE / 20 here; twice that for a slow loop)
    # when the process died, plus, with the broker stopped first, those in flight then.
    bound = 2 * INFLIGHT + DEVICES * RATE // 10 + (INFLIGHT if backlog else 0)
    assert t.resent_upstream <= bound, "%d repeats > %d: %s" % (t.resent_upstream, bound,
                                                               t.summary())
    # The replayed backlog comes first: first arrivals stay in order, per device.
    assert t.order_errors == [], t.summary()
    # A seq names one reading only, also across the crash ...
    assert t.seq_conflicts == [], t.summary()
    # ... and readings first published after the restart got seqs above every reading the
    # killed process had committed (at least those it had PUBACKed).
    first_sent = load.first_sent()
    seq_before = {}
    for d in load.devices:
        before_kill = {n for n, at in d.ack_time.items() if at < t_kill}
        assert before_kill, "%s: nothing PUBACKed before the kill" % d.device_id
        seq_before[d.device_id] = max(s for n, s in t.arrivals[d.device_id] if n in before_kill)
    for dev, arr in t.arrivals.items():
        after = [(n, s) for n, s in arr if first_sent[dev].get(n, 0) > t_restart]
        assert after, "%s published nothing after the restart" % dev
        low = min(s for _, s in after)
        assert low > seq_before[dev], (
            "%s: seq %d after the restart, but the killed process had reached seq %d"
            % (dev, low, seq_before[dev]))
