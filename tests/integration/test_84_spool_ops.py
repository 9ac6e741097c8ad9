"""Durable spool, operations: `iotgw --spool-stats`, the STATUS= line, event=spool_open and
replay after a restart, the state-directory lock, the database kept to the running gateway,
durability = os, QoS 0 readings, and a PUBACK (PUBREC) that is only sent once the reading is
committed (kill -9 right after it)."""

import os
import re
import signal
import sqlite3

import pytest

import gw


def publish_numbered(d, first, last, qos=1):
    """Readings first..last (payload n/100) from a paho device, each acknowledged."""
    for n in range(first, last + 1):
        d.publish("esp/t", gw.reading_payload(n), qos=qos)


def numbers(msgs):
    return [gw.reading_number(m) for m in msgs]


def spool_open_count(g, durability):
    """event=spool_open of the current process: "spool DIR/spool.db: N queued (oldest Ss),
    durability D"; returns N."""
    ev = g.wait_event("spool_open")[0]
    assert ev["level"] == "info", ev["raw"]
    assert str(g.state_dir / "spool.db") in ev["msg"], ev["raw"]
    assert re.search(r"durability %s\b" % durability, ev["msg"]), ev["raw"]
    m = re.search(r"(\d+) queued \(oldest \d+s\)", ev["msg"])
    assert m, ev["raw"]
    return int(m.group(1))


def test_spool_stats_status_and_replay_after_restart(make_gateway, upstream, devices):
    K = 25
    upstream.stop()
    try:
        g = make_gateway(upstream=upstream)
        assert spool_open_count(g, "fsync") == 0
        assert (g.state_dir / "spool.db").exists()
        assert (g.state_dir.stat().st_mode & 0o777) == 0o700, oct(g.state_dir.stat().st_mode)
        d = devices(g.port(), "dev0840")
        publish_numbered(d, 1, K)

        s = g.spool_stats_when(lambda s: s.int("queued") == K, "--spool-stats queued: %d" % K)
        assert s["spool"] == str(g.state_dir / "spool.db"), s
        assert s.int("bytes") > K * 100, s  # topic + JSON of each reading
        assert s.int("oldest_age_s") >= 0, s
        assert s.int("devices") == 1, s
        assert s["daemon"] == "running (pid %d)" % g.pid, s

        # STATUS= (every 5 s): 25 single-reading commits, each fsynced.
        st = g.wait_status(lambda p: p["queued"] == K, timeout=7, what="STATUS= with 25 queued")
        assert st["connections"] == 1 and st["readings"] == K and st["rejected"] == 0, st
        assert st["upstream"] != "connected" and not st["full"], st
        assert st["commits"] >= K, st
        assert st["fsyncs"] >= st["commits"], "durability fsync: %s" % st["text"]

        # The status file (rewritten every second) through --spool-stats.
        def stats_with_readings():
            s = g.spool_stats()
            return s if s.fields.get("readings_total") == str(K) else None
        s = gw.wait_until(stats_with_readings, timeout=7, interval=0.2,
                          what="--spool-stats readings_total: %d" % K)
        for key in ("upstream", "connections", "commits_total", "fsyncs_total", "full"):
            assert key in s.fields, s
        assert s["full"] == "no", s
        assert s.int("connections") == 1, s
        assert s.int("fsyncs_total") >= s.int("commits_total") >= K, s
        status = g.status_file()
        assert status.get("pid") == str(g.pid), status
        assert status.get("queued") == str(K), status

        # Stopped: still readable, the backlog is kept on disk.
        g.stop()
        s = g.spool_stats()
        assert s.rc == 0, s
        assert s["daemon"] == "not running", s
        assert s.int("queued") == K, s
        assert s.int("devices") == 1, s

        # Restarted with the backlog: counted at start-up, and new readings are accepted
        # (the upstream is still down) behind it.
        g.start()
        assert spool_open_count(g, "fsync") == K
        d.close()
        d = devices(g.port(), "dev0840")
        publish_numbered(d, K + 1, K + 5)
    finally:
        upstream.start()
    got = upstream.wait_readings("dev0840", g.name, count=K + 5, timeout=gw.WAIT + 5)
    assert numbers(got) == list(range(1, K + 6)), numbers(got)
    assert [m.get("seq") for m in got] == list(range(1, K + 6))
    gw.wait_until(lambda: g.spool_stats().fields.get("queued") == "0", timeout=gw.WAIT,
                  what="--spool-stats queued: 0 after the replay")


def test_spool_stats_without_a_spool(make_gateway, tmp_path):
    g = make_gateway(start=False, spool_dir=tmp_path / "nothing-here")
    s = g.spool_stats()
    assert s.rc == 1, s
    assert s.stderr.startswith("iotgw: cannot open spool"), s
    assert str(tmp_path / "nothing-here") in s.stderr, s
    assert not (tmp_path / "nothing-here" / "spool.db").exists(), \
        "--spool-stats created a spool"


def test_second_instance_on_the_same_state_dir_refuses(make_gateway, upstream, devices):
    a = make_gateway(upstream=upstream)
    b = make_gateway(upstream=upstream, start=False, spool_dir=a.state_dir)
    b.start(wait_ready=False)
    rc = b.wait_exit()
    assert rc != 0, "a second iotgw started on %s" % a.state_dir
    b.notify.sync()  # everything the exited daemon sent is collected
    assert not any("READY=1" in m.split("\n") for m in b.notify.messages())
    text = b.log_text()
    assert str(a.state_dir) in text, "the refusal does not name the state directory:\n" + text
    assert re.search(r"lock|in use|already|another", text, re.I), text
    # The first one is not disturbed.
    assert a.running
    d = devices(a.port(), "dev0841")
    d.publish("esp/t", "21.5")
    upstream.wait_readings("dev0841", a.name)
    assert a.spool_stats()["daemon"] == "running (pid %d)" % a.pid


def test_durability_os(make_gateway, upstream, devices):
    K = 20
    upstream.stop()
    try:
        g = make_gateway(upstream=upstream, durability="os")
        assert spool_open_count(g, "os") == 0
        d = devices(g.port(), "dev0842")
        publish_numbered(d, 1, K)
        st = g.wait_status(lambda p: p["queued"] == K, timeout=7, what="STATUS= with 20 queued")
        assert st["commits"] >= K, st
        # synchronous=NORMAL: a commit does not wait for the disk.
        assert st["fsyncs"] < st["commits"], "durability os: %s" % st["text"]
        # Survives the death of the process right after the PUBACK.
        d.publish("esp/t", gw.reading_payload(K + 1))
        g.kill9()
        g.start()
        assert spool_open_count(g, "os") == K + 1
    finally:
        upstream.start()
    got = upstream.wait_readings("dev0842", g.name, count=K + 1, timeout=gw.WAIT + 5)
    assert numbers(got) == list(range(1, K + 2))
    assert [m.get("seq") for m in got] == list(range(1, K + 2))


@pytest.mark.parametrize("durability", ["fsync", "os"])
def test_acknowledged_reading_survives_kill9_right_after_the_ack(make_gateway, upstream, raw,
                                                                durability):
    # The PUBACK (QoS 1) / PUBREC (QoS 2) leaves only after the commit: SIGKILL as soon as it
    # is read loses nothing. Three rounds, the last one QoS 2.
    dev = "dev0843" if durability == "fsync" else "dev0844"
    upstream.stop()
    try:
        g = make_gateway(upstream=upstream, durability=durability)
        for n, qos in ((1, 1), (2, 1), (3, 2)):
            c = raw(g.port())
            c.connect(dev)
            c.send(gw.publish_pkt("esp/t", gw.reading_payload(n), qos=qos, pid=n))
            ack = bytes([0x40 if qos == 1 else 0x50, 2, 0, n])
            c.expect(ack, what="PUBACK" if qos == 1 else "PUBREC")
            os.kill(g.pid, signal.SIGKILL)
            g.kill9()
            c.close()
            g.start()
            assert spool_open_count(g, durability) == n
    finally:
        upstream.start()
    got = upstream.wait_readings(dev, g.name, count=3, timeout=gw.WAIT + 5)
    assert numbers(got) == [1, 2, 3]
    assert [m.get("seq") for m in got] == [1, 2, 3]


def test_the_running_gateway_keeps_its_database_to_itself(make_gateway, upstream, raw):
    """locking_mode = EXCLUSIVE (issue 8, item 2): SQLite keeps its file locks from one
    transaction to the next and the WAL index in the gateway's memory, so commits make no
    fcntl calls, no -shm file exists, and no other process can read spool.db while the
    gateway runs; --spool-stats answers from the status file, and once the gateway is gone
    the database is anyone's again."""
    upstream.stop()
    try:
        g = make_gateway(upstream=upstream)
        c = raw(g.port())
        c.connect("dev0846")
        c.send(gw.publish_pkt("esp/t", gw.reading_payload(1), qos=1, pid=3))
        c.expect(b"\x40\x02\x00\x03", what="PUBACK")
        db_path = g.state_dir / "spool.db"
        assert not (g.state_dir / "spool.db-shm").exists(), "a shared-memory WAL index"
        db = sqlite3.connect(str(db_path), timeout=0.2)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                db.execute("SELECT count(*) FROM spool").fetchone()
        finally:
            db.close()
        s = g.spool_stats_when(lambda s: s.int("queued") == 1, "--spool-stats queued: 1")
        assert s["daemon"] == "running (pid %d)" % g.pid, s
        assert s["top_devices"] == "dev0846=1", s
        c.close()
        g.stop()
        db = sqlite3.connect(str(db_path), timeout=2)
        try:
            assert db.execute("SELECT count(*) FROM spool").fetchone() == (1,)
        finally:
            db.close()
        s = g.spool_stats()
        assert s["daemon"] == "not running" and s.int("queued") == 1, s
        assert s["top_devices"] == "dev0846=1", s
    finally:
        upstream.start()


def test_qos0_readings_are_spooled_and_forwarded(make_gateway, upstream, raw):
    upstream.stop()
    try:
        g = make_gateway(upstream=upstream)
        c = raw(g.port())
        c.connect("dev0845")
        for n in range(1, 11):
            c.send(gw.publish_pkt("esp/t", gw.reading_payload(n), qos=0))
        # Read in order and committed together at the latest with this QoS 1 one.
        c.send(gw.publish_pkt("esp/t", gw.reading_payload(11), qos=1, pid=7))
        c.expect(b"\x40\x02\x00\x07", what="PUBACK")
        g.spool_stats_when(lambda s: s.int("queued") == 11, "--spool-stats queued: 11")
        g.kill9()
        g.start()
        assert spool_open_count(g, "fsync") == 11
    finally:
        upstream.start()
    got = upstream.wait_readings("dev0845", g.name, count=11, timeout=gw.WAIT + 5)
    assert numbers(got) == list(range(1, 12))
    assert [m.get("seq") for m in got] == list(range(1, 12))
