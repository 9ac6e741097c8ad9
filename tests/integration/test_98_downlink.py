"""Downlink (issue 11): commands published on the upstream broker reach the device they name,
through the gateway, with the delivery rules of docs/downlink.md: only the device's own
commands, QoS 1 with redelivery (DUP) to a clean-session-0 device that reconnects, held for an
offline device until command_ttl and reported expired after it, kept across a gateway restart
and an upstream reconnect, and every outcome reported upstream on the status topic.

Real parts: the upstream is mosquitto, commands are sent with mosquitto_pub over mutual TLS,
devices are paho clients over mutual TLS or raw sockets where the test needs to see the bytes
(packet ids, the DUP flag)."""

import json
import subprocess
import threading

import pytest

import gw

CMD_TOPIC = "commands/{gateway}/{device}/{command}"
WATSON = "iot-2/cmd/+/fmt/+"


def downlink(**kw):
    opts = {"topic": CMD_TOPIC, "status_topic": "{topic}/status"}
    opts.update(kw)
    return "[downlink]\n" + "\n".join("%s = %s" % kv for kv in opts.items()) + "\n"


def send_command(g, device, command, payload, upstream):
    """mosquitto_pub on the upstream broker, as a cloud application would."""
    pki = upstream.pki
    topic = "commands/%s/%s/%s" % (g.name, device, command)
    r = subprocess.run([gw.MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(upstream.port),
                        "--cafile", pki.pem("upstream-ca"), "--cert", pki.pem("observer"),
                        "--key", pki.key("observer"), "-i", gw.unique("cloud-"), "-q", "1",
                        "-t", topic, "-m", payload], capture_output=True, text=True,
                       timeout=gw.WAIT)
    assert r.returncode == 0, "mosquitto_pub failed: %s%s" % (r.stdout, r.stderr)
    return topic


def subscribed(g):
    """g once the broker granted its downlink subscription: a command published before
    that reaches no one (no broker keeps messages for a subscription not made yet)."""
    ev = g.wait_event("downlink_subscribed")
    assert "commands can arrive" in ev[0]["msg"], ev[0]["raw"]
    return g


def wait_status(upstream, topic, status, count=1):
    msgs = upstream.observer.wait_for(
        lambda m: m.topic == topic + "/status" and m.get("status") == status,
        count=count, what="status %s on %s/status" % (status, topic))
    return msgs[-1].json


class Receiver:
    """A paho device that subscribes and collects what it receives."""

    def __init__(self, d, filters=((WATSON, 1),)):
        self.d = d
        self.got = []
        self.cond = threading.Condition()
        self.granted = None
        acked = threading.Event()

        def on_subscribe(c, u, mid, granted):
            self.granted = list(granted)
            acked.set()

        def on_message(c, u, msg):
            with self.cond:
                self.got.append((msg.topic, bytes(msg.payload), msg.qos))
                self.cond.notify_all()
        d.c.on_subscribe = on_subscribe
        d.c.on_message = on_message
        d.c.subscribe(list(filters))
        assert acked.wait(gw.WAIT), "no SUBACK"

    def wait(self, count=1):
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.got) >= count, gw.WAIT)
        assert ok, "device %s received %r, wanted %d" % (self.d.client_id, self.got, count)
        return self.got


def mtls_device(devices, g, name, **kw):
    return devices(g.port(), name, host="localhost", tls=g.pki.client_ctx(cert=name), **kw)


@pytest.fixture
def gwd(make_gateway, upstream):
    return subscribed(make_gateway(upstream=upstream,
                                   listeners=[gw.listener("m", "mutual"),
                                              gw.listener("plain", "off")],
                                   extra=downlink()))


def test_command_reaches_its_device_only(gwd, upstream, devices):
    g = gwd
    r1 = Receiver(mtls_device(devices, g, "dev0001"))
    r2 = Receiver(mtls_device(devices, g, "dev0002"))
    assert r1.granted == [1] and r2.granted == [1]
    topic = send_command(g, "dev0001", "display", '{"led":"red"}', upstream)
    assert r1.wait() == [("iot-2/cmd/display/fmt/json", b'{"led":"red"}', 1)]
    st = wait_status(upstream, topic, "delivered")
    assert st["device"] == "dev0001" and st["command"] == "display", st
    # dev0002's own command, sent later, is the first and only thing it receives.
    send_command(g, "dev0002", "interval", '{"s":30}', upstream)
    assert r2.wait() == [("iot-2/cmd/interval/fmt/json", b'{"s":30}', 1)]
    assert len(r1.got) == 1
    ev = g.wait_event("command_delivered", device="dev0001")[0]
    assert "display" in ev["msg"], ev["raw"]
    g.wait_event("command_received", device="dev0002")


def test_another_devices_commands_cannot_be_subscribed(make_gateway, upstream, devices):
    g = subscribed(make_gateway(upstream=upstream, listeners=[
        gw.listener("m", "mutual", subscribe_acl="devices/{device}/cmd/# " + WATSON)],
        extra=downlink(device_topic="devices/{device}/cmd/{command}")))
    d = mtls_device(devices, g, "dev0001")
    r = Receiver(d, filters=[("devices/dev0002/cmd/#", 1), ("devices/+/cmd/#", 1),
                             ("devices/dev0001/cmd/#", 2), ("#", 0)])
    assert r.granted == [128, 128, 1, 128]  # QoS 2 granted as 1
    refused = [e["msg"] for e in g.events("subscribe_refused")]
    assert any("devices/dev0002/cmd/#" in m and "subscribe_acl" in m for m in refused), refused
    assert any("devices/+/cmd/#" in m for m in refused), refused
    send_command(g, "dev0001", "reboot", "{}", upstream)
    assert r.wait() == [("devices/dev0001/cmd/reboot", b"{}", 1)]


def test_unknown_device_and_too_large_rejected(make_gateway, upstream):
    g = subscribed(make_gateway(upstream=upstream, extra=downlink(max_payload=16)))
    topic = send_command(g, "nosuchdev", "display", "{}", upstream)
    st = wait_status(upstream, topic, "rejected")
    assert "no such device" in st["reason"], st
    ev = g.wait_event("command_rejected", device="nosuchdev")[0]
    assert "nosuchdev" in ev["msg"], ev["raw"]
    g.pub("dev0960", "esp/t", "21.5")  # now the gateway has seen dev0960
    topic = send_command(g, "dev0960", "display", "x" * 17, upstream)
    st = wait_status(upstream, topic, "rejected")
    assert "max_payload" in st["reason"], st
    # Any text of a topic level is a command name: the status stays valid JSON.
    topic = send_command(g, "dev0960", 'say"\\hi', "x" * 17, upstream)
    st = wait_status(upstream, topic, "rejected")
    assert st["command"] == 'say"\\hi', st


def raw_subscriber(raw, g, client_id, clean, pid=1):
    c = raw(g.port("plain"))
    c.send(gw.connect_pkt(client_id, clean=clean))
    connack = c.read_packet()
    assert connack[:2] == b"\x20\x02" and connack[3] == 0, connack.hex(" ")
    c.send(gw.subscribe_pkt(pid, [(WATSON, 1)]))
    return c, connack


def split_publish(pkt):
    """(flags, topic, packet id, payload) of a QoS 1 PUBLISH from the gateway."""
    assert pkt[0] >> 4 == 3, pkt.hex(" ")
    i = 1
    while pkt[i] & 0x80:
        i += 1
    body = pkt[i + 1:]
    tlen = int.from_bytes(body[:2], "big")
    topic = body[2:2 + tlen].decode()
    pid = int.from_bytes(body[2 + tlen:4 + tlen], "big")
    return pkt[0] & 0x0F, topic, pid, body[4 + tlen:]


def test_unacknowledged_command_redelivered_with_dup(gwd, upstream, raw):
    g = gwd
    c, _ = raw_subscriber(raw, g, "dev0970", clean=False)
    assert c.read_packet() == b"\x90\x03\x00\x01\x01"  # SUBACK, granted 1
    topic = send_command(g, "dev0970", "display", '{"n":1}', upstream)
    flags, t, pid, payload = split_publish(c.read_packet())
    assert (flags, t, payload) == (0x2, "iot-2/cmd/display/fmt/json", b'{"n":1}')
    c.close()  # no PUBACK: the device lost it mid-delivery
    g.wait_event("device_disconnected", peer=c.peer_str)
    # The persistent session is back: the subscription was kept (session present), and
    # the command comes again with DUP and the same packet id, before any SUBSCRIBE.
    c2 = raw(g.port("plain"))
    c2.send(gw.connect_pkt("dev0970", clean=False))
    assert c2.read_packet() == b"\x20\x02\x01\x00"
    flags, t, pid2, payload = split_publish(c2.read_packet())
    assert (flags, pid2, payload) == (0xA, pid, b'{"n":1}')
    c2.send(b"\x40\x02" + pid.to_bytes(2, "big"))
    st = wait_status(upstream, topic, "delivered")
    assert st["command"] == "display"
    assert "2 send(s)" in g.wait_event("command_delivered", device="dev0970")[0]["msg"]


def test_clean_session_device_gets_it_again_after_resubscribing(gwd, upstream, raw):
    g = gwd
    c, _ = raw_subscriber(raw, g, "dev0971", clean=True)
    c.read_packet()  # SUBACK
    send_command(g, "dev0971", "display", "a", upstream)
    split_publish(c.read_packet())
    c.close()
    g.wait_event("device_disconnected", peer=c.peer_str)
    c2 = raw(g.port("plain"))
    c2.connect("dev0971")  # clean: CONNACK without session present, nothing delivered
    c2.send(gw.PINGREQ)
    assert c2.read_packet() == gw.PINGRESP, "a command came before the device subscribed"
    c2.send(gw.subscribe_pkt(7, [(WATSON, 1)]))
    assert c2.read_packet() == b"\x90\x03\x00\x07\x01"
    flags, _, _, payload = split_publish(c2.read_packet())
    assert (flags, payload) == (0x2, b"a")  # afresh: no DUP on a new session


def test_offline_device_gets_it_on_return_and_expiry_is_reported(make_gateway, upstream,
                                                                  devices, raw):
    g = subscribed(make_gateway(upstream=upstream, listeners=[gw.listener("m", "mutual"),
                                                              gw.listener("plain", "off")],
                                extra=downlink(command_ttl="2s")))
    d = mtls_device(devices, g, "dev0003")
    d.close()  # seen once, now offline
    g.wait_event("device_disconnected", device="dev0003")
    topic = send_command(g, "dev0003", "display", "held", upstream)
    g.wait_event("command_received", device="dev0003")
    r = Receiver(mtls_device(devices, g, "dev0003"))
    assert r.wait() == [("iot-2/cmd/display/fmt/json", b"held", 1)]
    wait_status(upstream, topic, "delivered")
    r.d.close()
    g.wait_event("device_disconnected", device="dev0003", count=2)
    topic = send_command(g, "dev0003", "display", "too-late", upstream)
    st = wait_status(upstream, topic, "expired")
    assert st["command"] == "display"
    ev = g.wait_event("command_expired", device="dev0003")[0]
    assert "undelivered" in ev["msg"], ev["raw"]
    # After expiry it is gone: the device gets nothing when it comes back.
    r2 = Receiver(mtls_device(devices, g, "dev0003"))
    send_command(g, "dev0003", "interval", "fresh", upstream)
    assert r2.wait() == [("iot-2/cmd/interval/fmt/json", b"fresh", 1)]


def test_queued_commands_survive_a_gateway_restart(make_gateway, upstream, raw):
    g = subscribed(make_gateway(upstream=upstream, extra=downlink()))
    g.pub("dev0972", "esp/t", "20")
    topic = send_command(g, "dev0972", "display", "one", upstream)
    send_command(g, "dev0972", "display", "two", upstream)
    g.wait_event("command_received", device="dev0972", count=2)
    g.stop()
    g.start()
    c, _ = raw_subscriber(raw, g, "dev0972", clean=True)
    assert c.read_packet()[0] == 0x90
    got = [split_publish(c.read_packet()) for _ in range(2)]
    assert [p[3] for p in got] == [b"one", b"two"]  # in order
    for p in got:
        c.send(b"\x40\x02" + p[2].to_bytes(2, "big"))
    wait_status(upstream, topic, "delivered", count=2)


def test_upstream_reconnect_resubscribes(gwd, upstream, devices):
    g = gwd
    r = Receiver(mtls_device(devices, g, "dev0004"))
    upstream.stop()
    upstream.start()
    g.wait_event("upstream_connected", count=2)
    topic = send_command(g, "dev0004", "display", "after", upstream)
    assert r.wait() == [("iot-2/cmd/display/fmt/json", b"after", 1)]
    wait_status(upstream, topic, "delivered")


def test_no_downlink_refuses_subscriptions(make_gateway, upstream, raw):
    g = make_gateway(upstream=upstream)
    c = raw(g.port())
    c.connect("dev0973")
    c.send(gw.subscribe_pkt(3, [(WATSON, 1)]))
    assert c.read_packet() == b"\x90\x03\x00\x03\x80"
    ev = g.wait_event("subscribe_refused")[0]
    assert WATSON in ev["msg"] and "no downlink" in ev["msg"], ev["raw"]


def test_metrics_count_commands(make_gateway, upstream, raw):
    port = gw.free_port()
    g = subscribed(make_gateway(upstream=upstream,
                                extra=downlink() + "\n[metrics]\nbind = 127.0.0.1:%d\n" % port))
    c, _ = raw_subscriber(raw, g, "dev0974", clean=True)
    c.read_packet()
    send_command(g, "dev0974", "display", "m", upstream)
    _, _, pid, _ = split_publish(c.read_packet())
    c.send(b"\x40\x02" + pid.to_bytes(2, "big"))
    g.wait_event("command_delivered", device="dev0974")
    m = gw.Scrape(port)
    assert m.get("iotgw_commands_received_total") == 1
    assert m.get("iotgw_commands_total", outcome="delivered") == 1
    assert m.get("iotgw_commands_total", outcome="expired") == 0
    assert m.get("iotgw_commands_queued") == 0
    assert m.get("iotgw_subscribe_refusals_total", listener="plain") == 0
    assert m.get("iotgw_downlink_subscribed") == 1
    # Upstream gone: no subscription until the next connection's SUBACK.
    upstream.stop()
    try:
        gw.wait_metric(port, "iotgw_downlink_subscribed", lambda v: v == 0)
    finally:
        upstream.start()
    gw.wait_metric(port, "iotgw_downlink_subscribed", lambda v: v == 1)


def test_token_auth_device_receives_commands(make_gateway, upstream, devices, tmp_path):
    """A Watson device with token auth (use-token-auth, the device id in the client id) over
    server-authenticated TLS, as the ESP8266 sketch connects."""
    pw = gw.pw_file(tmp_path / "passwd", {"pwdev05": "token-05"})
    g = subscribed(make_gateway(upstream=upstream, extra=downlink(), listeners=[
        gw.listener("tok", "server", password_file=str(pw))]))
    d = devices(g.port(), "d:myorg:esp8266:pwdev05", host="localhost",
                tls=g.pki.client_ctx(), username="use-token-auth", password="token-05")
    r = Receiver(d, filters=[("iot-2/cmd/display/fmt/json", 1)])
    assert r.granted == [1]
    topic = send_command(g, "pwdev05", "display", '{"color":"blue"}', upstream)
    assert r.wait() == [("iot-2/cmd/display/fmt/json", b'{"color":"blue"}', 1)]
    wait_status(upstream, topic, "delivered")


def test_queue_limits_reject(make_gateway, upstream, raw):
    g = subscribed(make_gateway(upstream=upstream, extra=downlink(max_queued_per_device=2)))
    g.pub("dev0975", "esp/t", "20")
    for i in range(2):
        send_command(g, "dev0975", "c%d" % i, "x", upstream)
    topic = send_command(g, "dev0975", "c2", "x", upstream)
    st = wait_status(upstream, topic, "rejected")
    assert "max_queued_per_device" in st["reason"], st
    assert len(g.events("command_received", device="dev0975")) == 2
    # The two queued ones are still delivered, in order.
    c, _ = raw_subscriber(raw, g, "dev0975", clean=True)
    c.read_packet()
    assert [split_publish(c.read_packet())[1] for _ in range(2)] == [
        "iot-2/cmd/c0/fmt/json", "iot-2/cmd/c1/fmt/json"]


def test_command_survives_kill9(make_gateway, upstream, raw):
    """Once the gateway said it took a command (logged command_received, and the broker has
    its PUBACK), a crash does not lose it."""
    g = subscribed(make_gateway(upstream=upstream, extra=downlink()))
    g.pub("dev0976", "esp/t", "20")
    send_command(g, "dev0976", "display", "kept", upstream)
    g.wait_event("command_received", device="dev0976")
    g.kill9()
    g.start()
    c, _ = raw_subscriber(raw, g, "dev0976", clean=True)
    c.read_packet()
    assert split_publish(c.read_packet())[3] == b"kept"



def test_reload_moves_the_subscription(make_gateway, upstream, raw):
    g = subscribed(make_gateway(upstream=upstream, extra=downlink()))
    c, _ = raw_subscriber(raw, g, "dev0977", clean=True)
    c.read_packet()
    g.extra = downlink(topic="cmd/{gateway}/{device}/{command}")
    g.write_config()
    g.reload()
    # The broker's SUBACK for the new filter: from then on commands there arrive.
    ev = g.wait_event("downlink_subscribed", count=2)
    assert "cmd/%s/+/+" % g.name in ev[-1]["msg"], ev[-1]["raw"]
    pki = upstream.pki

    def send_new():
        subprocess.run([gw.MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(upstream.port),
                        "--cafile", pki.pem("upstream-ca"), "--cert", pki.pem("observer"),
                        "--key", pki.key("observer"), "-q", "1",
                        "-t", "cmd/%s/dev0977/display" % g.name, "-m", "new"],
                       check=True, timeout=gw.WAIT)
    send_new()
    first = split_publish(c.read_packet())
    assert (first[1], first[3]) == ("iot-2/cmd/display/fmt/json", b"new")
    # The old topic is no longer subscribed: a command there never reaches the gateway,
    # and one on the new topic sent after it is the next thing the device gets.
    send_command(g, "dev0977", "old", "old", upstream)
    send_new()
    nxt = split_publish(c.read_packet())
    assert nxt[3] == b"new", nxt
    assert not g.events("command_rejected"), [e["raw"] for e in g.events("command_rejected")]


DYNSEC = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"


def test_a_refused_subscription_is_an_error(make_gateway, pki, tmp_path):
    # A broker whose access control lets clients publish but not subscribe (Mosquitto's
    # dynamic security plugin, subscribe denied by default) answers the SUBSCRIBE with
    # 0x80: without this line nothing would say why no command ever arrives.
    dynsec = tmp_path / "dynsec.json"
    dynsec.write_text(json.dumps({"defaultACLAccess": {
        "publishClientSend": True, "publishClientReceive": True, "subscribe": False,
        "unsubscribe": True}, "clients": [], "groups": [], "roles": []}))
    up = gw.Upstream(pki, tmp_path / "dynsec-upstream",
                     conf=["plugin %s" % DYNSEC, "plugin_opt_config_file %s" % dynsec])
    up.start()
    try:
        port = gw.free_port()
        g = make_gateway(upstream=up,
                         extra=downlink() + "\n[metrics]\nbind = 127.0.0.1:%d\n" % port)
        (ev,) = g.wait_event("downlink_subscribe_refused")
        assert gw.Scrape(port).get("iotgw_downlink_subscribed") == 0
        assert ev["level"] == "err", ev["raw"]
        assert "commands/%s/+/+" % g.name in ev["msg"], ev["raw"]
        assert "iotgw-%s" % g.name in ev["msg"], ev["raw"]
        assert not g.events("downlink_subscribed"), g.events("downlink_subscribed")
        g.stop()
    finally:
        up.close()
