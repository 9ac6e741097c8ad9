"""Durable spool, disk full: the state directory is on a small tmpfs. With the upstream down
and devices publishing, a filler file takes every free block, so the spool's commits fail.
The gateway must keep running, log event=spool_full with the write error as the reason, and
hold the devices back (no PUBACK for what it could not commit, connections kept). Once the
filler is removed, the failed commit is retried (every second), event=spool_resumed follows,
the devices are read again, and when the upstream returns every acknowledged reading
arrives."""

import os
import time

import pytest

import gw

DEVICES = 3
RATE = 40
COUNT = 120        # per device; the load is stalled for a while in the middle
WINDOW = 10
FS_SIZE = "16m"       # more than a full WAL (1000 pages) before its checkpoint


@pytest.fixture
def small_fs(tmpfs):
    return tmpfs(FS_SIZE)


def test_disk_full_holds_devices_back_and_recovers(make_gateway, upstream, small_fs):
    filler = small_fs / "filler"
    upstream.stop()
    g = None
    try:
        g = make_gateway(upstream=upstream, spool_dir=small_fs / "state")
        g.wait_event("upstream_connect_failed")
        load = gw.Load(g.port(), DEVICES, COUNT, RATE, prefix="dev083", window=WINDOW)
        with load:
            load.wait_acked(DEVICES * RATE // 2)
            written = gw.fill_fs(filler)
            st = os.statvfs(small_fs)
            assert st.f_bavail == 0, "the filler (%d bytes) left %d blocks free" % (
                written, st.f_bavail)
            t_full = time.monotonic()
            full = g.wait_event("spool_full")
            took = time.monotonic() - t_full
            assert full[0]["level"] == "warning", full[0]["raw"]
            assert "write failed" in full[0]["msg"], full[0]["raw"]
            held = load.stalled_for(1.5)
            assert held is not None, "PUBACKs went on although commits fail (%d acked)" % (
                load.total_acked())
            for d in load.devices:
                assert d.connected, "%s lost its connection: %s" % (d.device_id, d.losses)
            assert g.running, "iotgw died when the disk was full"
            assert len(g.events("spool_full")) == 1, [e["raw"] for e in g.events("spool_full")]
            assert not g.events("spool_resumed")

            filler.unlink()
            res = g.wait_event("spool_resumed", timeout=gw.WAIT)
            assert res[0]["level"] == "notice", res[0]["raw"]
            load.wait_acked(held + DEVICES * WINDOW + 20)  # devices are read again
            upstream.start()
            g.wait_event("upstream_connected")
            load.wait_done(timeout=COUNT / RATE + gw.WAIT)
            load.check_health()
            t = gw.wait_tally(upstream.observer, g.name, load, timeout=gw.WAIT + 5)
        print("test_83: filler %d bytes; full after %.1fs, %d acked while full; %s"
              % (written, took, held, t.summary()))
        assert t.missing == {}, t.summary()
        assert t.unexpected == {}, t.summary()
        assert t.order_errors == [] and t.seq_conflicts == [], t.summary()
        assert t.total_duplicates == 0, t.summary()
    finally:
        if filler.exists():
            filler.unlink()
        if g is not None and g.running:
            g.stop()  # before the unmount: the spool files are open on the tmpfs
        if not upstream.running:
            upstream.start()
