"""The WAL's checkpoints run on the spool's flush thread, never on the event loop (issue 8,
item 2). SQLite syncs the WAL and the database in every checkpoint; run inside a commit, as
its automatic checkpoint is, those syncs stopped every device for as long as the disk took
(0.3-1 s on an SD card). strace, attached to the running gateway, names the thread of every
sync: the database file is synced by checkpoints only, and never by the loop's thread."""

import re
import select
import subprocess
import time

import gw

SYNC = re.compile(r"^(\d+)\s+(fsync|fdatasync)\((\d+)<([^>]*)>\)\s+=\s+(-?\d+)")


def attach_strace(pid, out):
    """strace -f on every thread of pid, syncs only, each with its thread id and the path of
    its descriptor (-y); returns once strace says it is attached ("Process N attached with M
    threads")."""
    p = subprocess.Popen(["strace", "-f", "-y", "-e", "trace=fsync,fdatasync", "-e",
                          "signal=none", "-o", str(out), "-p", str(pid)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    said = []
    deadline = time.monotonic() + gw.WAIT
    while time.monotonic() < deadline:
        ready, _, _ = select.select([p.stderr], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        line = p.stderr.readline()
        if not line:
            break
        said.append(line)
        if "attached" in line:
            return p
    p.kill()
    p.wait()
    raise AssertionError("strace did not attach to %d: %s" % (pid, "".join(said)))


def syncs_of(trace):
    """{path: [(thread id, call, result)]} from strace's output so far."""
    out = {}
    for m in map(SYNC.match, trace.read_text().splitlines()):
        if m:
            tid, call, _fd, path, rc = m.groups()
            out.setdefault(path, []).append((int(tid), call, int(rc)))
    return out


def test_checkpoint_syncs_are_not_on_the_loop(make_gateway, upstream, raw, tmp_path):
    mport = gw.free_port()
    # A reserve of 256 KiB: a checkpoint once the WAL holds 16 pages.
    g = make_gateway(upstream=upstream, spool={"min_free": "256K"},
                     extra="[metrics]\nbind = 127.0.0.1:%d\n" % mport)
    trace = tmp_path / "strace.out"
    st = attach_strace(g.pid, trace)
    try:
        c = raw(g.port())
        c.connect("dev0880")
        # One reading at a time: each its own commit of at least a page, so a few hundred
        # readings cross the checkpoint threshold many times.
        for n in range(1, 301):
            c.send(gw.publish_pkt("esp/t", gw.reading_payload(n), qos=1, pid=n))
            c.expect(b"\x40\x02" + n.to_bytes(2, "big"), what="PUBACK %d" % n)
        # The database file is synced by checkpoints only: wait for three.
        db = str(g.state_dir / "spool.db")
        gw.wait_until(lambda: len(syncs_of(trace).get(db, ())) >= 3,
                      what="three syncs of spool.db (checkpoints)")
    finally:
        st.terminate()
        st.wait(timeout=gw.WAIT)
    by_file = syncs_of(trace)
    on_loop = {path: sum(tid == g.pid for tid, _, _ in calls) for path, calls in by_file.items()}
    on_loop = {path: n for path, n in on_loop.items() if n}
    assert not on_loop, "syncs on the event loop's thread (%d), by file: %s (all: %s)" % (
        g.pid, on_loop, {path: len(calls) for path, calls in by_file.items()})
    assert all(rc == 0 for calls in by_file.values() for _, _, rc in calls), by_file
    gw.wait_metric(mport, "iotgw_spool_checkpoints_total", lambda v: v and v >= 3)
    gw.wait_metric(mport, "iotgw_spool_checkpoint_failures_total", lambda v: v == 0)
    upstream.wait_readings("dev0880", g.name, count=300)
