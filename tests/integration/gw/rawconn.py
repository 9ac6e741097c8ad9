"""RawConn: a device speaking MQTT bytes by hand over TCP (optionally TLS), with bounded
reads of whole packets, and Closed, raised when the gateway closes the connection."""

import errno
import os
import socket
import ssl
import time

from .env import WAIT
from .packets import CONNACK_OK, connect_pkt


class Closed(Exception):
    pass


# Source ports below the kernel's ephemeral range (32768-60999 here), each used once per test
# session: the gateway names a connection by "address:port", and a port the kernel reused
# from an earlier connection to the same gateway would make that earlier connection's log
# lines look like this one's (an absence check failing one run in many).
_LOW, _HIGH = 20000, 32000
_next = [_LOW + (os.getpid() * 7919) % (_HIGH - _LOW)]


def _bind_unique(s, host):
    for _ in range(_HIGH - _LOW):
        port = _next[0]
        _next[0] = _LOW if port + 1 >= _HIGH else port + 1
        try:
            s.bind((host, port))
            return
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise
    raise AssertionError("no free source port in %d-%d" % (_LOW, _HIGH))


class RawConn:
    """A device speaking MQTT bytes over TCP (optionally TLS) by hand."""

    def __init__(self, port, host="127.0.0.1", tls=None, server_hostname=None, timeout=WAIT):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(timeout)
        # Taken before the connect: the gateway's timers for this connection (handshake,
        # CONNECT, keepalive) cannot have started earlier than t_open / t_sent.
        # On loopback the source is the destination's address; elsewhere (a gateway in a
        # network namespace) any address of ours, the kernel picks the route's.
        local = host.startswith("127.") or host == "::1"
        _bind_unique(s, host if local else ("::" if family == socket.AF_INET6 else "0.0.0.0"))
        self.t_open = self.t_sent = time.monotonic()
        s.connect((host, port))
        self.host = host
        self.local = s.getsockname()
        # How the gateway names us in peer= fields.
        self.peer_str = ("[%s]:%d" % self.local[:2]) if family == socket.AF_INET6 \
            else "%s:%d" % self.local[:2]
        self.sock = s
        self.buf = b""
        self.closed = False
        if tls is not None:
            self.start_tls(tls, server_hostname)

    def start_tls(self, ctx, server_hostname=None):
        """TLS handshake on the connected socket; ssl.SSLError etc. propagate (socket closed)."""
        try:
            self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname or self.host)
        except BaseException:
            self.closed = True
            self.sock.close()
            raise
        return self

    @property
    def local_port(self):
        return self.local[1]

    def send(self, data):
        self.t_sent = time.monotonic()
        self.sock.sendall(data)

    def send_slowly(self, data, delay=0.005):
        for i in range(len(data)):
            self.t_sent = time.monotonic()
            self.sock.sendall(data[i:i + 1])
            time.sleep(delay)

    def _fill(self, deadline):
        """Reads more bytes into buf; raises Closed on EOF/reset, socket.timeout at deadline."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("deadline")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError) as e:
            self.closed = True
            raise Closed(repr(e))
        if not data:
            self.closed = True
            raise Closed("EOF")
        self.buf += data

    def read_exact(self, n, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _take_packet(self):
        """One whole packet from buf (removed from it), or None."""
        if len(self.buf) < 2:
            return None
        mult, n, i = 1, 0, 1
        while i < len(self.buf) and i <= 4:
            b = self.buf[i]
            n += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                if len(self.buf) < i + n:
                    return None
                pkt, self.buf = self.buf[:i + n], self.buf[i + n:]
                return pkt
        return None

    def read_packet(self, timeout=WAIT):
        """Returns one whole packet as bytes (fixed header included)."""
        deadline = time.monotonic() + timeout
        while True:
            pkt = self._take_packet()
            if pkt is not None:
                return pkt
            self._fill(deadline)

    def available_packets(self):
        """Every whole packet received so far, without waiting: what the socket already
        holds is read first. For checking, after a barrier, that something did not come.
        Sets closed if the peer has closed (or reset) the connection."""
        self.sock.settimeout(0)
        try:
            while not self.closed:
                try:
                    data = self.sock.recv(65536)
                except (BlockingIOError, ssl.SSLWantReadError, socket.timeout):
                    break
                except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
                    self.closed = True
                    break
                if not data:
                    self.closed = True
                    break
                self.buf += data
        finally:
            if not self.closed:
                self.sock.settimeout(WAIT)
        out = []
        while True:
            pkt = self._take_packet()
            if pkt is None:
                return out
            out.append(pkt)

    def expect(self, expected, timeout=WAIT, what="packet"):
        try:
            got = self.read_packet(timeout)
        except Closed as e:
            raise AssertionError("connection closed (%s) while waiting for %s %s"
                                 % (e, what, expected.hex(" ")))
        except socket.timeout:
            raise AssertionError("no %s within %.1fs (expected %s)" % (what, timeout,
                                                                         expected.hex(" ")))
        assert got == expected, "%s: got %s, expected %s" % (what, got.hex(" "), expected.hex(" "))
        return got

    def connect(self, client_id, **kw):
        self.send(connect_pkt(client_id, **kw))
        return self.expect(CONNACK_OK, what="CONNACK")

    def wait_closed(self, timeout=WAIT):
        """Waits for the peer to close; returns (seconds waited, bytes received meanwhile).
        AssertionError if still open at the deadline."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        got = b""
        if self.closed:
            return 0.0, got
        while True:
            try:
                self._fill(deadline)
                got += self.buf
                self.buf = b""
            except Closed:
                return time.monotonic() - t0, got
            except socket.timeout:
                raise AssertionError("connection still open after %.1fs (received %r)"
                                     % (timeout, got[:64]))

    def is_open_for(self, seconds):
        """True if the peer has not closed within `seconds` (data received is discarded)."""
        try:
            self.wait_closed(seconds)
            return False
        except AssertionError:
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
