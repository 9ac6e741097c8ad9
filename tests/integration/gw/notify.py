"""The service manager's side of sd_notify: the NOTIFY_SOCKET a gateway reports READY=1,
STATUS=, RELOADING=1 ... to (NotifySocket), and the fields of one datagram (notify_fields)."""

import os
import shutil
import socket
import threading
import time

from .env import WAIT
from .util import unique


class NotifySocket:
    """The NOTIFY_SOCKET end the service manager would hold: an AF_UNIX datagram socket,
    read by a background thread. Kept in a short /tmp path (sun_path is 108 bytes)."""

    def __init__(self):
        import tempfile
        self.dir = tempfile.mkdtemp(prefix="iotgw-n", dir="/tmp")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.datagrams = []  # (monotonic time, text)
        self.synced = set()  # sync() tokens the reader has collected (not in datagrams)
        self.cond = threading.Condition()
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            text = data.decode("utf-8", "replace")
            with self.cond:
                if text.startswith(self.SYNC):
                    self.synced.add(text)
                else:
                    self.datagrams.append((time.monotonic(), text))
                self.cond.notify_all()

    SYNC = "IOTGW_TEST_SYNC="

    def sync(self, timeout=WAIT):
        """Barrier: sends a datagram of our own to the socket and waits until the reader has
        collected it. One socket queues its datagrams in arrival order, so everything sent
        before this call (by a daemon that has exited since, say) is in messages() when it
        returns. The token itself is not."""
        token = unique(self.SYNC)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(token.encode(), self.path)
        deadline = time.monotonic() + timeout
        with self.cond:
            while token not in self.synced:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("notify socket reader did not collect %s within %.1fs"
                                         % (token, timeout))
                self.cond.wait(min(left, 0.1))

    def times(self):
        """(monotonic arrival time, text) of every datagram, oldest first."""
        with self.cond:
            return list(self.datagrams)

    def messages(self):
        with self.cond:
            return [d for _, d in self.datagrams]

    def wait_for(self, pred, timeout=WAIT, what="notification", start=0):
        """Waits for a datagram (index >= start) satisfying pred; returns its index."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.datagrams)):
                    if pred(self.datagrams[i][1]):
                        return i
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %s within %.1fs; datagrams: %r"
                                         % (what, timeout, [d for _, d in self.datagrams][-20:]))
                self.cond.wait(min(left, 0.1))

    def close(self):
        self._stop = True
        self.thread.join(2)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def notify_fields(datagram):
    """'READY=1\\nSTATUS=x' -> {'READY': '1', 'STATUS': 'x'}"""
    out = {}
    for line in datagram.split("\n"):
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out
