"""Durable spool, limit: with the upstream down, a spool of max_messages = 200 fills under the
load of 5 devices. The gateway then holds the devices back without dropping anything: their
PUBLISHes stop being acknowledged, their TCP connections stay open, nobody is refused or
disconnected, and event=spool_full is logged once for the episode, saying it is the limit.
When the upstream comes back: event=spool_resumed, and every acknowledged reading arrives."""

import socket

import gw

MAX = 200
DEVICES = 5
RATE = 40
COUNT = 100        # per device: 500 readings in all, more than the spool holds
WINDOW = 10


def test_limit_holds_devices_back_and_resumes(make_gateway, upstream, raw):
    upstream.stop()
    try:
        g = make_gateway(upstream=upstream, max_messages=MAX)
        g.wait_event("upstream_connect_failed")
        load = gw.Load(g.port(), DEVICES, COUNT, RATE, prefix="dev082", window=WINDOW)
        with load:
            full = g.wait_event("spool_full", timeout=gw.WAIT + MAX / (DEVICES * RATE))
            assert full[0]["level"] == "warning", full[0]["raw"]
            assert "limit" in full[0]["msg"], "spool_full does not say why: %s" % full[0]["raw"]
            # Barrier: with the upstream down, spool.db holds exactly the readings that were
            # committed, and each of those was PUBACKed at its commit. Once the devices have
            # that many PUBACKs, none is still on its way to them.
            # (--spool-stats reads the status file, rewritten every second: settled once it
            # says the spool is full.)
            queued = g.spool_stats_when(lambda s: s["full"] == "yes",
                                        "--spool-stats full: yes").int("queued")
            assert queued <= MAX, "%d queued with max_messages = %d" % (queued, MAX)
            load.wait_acked(queued)
            # Held back: no PUBACK for 1.5 s (more than one retry period of the spool).
            held = load.stalled_for(1.5)
            assert held is not None, "PUBACKs went on after spool_full (%d)" % load.total_acked()
            assert MAX * 0.9 <= held <= MAX, "%d readings PUBACKed with max_messages = %d" % (
                held, MAX)
            assert held == queued, (held, queued)
            g.spool_stats_when(lambda s: s.int("queued") == held, "--spool-stats queued: %d" % held)
            for d in load.devices:
                assert d.connected, "%s lost its connection: %s" % (d.device_id, d.losses)
            assert load.unacked() > 0, "no device is waiting for a PUBACK"
            # A device connecting now is not refused (it may have to wait for its CONNACK).
            late = raw(g.port())
            late.send(gw.connect_pkt("dev08299"))
            try:
                connack = late.read_packet(0.5)
            except socket.timeout:
                connack = None  # not read yet: the gateway holds devices back
            except gw.Closed as e:
                raise AssertionError("a device connecting while the spool is full was "
                                     "closed: %s" % e)
            assert connack in (None, gw.CONNACK_OK), "CONNACK %s while full" % connack.hex(" ")
            # One episode, one line.
            assert len(g.events("spool_full")) == 1, [e["raw"] for e in g.events("spool_full")]
            assert not g.events("spool_resumed")
            assert g.running
            upstream.start()
            g.wait_event("upstream_connected")
            res = g.wait_event("spool_resumed")
            assert res[0]["level"] == "notice", res[0]["raw"]
            if connack is None:
                late.expect(gw.CONNACK_OK, what="CONNACK after the spool resumed")
            load.wait_done(timeout=COUNT / RATE + gw.WAIT)
            load.check_health()
            t = gw.wait_tally(upstream.observer, g.name, load, timeout=gw.WAIT + 5,
                              barrier=g)
    finally:
        if not upstream.running:
            upstream.start()
    print("test_82: %d acked when full; %s" % (held, t.summary()))
    assert load.total_acked() == DEVICES * COUNT
    assert t.missing == {}, t.summary()
    assert t.unexpected == {}, t.summary()
    assert t.order_errors == [] and t.seq_conflicts == [], t.summary()
    # The full spool was drained by an upstream that never went away after it connected.
    assert t.total_duplicates == 0, t.summary()
    # The first spool_full line came before the resume; any later one is a new episode.
    evs = [e["event"] for e in g.events() if e["event"] in ("spool_full", "spool_resumed")]
    assert evs[:2] == ["spool_full", "spool_resumed"], evs


def test_at_the_limit_devices_take_turns(make_gateway, upstream, raw):
    """With the spool at its limit, the room the upstream frees goes to the held devices in
    turns (a round starts after the device the last one stopped at), not always to the
    first in the gateway's list: two devices with long queues both make progress."""
    import select
    import time
    n = 200
    upstream.stop()
    try:
        # One reading in flight upstream at a time: the devices, pipelining, fill the spool
        # faster than it drains, so it stays at its limit throughout.
        g = make_gateway(upstream=upstream, max_messages=40, upstream_opts={"inflight": 1})
        g.wait_event("upstream_connect_failed")
        devs = []
        for name in ("dev0821", "dev0822"):
            c = raw(g.port())
            c.connect(name)
            c.send(b"".join(gw.publish_pkt("esp/t", "21.5", qos=1, pid=i + 1)
                            for i in range(n)))
            devs.append(c)
        acked = [0, 0]

        def collect(timeout):
            ready, _, _ = select.select([d.sock for d in devs], [], [], timeout)
            for i, d in enumerate(devs):
                if d.sock in ready:
                    acked[i] += len(d.available_packets())
        # Full, and every reading in it acknowledged: the starting point.
        g.wait_event("spool_full")
        deadline = time.monotonic() + gw.WAIT
        while sum(acked) < 40 and time.monotonic() < deadline:
            collect(0.2)
        assert sum(acked) == 40, acked
        start = list(acked)
        upstream.start()
        other = None  # how far the other got while one went 100 further
        deadline = time.monotonic() + gw.WAIT * 3
        while sum(acked) < 2 * n and time.monotonic() < deadline:
            collect(1.0)
            for i in (0, 1):
                if other is None and acked[i] - start[i] >= 100:
                    other = acked[1 - i] - start[1 - i]
        assert acked == [n, n], acked
        assert other is not None and other >= 30, \
            "one device got 100 PUBACKs while the other got %s: no turns" % other
    finally:
        if not upstream.running:
            upstream.start()
