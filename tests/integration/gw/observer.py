"""The observer on the upstream broker: a paho subscriber to '#' that collects every message
the gateway forwards (Message), and waits for readings and dead letters."""

import json
import threading
import time

from .env import WAIT
from .supervised import SupervisedClient


class Message:
    __slots__ = ("topic", "payload", "retain", "qos", "t", "_json")

    def __init__(self, topic, payload, retain, qos):
        self.topic = topic
        self.payload = payload
        self.retain = retain
        self.qos = qos
        self.t = time.monotonic()
        try:
            self._json = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            self._json = None

    @property
    def json(self):
        return self._json

    def get(self, key, default=None):
        return self._json.get(key, default) if isinstance(self._json, dict) else default

    def __repr__(self):
        return "<%s %s>" % (self.topic, self.payload[:300].decode("utf-8", "replace"))


class Observer:
    """A paho subscriber on the upstream broker (mutual TLS, persistent session, QoS 1,
    filter '#'), collecting every message. The persistent session makes messages published
    while it is reconnecting after a broker restart wait for it in the broker, and its loop
    (SupervisedClient) reconnects after any exception, so it keeps counting through every
    restart."""

    def __init__(self, upstream, client_id, clean_session=False):
        self.upstream = upstream
        self.msgs = []
        self.redelivered = 0
        self.connects = 0
        # A harness test's fault: the first message this predicate matches raises in the
        # message callback (before it is collected or acknowledged).
        self.fault = None
        self.cond = threading.Condition()
        self.subscribed = threading.Event()
        self.c = SupervisedClient(client_id=client_id, clean_session=clean_session,
                                  keep_reconnecting=True)
        self.c.tls_set_context(upstream.pki.client_ctx(cert="observer", ca="upstream-ca"))
        self.c.reconnect_delay_set(0.1, 0.5)
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = lambda c, u, mid, q: self.subscribed.set()
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", upstream.port, keepalive=30)
        self.c.loop_start()
        if not self.subscribed.wait(WAIT):
            self.close()
            raise AssertionError("observer could not subscribe on the upstream broker; "
                                 "loop errors: %r" % self.c.loop_errors)

    def _on_connect(self, c, userdata, flags, rc):
        if rc == 0:
            self.connects += 1
            c.subscribe("#", qos=1)

    def _on_message(self, c, userdata, msg):
        m = Message(msg.topic, bytes(msg.payload), bool(msg.retain), msg.qos)
        fault = self.fault
        if fault is not None and fault(m):
            self.fault = None
            raise RuntimeError("fault injected by the test at %r" % m)
        with self.cond:
            # The broker re-sends (DUP) what it sent us just before a restart if our PUBACK
            # did not reach it: that is the broker->observer hop, not the gateway's doing.
            # (A duplicate from the gateway arrives here as a new message without DUP.)
            if msg.dup and any(x.topic == m.topic and x.payload == m.payload
                               for x in self.msgs):
                self.redelivered += 1
                return
            self.msgs.append(m)
            self.cond.notify_all()

    def messages(self, pred=None):
        with self.cond:
            return [m for m in self.msgs if pred is None or pred(m)]

    def wait_for(self, pred, count=1, timeout=WAIT, what=None):
        """Waits until at least `count` collected messages satisfy pred; returns all of them."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = [m for m in self.msgs if pred(m)]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = "\n  ".join(repr(m) for m in self.msgs[-30:]) or "(none)"
                    raise AssertionError(
                        "upstream: %d/%d message(s) %swithin %.1fs; observer connected %s, "
                        "%d connects, loop errors %r; last messages seen:\n  %s"
                        % (len(got), count, ("for %s " % what) if what else "", timeout,
                           self.c.is_connected(), self.connects, self.c.loop_errors[-5:],
                           seen))
                self.cond.wait(min(left, 0.2))

    def readings(self, device, gateway=None, topic_prefix=None):
        """Readings (JSON with temperature_c) of one device, in arrival order."""
        def pred(m):
            return (m.get("device") == device and "temperature_c" in (m.json or {})
                    and (gateway is None or m.get("gateway") == gateway)
                    and (topic_prefix is None or m.topic.startswith(topic_prefix)))
        return self.messages(pred)

    def wait_readings(self, device, gateway=None, count=1, timeout=WAIT):
        def pred(m):
            return (m.get("device") == device and "temperature_c" in (m.json or {})
                    and (gateway is None or m.get("gateway") == gateway))
        return self.wait_for(pred, count, timeout, what="readings of %s/%s" % (gateway, device))

    def wait_deadletters(self, device, gateway=None, count=1, timeout=WAIT):
        def pred(m):
            return (m.get("device") == device and "reason" in (m.json or {})
                    and (gateway is None or m.get("gateway") == gateway))
        return self.wait_for(pred, count, timeout, what="dead letters of %s/%s" % (gateway, device))

    def close(self):
        self.c.close()
