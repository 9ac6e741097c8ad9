"""Durable spool, upstream outage under load: several devices publish numbered QoS 1 readings
at a steady rate while the upstream broker is stopped for about 3 s and started again. Every
reading a device saw PUBACKed must arrive upstream, per device in order (after dropping
repeats), none missing; the devices are never disconnected."""

import time

import gw

DEVICES = 5
RATE = 40          # readings/s per device
COUNT = 240        # per device: 6 s of load
INFLIGHT = 16      # [upstream] inflight: bounds the re-sent upstream messages


def test_outage_under_steady_load_loses_nothing(make_gateway, upstream):
    g = make_gateway(upstream=upstream, upstream_opts={"inflight": INFLIGHT})
    g.wait_event("upstream_connected")
    load = gw.Load(g.port(), DEVICES, COUNT, RATE, prefix="dev080")
    t0 = time.monotonic()
    with load:
        load.wait_acked(DEVICES * RATE * 1)      # about 1 s into the load
        before = load.total_acked()
        upstream.stop()
        try:
            g.wait_event("upstream_down")
            # The outage lasts until 3 s worth of readings more were acknowledged: the spool
            # takes readings while the upstream is down (the devices are not stalled; if
            # they were, this times out). On a machine that keeps up that is 3 s.
            load.wait_acked(before + DEVICES * RATE * 3, timeout=COUNT / RATE + gw.WAIT)
            during = load.total_acked() - before
            assert not upstream.running
        finally:
            upstream.start()
        g.wait_event("upstream_connected", count=2)
        load.wait_done(timeout=COUNT / RATE + gw.WAIT)
        load.check_health()
        # Every reading is valid and small: the broker can take each one, nothing is dropped
        # (a publish failing because the connection is going away is not a rejection).
        rejected = g.events("upstream_rejected")
        assert not rejected, "acknowledged readings dropped:\n" + "\n".join(
            e["raw"] for e in rejected)
        t = gw.wait_tally(upstream.observer, g.name, load, timeout=gw.WAIT + 5, barrier=g)
    print("test_80: %.1fs, %d readings acked (%d while upstream was down); %s"
          % (time.monotonic() - t0, load.total_acked(), during, t.summary()))
    assert load.total_acked() == DEVICES * COUNT
    assert t.missing == {}, t.summary()
    assert t.unexpected == {}, t.summary()
    assert t.order_errors == [], t.summary()
    assert t.seq_conflicts == [], t.summary()
    # Repeats can only be upstream messages in flight when the broker went away (same seq);
    # the devices never had to send anything twice.
    assert t.resent_device == 0 and t.resent_upstream <= INFLIGHT, t.summary()
    assert g.running
