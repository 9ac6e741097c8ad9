"""Devices on a real MQTT client library: Device, a paho MQTT 3.1.1 client (the ESP8266/ESP32
side) that reports every lost connection instead of reconnecting."""

import threading

import paho.mqtt.client as paho

from .env import WAIT
from .supervised import SupervisedClient


class Device:
    """A paho MQTT 3.1.1 client (the ESP8266/ESP32 side). Does not reconnect by itself, so
    that a dropped connection is seen by the test (unexpected_disconnects): a loss paho
    reports (on_disconnect rc != 0) and one it would not (an exception in its loop, recorded
    as its text) alike."""

    def __init__(self, port, client_id, host="127.0.0.1", tls=None, keepalive=60,
                 clean_session=True, protocol=paho.MQTTv311, username=None, password=None):
        self.client_id = client_id
        self.connected = threading.Event()
        self.connack_rc = None
        self.disconnects = []
        self.c = SupervisedClient(client_id=client_id, clean_session=clean_session,
                                  protocol=protocol, reconnect_on_failure=False,
                                  keep_reconnecting=False, on_lost=self._on_lost)
        if tls is not None:
            self.c.tls_set_context(tls)
        if username is not None:
            self.c.username_pw_set(username, password)
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.connect(host, port, keepalive)
        self.c.loop_start()
        if not self.connected.wait(WAIT) or self.connack_rc != 0:
            self.c.close()
            raise AssertionError("device %s: no successful CONNACK (rc=%s, disconnects %r)"
                                 % (client_id, self.connack_rc, self.disconnects))

    def _on_connect(self, c, userdata, flags, rc):
        self.connack_rc = rc
        self.connected.set()

    def _on_disconnect(self, c, userdata, rc):
        self.disconnects.append(rc)

    def _on_lost(self, reason):
        self.disconnects.append(reason)
        self.connected.set()  # a constructor still waiting for the CONNACK fails at once

    @property
    def unexpected_disconnects(self):
        return [rc for rc in self.disconnects if rc != 0]

    def publish(self, topic, payload, qos=1, retain=False, timeout=WAIT):
        """Publishes; for QoS > 0 waits for the PUBACK/PUBCOMP and asserts it came."""
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        assert info.rc == paho.MQTT_ERR_SUCCESS, "publish failed locally: rc=%d" % info.rc
        if qos > 0:
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError) as e:
                raise AssertionError("device %s: publish not acknowledged: %s"
                                     % (self.client_id, e))
            assert info.is_published(), "device %s: no PUBACK within %.1fs" % (
                self.client_id, timeout)
        return info

    def publish_async(self, topic, payload, qos=1):
        info = self.c.publish(topic, payload, qos=qos)
        assert info.rc == paho.MQTT_ERR_SUCCESS, "publish failed locally: rc=%d" % info.rc
        return info

    def close(self):
        self.c.close()
