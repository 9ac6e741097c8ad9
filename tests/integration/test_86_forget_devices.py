"""[spool] forget_devices_after (issue 12): the device table and its sequence numbers do not
grow for ever with client ids that come once; a device not seen for that long is forgotten
(its seq starts again at 1), one that keeps coming is not; and a spool from before the
last-seen column is upgraded in place, keeping every device's seq."""

import sqlite3

import gw


def seqs(upstream, g, device):
    return [m.get("seq") for m in upstream.readings(device, g.name)]


def test_idle_devices_are_forgotten_active_ones_kept(make_gateway, upstream):
    g = make_gateway(upstream=upstream, spool={"forget_devices_after": "2s"})
    g.pub("dev0990", "esp/t", "20")
    g.pub("dev0991", "esp/t", "20")
    upstream.wait_readings("dev0991", g.name)

    # dev0991 keeps publishing; dev0990 goes quiet until the gateway has forgotten it.
    def forgot():
        g.pub("dev0991", "esp/t", "21")
        return [e for e in g.events("devices_forgotten") if "forgot 1 device" in e["msg"]]
    gw.wait_until(forgot, gw.WAIT, interval=0.5, what="dev0990 forgotten")
    g.pub("dev0990", "esp/t", "22")
    upstream.wait_readings("dev0990", g.name, count=2)
    assert seqs(upstream, g, "dev0990") == [1, 1]  # starts again
    got = seqs(upstream, g, "dev0991")
    assert got == list(range(1, len(got) + 1)), got  # never reset


def test_old_spool_is_upgraded_keeping_seqs(make_gateway, upstream, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    db = sqlite3.connect(str(state / "spool.db"))
    db.execute("CREATE TABLE device_seq(device TEXT PRIMARY KEY, seq INTEGER NOT NULL) "
               "WITHOUT ROWID")
    db.execute("INSERT INTO device_seq VALUES ('dev0992', 41)")
    db.commit()
    db.close()
    g = make_gateway(upstream=upstream, spool_dir=state)
    g.pub("dev0992", "esp/t", "20")
    assert [m.get("seq") for m in upstream.wait_readings("dev0992", g.name)] == [42]
    g.stop()
    db = sqlite3.connect(str(state / "spool.db"))
    (seen,) = db.execute("SELECT last_seen_ms FROM device_seq WHERE device = 'dev0992'").fetchone()
    db.close()
    assert seen > 1_700_000_000_000, seen
