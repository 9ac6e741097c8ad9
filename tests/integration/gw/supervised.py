"""SupervisedClient: the paho client under both the observer and the paho devices, whose
network thread survives every exception on its socket (and, for the observer, reconnects)."""

import threading
import time

import paho.mqtt.client as paho


class SupervisedClient(paho.Client):
    """A paho.Client whose loop_start() thread survives every exception.

    paho 1.6's network loop turns only some socket errors into a lost connection. Others
    leave loop_forever() and end loop_start()'s thread for good, silently and without
    on_disconnect: an ssl.SSLEOFError while writing (a broker stopped in the middle of a
    write), an SSL alert while reading, an exception in a callback. An observer then stops
    counting, and a device never reports the loss. Here every such exception is recorded in
    loop_errors and handled as a lost connection: on_lost(reason) is called, and with
    keep_reconnecting the client connects again (every 50 ms .. 0.5 s) and loops on; without
    it the thread ends, as a device's must (a dropped device connection is for the test to
    see). Stop it with close(), not loop_stop() alone."""

    def __init__(self, *a, keep_reconnecting=True, on_lost=None, **kw):
        super().__init__(*a, **kw)
        self.keep_reconnecting = keep_reconnecting
        self.on_lost = on_lost
        self.loop_errors = []  # (monotonic time, repr) of every exception the loop raised
        self._closing = threading.Event()

    def _stopping(self):
        # loop_stop() sets paho's _thread_terminate; close() sets _closing first.
        return self._closing.is_set() or getattr(self, "_thread_terminate", False) is True

    def _note(self, what, e):
        self.loop_errors.append((time.monotonic(), "%s: %r" % (what, e)))

    def _drop_socket(self):
        s = self.socket()
        if s is not None:
            try:
                s.close()
            except Exception:  # already broken: closing is all that is left to do
                pass

    def _thread_main(self):
        # The body of loop_start()'s thread (paho calls self._thread_main there).
        while not self._stopping():
            try:
                self.loop_forever(retry_first_connection=True)
                return  # loop_stop(), disconnect(), or a loss without reconnect_on_failure
            except Exception as e:
                self._note("loop", e)
                reason = "exception in the paho loop: %r" % e
            self._drop_socket()
            if self._stopping():
                return
            if self.on_lost is not None:
                try:
                    self.on_lost(reason)
                except Exception as e:
                    self._note("on_lost", e)
            if not self.keep_reconnecting:
                return
            delay = 0.05
            while True:
                self._closing.wait(delay)
                if self._stopping():
                    return
                try:
                    self.reconnect()  # new socket, CONNECT queued; loop_forever reads CONNACK
                    break
                except Exception as e:
                    self._note("reconnect", e)
                    self._drop_socket()
                    delay = min(delay * 2, 0.5)

    def close(self):
        """DISCONNECT if the connection still takes it, then stop the loop thread."""
        self._closing.set()
        try:
            self.disconnect()
        except Exception:  # a dead socket: nothing to say goodbye on
            pass
        self.loop_stop()
        self._drop_socket()
