"""Durable spool, its own readings fill the disk: the state directory is a 4 MiB tmpfs and the
upstream is down, so the spool itself grows until the file system is nearly full. Nothing
else takes the space, so nothing else will ever give it back: the gateway must stop taking
readings while it still has room for the deletes and the WAL checkpoints (the free-space
reserve, [spool] min_free, at most a quarter of the file system), hold the devices back
without a failed write, survive a restart in that state, and recover by itself once the
upstream returns and drains the backlog. Every acknowledged reading arrives.

Regression: the spool used to fill the file system completely (ENOSPC after about 540
readings, most of the space in the WAL); then the deletes of what the upstream had taken
could not be committed either, and the gateway stayed wedged, restart or not."""

import os

import pytest

import gw

DEVICES = 5
COUNT = 5000       # per device: more than 4 MiB of spool
RATE = 2000
WINDOW = 20
FS_SIZE = "4m"


@pytest.fixture
def tiny_fs(tmpfs):
    return tmpfs(FS_SIZE)


def test_spool_filling_its_own_disk_holds_back_and_recovers(make_gateway, upstream, tiny_fs):
    upstream.stop()
    g = None
    try:
        g = make_gateway(upstream=upstream, spool_dir=tiny_fs / "state",
                         max_messages=1000000, max_bytes="1G")
        g.wait_event("upstream_connect_failed")
        load = gw.Load(g.port(), DEVICES, COUNT, RATE, prefix="dev085", window=WINDOW)
        with load:
            full = g.wait_event("spool_full", timeout=gw.WAIT + 20)
            assert "free space" in full[0]["msg"], full[0]["raw"]
            assert "min_free" in full[0]["msg"], full[0]["raw"]
            held = load.stalled_for(1.5)
            assert held is not None, "PUBACKs went on with the disk nearly full"
            assert 1000 < held < DEVICES * COUNT, held
            st = os.statvfs(tiny_fs)
            assert st.f_bavail * st.f_frsize >= 512 * 1024, (
                "the reserve was not kept: %d bytes free" % (st.f_bavail * st.f_frsize))
            for d in load.devices:
                assert d.connected, "%s lost its connection: %s" % (d.device_id, d.losses)

            # A restart in this state: the spool opens, replays nothing yet (upstream down)
            # and holds the devices back again.
            g.stop()
            g.start()
            ev = g.wait_event("spool_open")
            assert "queued" in ev[0]["msg"], ev[0]["raw"]
            g.wait_event("spool_full", timeout=gw.WAIT)
            assert load.stalled_for(1.0) is not None

            upstream.start()
            g.wait_event("upstream_connected")
            g.wait_event("spool_resumed", timeout=gw.WAIT + 20)
            load.wait_done(timeout=gw.WAIT + 60)
            load.check_health(allow_losses=True)
            t = gw.wait_tally(upstream.observer, g.name, load, timeout=gw.WAIT + 20)
        failed = g.events("spool_write_failed", all_runs=True)
        print("test_85: %d acked when held; %s; write failures: %d"
              % (held, t.summary(), len(failed)))
        assert not failed, "the reserve did not prevent a failed write:\n" + \
            "\n".join(e["raw"] for e in failed)
        assert t.missing == {}, t.summary()
        assert t.unexpected == {}, t.summary()
        assert t.order_errors == [] and t.seq_conflicts == [], t.summary()
    finally:
        if g is not None and g.running:
            g.stop()  # before the unmount: the spool files are open on the tmpfs
        if not upstream.running:
            upstream.start()
