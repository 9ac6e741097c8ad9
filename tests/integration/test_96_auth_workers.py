"""Password checks run on worker threads (issue 12): a wrong password costs a PBKDF2 run on a
worker, never the event loop, so devices are served while checks run; the checks waiting are
bounded (the rest are refused at once, CONNACK 3); and an address that keeps sending wrong
passwords waits before its passwords are checked again (auth_backoff_after)."""

import pytest

import gw

SLOW = 4_000_000  # iterations: about 1 s of one core per check (more on a busy machine)
FAST = 1000


def pwfile(tmp_path, iterations):
    return gw.pw_file(tmp_path / ("devices-%d.passwd" % iterations),
                      {"pwdev09": "right-password-09"}, iterations)


def connack_rc(c):
    pkt = c.read_packet(gw.WAIT)
    assert pkt[:2] == b"\x20\x02", pkt.hex(" ")
    return pkt[3]


def attempt(g, raw, password):
    c = raw(g.port("pw"))
    c.send(gw.connect_pkt("pwdev09", username="pwdev09", password=password))
    return c


def test_slow_wrong_passwords_do_not_stop_the_loop(make_gateway, upstream, raw, tmp_path):
    g = make_gateway(upstream=upstream, gateway={"connect_timeout": "120s"}, listeners=[
        gw.listener("pw", "off", password_file=str(pwfile(tmp_path, SLOW))),
        gw.listener("plain", "off")])
    bad = [attempt(g, raw, "wrong-%d" % i) for i in range(2)]
    # Once a later connection is logged, the gateway has read both CONNECTs and handed
    # their passwords to the workers (before: it had computed both, seconds, first).
    g.loop_barrier("plain")
    d = raw(g.port("plain"))
    d.connect("dev0960")
    d.send(gw.publish_pkt("esp/t", "21.5", qos=1, pid=1))
    d.expect(b"\x40\x02\x00\x01", what="PUBACK while two slow password checks run")
    for c in bad:
        assert c.available_packets() == [] and not c.closed, \
            "a password check finished before a device's PUBACK: it ran on the loop"
    for c in bad:
        assert connack_rc(c) == 4
    g.wait_event("auth_failed", count=2)


def test_checks_waiting_are_bounded(make_gateway, upstream, raw, tmp_path):
    g = make_gateway(upstream=upstream,
                     gateway={"auth_backoff_after": 0, "connect_timeout": "120s"}, listeners=[
        gw.listener("pw", "off", password_file=str(pwfile(tmp_path, SLOW))),
        gw.listener("plain", "off")])
    # 2 workers busy for seconds, 64 checks at most waiting or running: the 65th and 66th
    # are refused at once with 3 (server unavailable), the rest wait their turn. (Hanging
    # up drops the checks not started, so the test leaves no work behind.)
    conns = [attempt(g, raw, "wrong") for _ in range(66)]
    # No later connection is a barrier here: 66 pending connections take two accept
    # batches, so one made now may be served first. The log's order is the barrier: both
    # refusals are logged before any check has finished (no auth_failed before them).
    got = {}
    def two_answered():
        for c in conns:
            got.setdefault(c, []).extend(c.available_packets())
        a = [p[0] for p in got.values() if p]
        return a if len(a) >= 2 else None
    answered = gw.wait_until(two_answered, gw.WAIT, interval=0.05,
                             what="the refused connections answered")
    refused = [p for p in answered if p == b"\x20\x02\x00\x03"]
    assert len(refused) == 2, "%d of %d answered connections refused with 3" % (
        len(refused), len(answered))
    evs = g.events()
    refusals = [i for i, e in enumerate(evs) if e.get("event") == "connect_refused"]
    assert all("password checks already waiting" in evs[i]["msg"] for i in refusals), \
        [evs[i]["raw"] for i in refusals]
    assert len(refusals) == 2, [evs[i]["raw"] for i in refusals]
    finished = [i for i, e in enumerate(evs) if e.get("event") == "auth_failed"]
    assert not finished or finished[0] > refusals[-1], \
        "a password check finished before the 65th and 66th were refused: they waited"
    for c in conns:
        c.close()


def test_backoff_after_repeated_wrong_passwords(make_gateway, upstream, raw, tmp_path):
    g = make_gateway(upstream=upstream, gateway={"auth_backoff_after": 2}, listeners=[
        gw.listener("pw", "off", password_file=str(pwfile(tmp_path, FAST))),
        gw.listener("plain", "off")])
    for i in range(3):  # two free, the third starts a 1 s wait
        assert connack_rc(attempt(g, raw, "wrong-%d" % i)) == 4
    # The right password from that address is not even checked for now.
    assert connack_rc(attempt(g, raw, "right-password-09")) == 4
    ev = g.wait_event("auth_failed", count=4)[3]
    assert "too many wrong passwords from this address" in ev["msg"], ev["raw"]
    # After the wait it is checked again, and a success clears the address.
    def accepted():
        c = attempt(g, raw, "right-password-09")
        return connack_rc(c) == 0
    gw.wait_until(accepted, gw.WAIT, interval=0.2, what="the right password accepted again")
    assert connack_rc(attempt(g, raw, "wrong-again")) == 4
    assert connack_rc(attempt(g, raw, "right-password-09")) == 0
