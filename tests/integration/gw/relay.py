"""RecordRelay: a TCP relay between the gateway and its upstream broker that reads the TLS
record headers of what the gateway sends (the records themselves stay encrypted), and can
stop reading from the gateway, as a stalled network or a slow broker does."""

import socket
import struct
import threading

from .env import WAIT
from .net import free_port

APPLICATION_DATA = 23


class RecordRelay:
    """Listens on 127.0.0.1:port and forwards each connection to 127.0.0.1:target_port.
    Gateway-to-broker bytes are parsed as TLS records: `records` lists (content type,
    length) in order, over every connection. pause() stops reading from the gateway (the
    gateway's socket fills up, its writes then block); resume() reads again."""

    def __init__(self, target_port, rcvbuf=None):
        self.target_port = target_port
        self.port = free_port()
        self.records = []
        self._lock = threading.Lock()
        self._go = threading.Event()
        self._go.set()
        self._stop = False
        self._threads = []
        self._socks = []
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:
            # Inherited by accepted sockets: a small window, so that a paused relay soon
            # leaves the gateway with a full socket.
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(8)
        self.listener.settimeout(0.2)
        self._spawn(self._accept_loop)

    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self._threads.append(t)

    def _accept_loop(self):
        while not self._stop:
            try:
                gw_sock, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            up = socket.create_connection(("127.0.0.1", self.target_port), timeout=WAIT)
            for s in (gw_sock, up):
                s.settimeout(0.2)
                self._socks.append(s)
            self._spawn(self._pump, gw_sock, up, True)
            self._spawn(self._pump, up, gw_sock, False)

    def _pump(self, src, dst, parse):
        pending = b""
        while not self._stop:
            if parse and not self._go.wait(0.2):
                continue
            try:
                data = src.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                data = b""
            if not data:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            if parse:
                pending += data
                while len(pending) >= 5:
                    ctype, _, length = struct.unpack("!BHH", pending[:5])
                    if len(pending) < 5 + length:
                        break
                    with self._lock:
                        self.records.append((ctype, length))
                    pending = pending[5 + length:]
            try:
                dst.sendall(data)
            except OSError:
                return

    def mark(self):
        """How many records have been seen so far (for counting those after it)."""
        with self._lock:
            return len(self.records)

    def since(self, mark, ctype=APPLICATION_DATA):
        """The records of content type ctype seen after mark: (type, length) each."""
        with self._lock:
            return [r for r in self.records[mark:] if r[0] == ctype]

    def pause(self):
        self._go.clear()

    def resume(self):
        self._go.set()

    def close(self):
        self._stop = True
        self._go.set()
        self.listener.close()
        for t in self._threads:
            t.join(2)
        for s in self._socks:
            s.close()
