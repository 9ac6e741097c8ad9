"""Device trust (SPEC issue 4): publish_acl, the client_id policy, password_file and the
`iotgw passwd` tool that maintains it.

  * a device publishing outside its publish_acl is disconnected (MQTT 3.1.1 has no negative
    PUBACK) and event=acl_denied names the topic; nothing reaches upstream;
  * client_id = match | exact | any on mutual TLS: a mismatch is CONNACK 5 and
    event=client_id_mismatch; Watson d:<org>:<type>:<id> passes `match`;
  * password_file on tls = off and tls = server listeners: user name = device id, or Watson
    use-token-auth with the device id taken from the client id; anything else is CONNACK 4 or
    5 and event=auth_failed;
  * `iotgw passwd` writes entries that Python's hashlib verifies (an independent PBKDF2),
    keeps the rest of the file, reads passwords from a pipe or (without echo) from a tty.

Clients: raw MQTT bytes, paho, mosquitto_pub."""

import base64
import hashlib
import os
import pty
import select
import stat
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import paho.mqtt.client as paho
import pytest

import gw

SCHEME = "$iotgw-pbkdf2-sha256$"
CONNACK_BAD_AUTH = (4, 5)  # SPEC: "CONNACK 4 (bad user name or password) or 5"

# Devices with a password (password listeners) and with a certificate (mutual listeners).
PASSWORDS = {
    "pwdev01": "correct-horse-01",
    "pwdev02": "correct-horse-02",
    "pwdev03": "watson-token-03",
    "pwdev04": "mosquitto-pub-04",
    "pwdev05": "paho-client-05",
}
CERTS = ("acl01", "acl02", "acl03", "acl04", "acl05", "cid01", "cid02", "cid03", "cid04")


def b64(data):
    return base64.b64encode(data).decode("ascii")


def pw_line(device, password, iterations=1000, salt=None):
    """A password file entry made with hashlib (not with the code under test)."""
    salt = os.urandom(16) if salt is None else salt
    h = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations, 32)
    return "%s:%s%d$%s$%s" % (device, SCHEME, iterations, b64(salt), b64(h))


def pw_entry_ok(line, device, password):
    """Does this password file line say `password` for `device`? (hashlib again)"""
    dev, rest = line.split(":", 1)
    assert dev == device, line
    assert rest.startswith(SCHEME), line
    iterations, salt, h = rest[len(SCHEME):].split("$")
    salt, h = base64.b64decode(salt, validate=True), base64.b64decode(h, validate=True)
    assert len(salt) >= 16 and len(h) == 32, line
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, int(iterations), 32) == h


@pytest.fixture(scope="module")
def certs(pki):
    with ThreadPoolExecutor(4) as ex:
        for f in [ex.submit(pki.run, "client", n, "--ca", "devices-ca") for n in CERTS]:
            f.result()
    return pki


@pytest.fixture(scope="module")
def pwfile(tmp_path_factory):
    p = tmp_path_factory.mktemp("pw") / "passwd"
    p.write_text("# devices that log in with a password\n\n"
                 + "".join(pw_line(d, pw) + "\n" for d, pw in PASSWORDS.items()))
    os.chmod(p, 0o640)
    return p


@pytest.fixture(scope="module")
def g(request, tmp_path_factory, certs, upstream, pwfile):
    return gw.module_gateway(request, tmp_path_factory, certs, upstream=upstream, listeners=[
        gw.listener("mtls", "mutual"),
        gw.listener("mtls-exact", "mutual", client_id="exact"),
        gw.listener("mtls-any", "mutual", client_id="any"),
        gw.listener("mtls-open", "mutual", publish_acl="none"),
        gw.listener("mtls-plants", "mutual", publish_acl="plants/{device}/+ iot-2/evt/+/fmt/json"),
        gw.listener("pw-plain", "off", password_file=str(pwfile)),
        gw.listener("pw-tls", "server", password_file=str(pwfile)),
        # For barrier readings only (gw.Gateway.upstream_barrier); no test's subject.
        gw.listener("barrier", "off"),
    # These tests try many wrong passwords from 127.0.0.1 on purpose; the backoff that
    # would follow has its own test below.
    ], gateway={"auth_backoff_after": 0})


def mtls_conn(raw, g, certs, listener, cert):
    return raw(g.port(listener), tls=certs.client_ctx(cert=cert))


def connack_rc(c):
    """The return code of the CONNACK the gateway sends next."""
    try:
        pkt = c.read_packet()
    except gw.Closed as e:
        raise AssertionError("connection closed without a CONNACK (%s)" % e)
    assert pkt[:3] == b"\x20\x02\x00", "not a CONNACK: %s" % pkt.hex(" ")
    return pkt[3]


def expect_refused(c, codes, what):
    rc = connack_rc(c)
    assert rc in codes, "%s: CONNACK rc %d, expected %s" % (what, rc, codes)
    c.wait_closed()
    return rc


def expect_acl_close(g, c, device, topic):
    """After a forbidden PUBLISH: the connection closes, no PUBACK, event=acl_denied."""
    _, got = c.wait_closed()
    assert b"\x40\x02" not in got, "PUBACK for a forbidden topic: %r" % got
    ev = g.wait_event("acl_denied", device=device, peer=c.peer_str)
    assert topic in ev[0]["raw"], "acl_denied does not name the topic: %s" % ev[0]["raw"]
    assert ev[0]["level"] in ("warning", "notice", "err"), ev[0]["raw"]
    return ev


def no_reading(upstream, g, *refused):
    """Nothing with these temperatures from these devices (DEVICE, VALUE pairs) reaches
    upstream. Checked once a barrier reading, published through g after the refusal,
    has arrived upstream: had g taken a refused reading in, it would have come first."""
    g.upstream_barrier("barrier")
    for device, value in refused:
        got = [m for m in upstream.readings(device, g.name) if m.get("temperature_c") == value]
        assert not got, "a refused reading reached upstream: %r" % got


# ---------------------------------------------------------------------------------------
# publish_acl

def test_acl_default_own_topics(g, upstream, devices, certs):
    d = devices(g.port("mtls"), "acl01", tls=certs.client_ctx(cert="acl01"))
    d.publish("acl01/temp", "20.5")
    d.publish("esp/acl01/temp", "20.75")
    d.publish("acl01", "21")  # "{device}/#" also matches the parent level (MQTT 4.7.1.2)
    d.publish("iot-2/evt/status/fmt/json", '{"d":{"temp":21.25}}')
    got = upstream.wait_readings("acl01", g.name, count=4)
    assert [m.get("temperature_c") for m in got] == [20.5, 20.75, 21, 21.25]
    assert got[3].get("format") == "watson" and got[3].get("event") == "status"
    assert d.unexpected_disconnects == []
    assert not g.events("acl_denied", device="acl01")


@pytest.mark.parametrize("qos", [0, 1])
@pytest.mark.parametrize("topic", ["acl03/temp", "esp/acl03/t", "esp/t", "acl022/t",
                                   "iot-2/cmd/display/fmt/json",
                                   "iot-2/type/esp/id/acl03/evt/status/fmt/json"])
def test_acl_violation_closes_connection(g, upstream, raw, certs, topic, qos):
    c = mtls_conn(raw, g, certs, "mtls", "acl02")
    c.connect("acl02")
    value = 30 + len(topic) + qos / 10
    c.send(gw.publish_pkt(topic, str(value), qos=qos, pid=7 if qos else None))
    expect_acl_close(g, c, "acl02", topic)
    no_reading(upstream, g, ("acl02", value), ("acl03", value))
    # Not as a dead letter either.
    assert not upstream.messages(lambda m: m.topic == topic or (
        m.get("device") in ("acl02", "acl03") and "reason" in (m.json or {})))


def test_acl_violation_after_good_publish(g, upstream, raw, certs):
    """Readings accepted before the violation are kept; the connection ends at it."""
    c = mtls_conn(raw, g, certs, "mtls", "acl04")
    c.connect("acl04")
    c.send(gw.publish_pkt("acl04/t", "22.5", qos=1, pid=1))
    c.expect(b"\x40\x02\x00\x01", what="PUBACK")
    c.send(gw.publish_pkt("acl05/t", "66.5", qos=1, pid=2))
    expect_acl_close(g, c, "acl04", "acl05/t")
    (m,) = upstream.wait_readings("acl04", g.name)
    assert m.get("temperature_c") == 22.5
    no_reading(upstream, g, ("acl05", 66.5))


def test_acl_mosquitto_pub_qos0(g, upstream, certs):
    """mosquitto_pub with QoS 0 cannot notice the close; the reading is dropped anyway."""
    tls = ("--cafile", certs.pem("devices-ca"), "--cert", certs.pem("acl05"),
           "--key", certs.key("acl05"))
    g.pub("acl05", "acl05/t", "23.5", qos=1, listener_name="mtls", extra_args=tls)
    upstream.wait_readings("acl05", g.name)
    # Its exit status depends on whether its DISCONNECT beat our close: not checked.
    subprocess.run([gw.MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(g.port("mtls")),
                    "-i", "acl05", "-t", "acl01/t", "-m", "77.5", "-q", "0", *tls],
                   capture_output=True, timeout=gw.WAIT)
    ev = g.wait_event("acl_denied", device="acl05")
    assert "acl01/t" in ev[0]["raw"], ev[0]["raw"]
    no_reading(upstream, g, ("acl01", 77.5), ("acl05", 77.5))


def test_watson_topic_with_watson_client_id(g, upstream, raw, certs):
    c = mtls_conn(raw, g, certs, "mtls", "acl03")
    c.connect("d:myorg:esp32:acl03")
    c.send(gw.publish_pkt("iot-2/evt/status/fmt/json", '{"d":{"temp":24.5,"humidity":40}}',
                          qos=1, pid=3))
    c.expect(b"\x40\x02\x00\x03", what="PUBACK")
    (m,) = upstream.wait_readings("acl03", g.name)
    gw.assert_reading(m, "acl03", g.name, 24.5, "watson", humidity=40, event="status")


def test_publish_acl_none(g, upstream, devices, certs):
    d = devices(g.port("mtls-open"), "cid04", tls=certs.client_ctx(cert="cid04"))
    d.publish("anything/at/all", "25.5")
    d.publish("acl01/t", "25.75")  # another device's tree: no check at all
    got = upstream.wait_readings("cid04", g.name, count=2)
    assert [m.get("temperature_c") for m in got] == [25.5, 25.75]
    assert not g.events("acl_denied", device="cid04")
    # SPEC: `publish_acl = none` is worth a config_warning.
    assert [e for e in g.events("config_warning") if "publish_acl" in e["raw"]], \
        "no config_warning about publish_acl = none"


def test_publish_acl_custom(g, upstream, raw, certs):
    c = mtls_conn(raw, g, certs, "mtls-plants", "cid03")
    c.connect("cid03")
    c.send(gw.publish_pkt("plants/cid03/soil", "18.5", qos=1, pid=1))
    c.expect(b"\x40\x02\x00\x01", what="PUBACK")
    c.send(gw.publish_pkt("iot-2/evt/x/fmt/json", '{"d":{"temp":18.75}}', qos=1, pid=2))
    c.expect(b"\x40\x02\x00\x02", what="PUBACK")
    # The default patterns are replaced, not added to.
    c.send(gw.publish_pkt("cid03/t", "88.5", qos=1, pid=3))
    expect_acl_close(g, c, "cid03", "cid03/t")
    got = upstream.wait_readings("cid03", g.name, count=2)
    assert [m.get("temperature_c") for m in got] == [18.5, 18.75]
    no_reading(upstream, g, ("cid03", 88.5))


# ---------------------------------------------------------------------------------------
# client_id policy (mutual TLS: the device id is the certificate's CN)

@pytest.mark.parametrize("listener,cid,ok", [
    ("mtls", "cid01", True),
    ("mtls", "d:myorg:esp32:cid01", True),
    ("mtls", "d:myorg:esp32:cid02", False),
    ("mtls", "d::esp32:cid01", False),
    ("mtls", "cid02", False),
    ("mtls", "cid01x", False),
    ("mtls", "esp-a1b2c3", False),
    ("mtls-exact", "cid01", True),
    ("mtls-exact", "d:myorg:esp32:cid01", False),
    ("mtls-exact", "cid02", False),
    ("mtls-any", "esp-a1b2c3", True),
    ("mtls-any", "d:myorg:esp32:cid02", True),
])
def test_client_id_policy(g, raw, certs, listener, cid, ok):
    c = mtls_conn(raw, g, certs, listener, "cid01")
    c.send(gw.connect_pkt(cid))
    # Ephemeral ports are reused within the module: the latest event of this peer is ours
    # (it is logged before the CONNACK we waited for).
    if ok:
        assert connack_rc(c) == 0
        g.wait_event("device_connected", peer=c.peer_str)
        ev = g.events("device_connected", peer=c.peer_str)[-1]
        assert ev["device"] == "cid01", ev["raw"]  # the certificate, whatever the id
        return
    expect_refused(c, (5,), "client id %s on %s" % (cid, listener))
    g.wait_event("client_id_mismatch", peer=c.peer_str)
    evs = g.events()
    last = max(i for i, e in enumerate(evs)
               if e["event"] == "client_id_mismatch" and e.get("peer") == c.peer_str)
    assert cid in evs[last]["raw"], evs[last]["raw"]
    assert not [e for e in evs[last:]
                if e["event"] == "device_connected" and e.get("peer") == c.peer_str]


def test_client_id_any_reading_is_the_certificates(g, upstream, devices, certs):
    d = devices(g.port("mtls-any"), "esp-ffeedd", tls=certs.client_ctx(cert="cid02"))
    d.publish("cid02/t", "26.5")
    (m,) = upstream.wait_readings("cid02", g.name)
    gw.assert_reading(m, "cid02", g.name, 26.5, "number")
    assert not upstream.readings("esp-ffeedd")


# ---------------------------------------------------------------------------------------
# password_file

PW_LISTENERS = ["pw-plain", "pw-tls"]


def pw_conn(raw, g, certs, listener):
    tls = certs.client_ctx() if listener == "pw-tls" else None
    return raw(g.port(listener), tls=tls)


@pytest.mark.parametrize("listener", PW_LISTENERS)
def test_password_accepted(g, upstream, raw, certs, listener):
    c = pw_conn(raw, g, certs, listener)
    c.send(gw.connect_pkt("pwdev01", username="pwdev01", password=PASSWORDS["pwdev01"]))
    assert connack_rc(c) == 0
    value = 27.5 if listener == "pw-plain" else 27.75
    c.send(gw.publish_pkt("pwdev01/t", str(value), qos=1, pid=1))
    c.expect(b"\x40\x02\x00\x01", what="PUBACK")
    upstream.wait_for(lambda m: m.get("device") == "pwdev01" and m.get("gateway") == g.name
                      and m.get("temperature_c") == value, what="pwdev01 reading")
    # (Ephemeral ports are reused within the module: match the whole event, not the peer.)
    g.wait_event("device_connected", peer=c.peer_str, device="pwdev01", listener=listener)


@pytest.mark.parametrize("listener", PW_LISTENERS)
@pytest.mark.parametrize("case", ["wrong_password", "other_devices_password", "unknown_device",
                                  "no_credentials", "user_without_password", "empty_password",
                                  "token_auth_plain_client_id", "token_auth_wrong_password",
                                  "token_auth_unknown_device"])
def test_password_refused(g, upstream, raw, certs, listener, case):
    cid, user, pw = {
        "wrong_password": ("pwdev02", "pwdev02", "correct-horse-0x"),
        "other_devices_password": ("pwdev02", "pwdev02", PASSWORDS["pwdev01"]),
        "unknown_device": ("pwdev99", "pwdev99", "correct-horse-99"),
        "no_credentials": ("pwdev02", None, None),
        "user_without_password": ("pwdev02", "pwdev02", None),
        "empty_password": ("pwdev02", "pwdev02", ""),
        "token_auth_plain_client_id": ("pwdev03", "use-token-auth", PASSWORDS["pwdev03"]),
        "token_auth_wrong_password": ("d:myorg:esp8266:pwdev03", "use-token-auth", "nope"),
        "token_auth_unknown_device": ("d:myorg:esp8266:pwdev98", "use-token-auth",
                                      PASSWORDS["pwdev03"]),
    }[case]
    c = pw_conn(raw, g, certs, listener)
    c.send(gw.connect_pkt(cid, username=user, password=pw))
    expect_refused(c, CONNACK_BAD_AUTH, "%s on %s" % (case, listener))
    ev = g.wait_event("auth_failed", peer=c.peer_str)
    assert ev[0]["listener"] == listener, ev[0]["raw"]
    if pw:
        assert pw not in ev[0]["raw"], "a password in the log: %s" % ev[0]["raw"]
    # Ephemeral ports are reused within the module: only what this connection caused, from
    # its refusal on, counts.
    evs = g.events()
    last = max(i for i, e in enumerate(evs)
               if e["event"] == "auth_failed" and e.get("peer") == c.peer_str)
    assert not [e for e in evs[last:]
                if e["event"] == "device_connected" and e.get("peer") == c.peer_str]


@pytest.mark.parametrize("listener", PW_LISTENERS)
def test_watson_use_token_auth(g, upstream, raw, certs, listener):
    c = pw_conn(raw, g, certs, listener)
    c.send(gw.connect_pkt("d:myorg:esp8266:pwdev03", username="use-token-auth",
                          password=PASSWORDS["pwdev03"]))
    assert connack_rc(c) == 0
    value = 19.5 if listener == "pw-plain" else 19.75
    c.send(gw.publish_pkt("iot-2/evt/status/fmt/json", '{"d":{"temp":%s}}' % value, qos=1,
                          pid=4))
    c.expect(b"\x40\x02\x00\x04", what="PUBACK")
    (m,) = upstream.wait_for(lambda m: m.get("device") == "pwdev03" and m.get("gateway") == g.name
                             and m.get("temperature_c") == value, what="pwdev03 reading")
    gw.assert_reading(m, "pwdev03", g.name, value, "watson", event="status")


@pytest.mark.parametrize("listener", PW_LISTENERS)
def test_password_client_id_mismatch(g, raw, certs, listener):
    """client_id = match (default) applies to password listeners: the right password for
    pwdev01 under pwdev02's client id is refused."""
    c = pw_conn(raw, g, certs, listener)
    c.send(gw.connect_pkt("pwdev02", username="pwdev01", password=PASSWORDS["pwdev01"]))
    expect_refused(c, (5,), "client id pwdev02 for user pwdev01")
    g.wait_event("client_id_mismatch", peer=c.peer_str)
    c = pw_conn(raw, g, certs, listener)
    c.send(gw.connect_pkt("d:org:type:pwdev01", username="pwdev01",
                          password=PASSWORDS["pwdev01"]))
    assert connack_rc(c) == 0


def test_password_device_acl(g, upstream, raw, certs):
    """The user name is the identity the ACL checks: pwdev01 cannot publish as pwdev02."""
    c = pw_conn(raw, g, certs, "pw-plain")
    c.send(gw.connect_pkt("pwdev01", username="pwdev01", password=PASSWORDS["pwdev01"]))
    assert connack_rc(c) == 0
    c.send(gw.publish_pkt("pwdev02/t", "55.5", qos=1, pid=9))
    expect_acl_close(g, c, "pwdev01", "pwdev02/t")
    no_reading(upstream, g, ("pwdev02", 55.5), ("pwdev01", 55.5))


@pytest.mark.parametrize("listener", PW_LISTENERS)
def test_password_mosquitto_pub(g, upstream, certs, listener):
    tls = ("--cafile", certs.pem("devices-ca")) if listener == "pw-tls" else ()
    value = 17.5 if listener == "pw-plain" else 17.25
    g.pub("pwdev04", "pwdev04/temp", str(value), listener_name=listener,
          extra_args=("-u", "pwdev04", "-P", PASSWORDS["pwdev04"]) + tls)
    upstream.wait_for(lambda m: m.get("device") == "pwdev04" and m.get("gateway") == g.name
                      and m.get("temperature_c") == value, what="pwdev04 reading")
    # Watson firmware settings, through mosquitto_pub
    g.pub("d:myorg:esp8266:pwdev03", "iot-2/evt/status/fmt/json",
          '{"d":{"temp":%s}}' % (value + 1), listener_name=listener,
          extra_args=("-u", "use-token-auth", "-P", PASSWORDS["pwdev03"]) + tls)
    upstream.wait_for(lambda m: m.get("device") == "pwdev03" and m.get("gateway") == g.name
                      and m.get("temperature_c") == value + 1, what="pwdev03 reading")
    r = subprocess.run([gw.MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(g.port(listener)),
                        "-i", "pwdev04", "-u", "pwdev04", "-P", "not-the-password",
                        "-t", "pwdev04/temp", "-m", "66.5", "-q", "1", *tls],
                       capture_output=True, text=True, timeout=gw.WAIT)
    assert r.returncode != 0, "mosquitto_pub with a wrong password succeeded"
    assert "refused" in (r.stdout + r.stderr).lower(), r.stdout + r.stderr
    no_reading(upstream, g, ("pwdev04", 66.5))


def paho_connect(port, cid, user, password, tls=None):
    """Connects a paho client with a user name and password; returns (client, CONNACK rc)."""
    done = []
    c = paho.Client(client_id=cid, clean_session=True, protocol=paho.MQTTv311,
                    reconnect_on_failure=False)
    c.username_pw_set(user, password)
    if tls is not None:
        c.tls_set_context(tls)
    c.on_connect = lambda cl, u, f, rc: done.append(rc)
    c.connect("127.0.0.1", port, 30)
    c.loop_start()
    try:
        gw.wait_until(lambda: done, what="CONNACK for paho client %s" % cid)
    except AssertionError:
        c.loop_stop()
        raise
    return c, done[0]


@pytest.mark.parametrize("listener", PW_LISTENERS)
def test_password_paho(g, upstream, certs, listener):
    tls = certs.client_ctx() if listener == "pw-tls" else None
    c, rc = paho_connect(g.port(listener), "pwdev05", "pwdev05", PASSWORDS["pwdev05"], tls)
    try:
        assert rc == 0
        value = 16.5 if listener == "pw-plain" else 16.75
        info = c.publish("pwdev05/temp", str(value), qos=1)
        info.wait_for_publish(gw.WAIT)
        assert info.is_published()
        upstream.wait_for(lambda m: m.get("device") == "pwdev05" and m.get("gateway") == g.name
                          and m.get("temperature_c") == value, what="pwdev05 reading")
    finally:
        c.disconnect()
        c.loop_stop()
    c, rc = paho_connect(g.port(listener), "pwdev05", "pwdev05", "wrong", tls)
    c.loop_stop()
    assert rc in CONNACK_BAD_AUTH, "paho with a wrong password: CONNACK rc %d" % rc


# ---------------------------------------------------------------------------------------
# iotgw passwd

def passwd(*args, input_text=None):
    return subprocess.run([gw.IOTGW_BIN, "passwd", *map(str, args)], capture_output=True,
                          text=True, input=input_text if input_text is not None else "",
                          timeout=gw.WAIT)


def entries(path):
    """{device: line} of a password file."""
    return {ln.split(":", 1)[0]: ln for ln in Path(path).read_text().splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")}


def test_passwd_creates_and_updates(tmp_path):
    f = tmp_path / "passwd"
    r = passwd(f, "dev0401", input_text="first secret 0401\n")
    assert r.returncode == 0, r.stderr
    st = os.stat(f)
    assert stat.S_IMODE(st.st_mode) == 0o640, oct(st.st_mode)
    (line,) = f.read_text().splitlines()
    assert pw_entry_ok(line, "dev0401", "first secret 0401")
    assert not pw_entry_ok(line, "dev0401", "first secret 0402")

    # Comments, blank lines and other entries stay as they are.
    other = pw_line("dev0402", "x-0402")
    f.write_text("# fleet A\n" + line + "\n\n  # keep me\n" + other + "\n")
    r = passwd(f, "dev0401", input_text="second secret 0401\r\n")  # CRLF from a pipe
    assert r.returncode == 0, r.stderr
    lines = f.read_text().splitlines()
    assert lines[0] == "# fleet A" and lines[2] == "" and lines[3] == "  # keep me"
    assert lines[4] == other
    assert pw_entry_ok(lines[1], "dev0401", "second secret 0401")
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o640

    r = passwd(f, "dev0403", input_text="third-secret-0403\n")
    assert r.returncode == 0, r.stderr
    e = entries(f)
    assert set(e) == {"dev0401", "dev0402", "dev0403"}
    assert pw_entry_ok(e["dev0403"], "dev0403", "third-secret-0403")
    assert not [p for p in os.listdir(tmp_path) if p != "passwd"], "temporary files left"


def test_passwd_delete(tmp_path):
    f = tmp_path / "passwd"
    f.write_text("# x\n" + pw_line("dev0411", "a") + "\n" + pw_line("dev0412", "b") + "\n")
    os.chmod(f, 0o600)
    r = passwd("-D", f, "dev0411")
    assert r.returncode == 0, r.stderr
    assert set(entries(f)) == {"dev0412"}
    assert f.read_text().startswith("# x\n")
    before = f.read_text()
    r = passwd("-D", f, "dev0411")
    assert r.returncode == 1 and "dev0411" in r.stderr, r
    assert f.read_text() == before
    r = passwd("-D", tmp_path / "absent", "dev0411")
    assert r.returncode == 1 and r.stderr, r


@pytest.mark.parametrize("args,stdin,rc", [
    (["FILE", "dev0421"], "", 1),                # empty password (EOF)
    (["FILE", "dev0421"], "\n", 1),              # empty line
    (["FILE", "dev/0421"], "pw-0421-long\n", 2),  # not a usable device id
    (["FILE", "dev:0421"], "pw-0421-long\n", 2),  # ':' separates the fields
    (["FILE", "d" * 65], "pw-0421-long\n", 2),    # longer than 64
    (["-i", "10", "FILE", "dev0421"], "pw-0421-long\n", 2),  # iterations below the minimum
    (["-D", "-g", "FILE", "dev0420"], "", 2),    # contradictory
    (["FILE"], "", 2),                           # DEVICE missing
], ids=["eof", "empty-line", "slash", "colon", "too-long", "iterations", "D-and-g", "usage"])
def test_passwd_refusals(tmp_path, args, stdin, rc):
    f = tmp_path / "passwd"
    original = "# untouched\n" + pw_line("dev0420", "keep") + "\n"
    f.write_text(original)
    os.chmod(f, 0o640)
    r = passwd(*[f if a == "FILE" else a for a in args], input_text=stdin)
    assert r.returncode == rc, (r.returncode, r.stderr)
    assert r.stderr.strip(), "no explanation on stderr"
    assert r.stdout == ""
    assert f.read_text() == original


def test_passwd_refuses_a_broken_file(tmp_path):
    f = tmp_path / "passwd"
    original = "# x\n" + pw_line("dev0430", "a") + "\ngarbage line\n"
    f.write_text(original)
    r = passwd(f, "dev0431", input_text="long-enough-password\n")
    assert r.returncode == 1
    assert "%s:3:" % f in r.stderr, r.stderr
    assert f.read_text() == original


def test_passwd_generate(tmp_path):
    f = tmp_path / "passwd"
    r = passwd("-g", f, "dev0440")
    assert r.returncode == 0, r.stderr
    pw = r.stdout.strip()
    assert len(pw) >= 20 and pw.isalnum(), r.stdout
    assert pw_entry_ok(entries(f)["dev0440"], "dev0440", pw)
    r2 = passwd("-g", f, "dev0440")
    assert r2.stdout.strip() != pw


def run_on_tty(args, answers, timeout=gw.WAIT):
    """Runs iotgw passwd on a pseudo-terminal, answering each prompt in turn. Returns
    (exit status, everything the terminal showed)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([gw.IOTGW_BIN, "passwd", *map(str, args)], stdin=slave, stdout=slave,
                         stderr=slave, close_fds=True)
    os.close(slave)
    out = b""
    seen = 0  # prompts before this offset were answered already
    deadline = time.monotonic() + timeout

    def read_until(token):
        nonlocal out, seen
        while token not in out[seen:]:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r on the terminal; got %r" % (token, out))
            r, _, _ = select.select([master], [], [], min(left, 0.1))
            if r:
                try:
                    out += os.read(master, 4096)
                except OSError:
                    raise AssertionError("terminal closed; got %r" % out)
        seen = out.index(token, seen) + len(token)
    try:
        for prompt, answer in answers:
            read_until(prompt)
            os.write(master, answer)
        rc = p.wait(timeout)
        while True:  # what is left on the terminal
            r, _, _ = select.select([master], [], [], 0.2)
            if not r:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        return rc, out
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
        os.close(master)


def test_passwd_on_a_terminal(tmp_path):
    f = tmp_path / "passwd"
    secret = b"typed-on-the-console-0450"
    rc, out = run_on_tty([f, "dev0450"], [(b"assword", secret + b"\n"),
                                          (b"assword", secret + b"\n")])
    assert rc == 0, out
    assert secret not in out, "the password was echoed: %r" % out
    assert pw_entry_ok(entries(f)["dev0450"], "dev0450", secret.decode())
    before = f.read_text()
    rc, out = run_on_tty([f, "dev0450"], [(b"assword", b"first-attempt-xyz\n"),
                                          (b"assword", b"second-attempt-xyz\n")])
    assert rc == 1, out
    assert b"match" in out, out
    assert f.read_text() == before


# ---------------------------------------------------------------------------------------
# The gateway with a file written by iotgw passwd; reload; file permissions

def test_gateway_uses_passwd_tool_file(make_gateway, upstream, raw, tmp_path):
    f = tmp_path / "devices.passwd"
    assert passwd(f, "dev0460", input_text="tool-made-0460\n").returncode == 0
    g2 = make_gateway(upstream=upstream, listeners=[
        gw.listener("pw", "off", password_file=str(f))])
    c = raw(g2.port())
    c.send(gw.connect_pkt("dev0460", username="dev0460", password="tool-made-0460"))
    assert connack_rc(c) == 0
    c.send(gw.publish_pkt("dev0460/t", "15.5", qos=1, pid=1))
    c.expect(b"\x40\x02\x00\x01", what="PUBACK")
    upstream.wait_readings("dev0460", g2.name)

    # A changed password takes effect at reload (SIGHUP); connected devices stay.
    assert passwd(f, "dev0460", input_text="rotated-0460\n").returncode == 0
    g2.sighup()
    g2.wait_event("config_reloaded")
    c2 = raw(g2.port())
    c2.send(gw.connect_pkt("dev0460b", username="dev0460", password="tool-made-0460"))
    expect_refused(c2, CONNACK_BAD_AUTH, "old password after rotation")
    c3 = raw(g2.port())
    c3.send(gw.connect_pkt("dev0460", username="dev0460", password="rotated-0460"))
    assert connack_rc(c3) == 0  # takes over the first connection (same client id)


def check_config(g2):
    return subprocess.run([gw.IOTGW_BIN, "-t", "-c", str(g2.conf)], capture_output=True,
                          text=True, timeout=gw.WAIT, stdin=subprocess.DEVNULL)


def test_password_file_readable_by_others_is_an_error(make_gateway, upstream, tmp_path):
    f = tmp_path / "world.passwd"
    f.write_text(pw_line("dev0470", "x") + "\n")
    os.chmod(f, 0o644)
    g2 = make_gateway(start=False, upstream=upstream, listeners=[
        gw.listener("pw", "off", password_file=str(f))])
    r = check_config(g2)
    assert r.returncode == 78, r.stderr
    assert str(f) in r.stderr and "readable by other users" in r.stderr, r.stderr
    os.chmod(f, 0o640)
    r = check_config(g2)
    assert r.returncode == 0, r.stderr


def test_password_file_errors_are_reported(make_gateway, upstream, tmp_path):
    f = tmp_path / "bad.passwd"
    f.write_text("# ok\n" + pw_line("dev0480", "x") + "\ndev0481:$2y$10$bcrypt-is-not-supported\n")
    os.chmod(f, 0o640)
    g2 = make_gateway(start=False, upstream=upstream, listeners=[
        gw.listener("pw", "off", password_file=str(f))])
    r = check_config(g2)
    assert r.returncode == 78
    assert "%s:3:" % f in r.stderr, r.stderr


def test_password_file_on_mutual_listener_is_an_error(make_gateway, upstream, tmp_path):
    f = tmp_path / "m.passwd"
    f.write_text(pw_line("dev0490", "x") + "\n")
    os.chmod(f, 0o640)
    g2 = make_gateway(start=False, upstream=upstream, listeners=[
        gw.listener("m", "mutual", password_file=str(f))])
    r = check_config(g2)
    assert r.returncode == 78
    assert "password_file" in r.stderr, r.stderr
