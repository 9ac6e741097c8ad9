"""openssl s_client as a device: the one helper for tests that need a real client's TLS
options (explicit protocol versions and cipher lists, SNI set to an IP address, session
files, max fragment length), the way an ESP8266/ESP32 TLS stack offers them.

SClientProcess is one running s_client, tracked by PID; leaving its `with` block, normally or
by an exception (a failed assertion, a timeout), kills it if it still runs and reaps it.
s_client() runs one bounded exchange through it and returns the outcome (SClient);
s_client_publish() and s_client_device() are the handshake + CONNECT + QoS 1 PUBLISH that
most TLS tests make."""

import os
import re
import select
import subprocess
import time

from .env import WAIT
from .packets import CONNACK_OK, connect_pkt, publish_pkt
from .proc import _track, _untrack
from .util import tail

# The PUBACK s_client_publish() waits for: its PUBLISH has packet id 7.
PUBACK_7 = b"\x40\x02\x00\x07"


class SClient:
    """The outcome of one openssl s_client run: its output (stdout and stderr) and exit status."""

    def __init__(self, args, out, rc):
        self.args = args
        self.out = out
        self.text = out.decode("utf-8", "replace")
        self.rc = rc

    def _hs(self):
        # "New, TLSv1.2, Cipher is X": the version there is the cipher's ("SSLv3" for the
        # SHA-1 suites); the protocol is on the "Protocol  :" line of the session.
        return re.search(r"^(New|Reused), (\S+), Cipher is (\S+)", self.text, re.M)

    @property
    def established(self):
        """The handshake completed (TLS 1.3: on the client side) with a real cipher."""
        m = self._hs()
        return bool(m and m.group(3) != "(NONE)")

    @property
    def version(self):
        # TLS 1.3: no session block at handshake time, but the cipher names the version.
        m = re.search(r"^\s*Protocol\s*: (\S+)", self.text, re.M)
        if m:
            return m.group(1)
        m = self._hs()
        return m.group(2) if m and m.group(2) == "TLSv1.3" else None

    @property
    def cipher(self):
        m = self._hs()
        return m.group(3) if m else None

    @property
    def reused(self):
        m = self._hs()
        return bool(m and m.group(1) == "Reused")

    @property
    def refused(self):
        """Nothing got through: neither a CONNACK nor s_client_publish's PUBACK came back."""
        return not self.has(CONNACK_OK) and not self.has(PUBACK_7)

    def has(self, data):
        return data in self.out

    def __repr__(self):
        return "s_client %s (exit %s):\n%s" % (" ".join(self.args), self.rc,
                                                tail(self.text, 60))


class SClientProcess:
    """One running `openssl ARGS` (s_client) with its stdin and output (stdout and stderr
    together) on pipes. Use it as a context manager: leaving the block kills and reaps the
    process whatever happened inside. close() does the same and returns the SClient."""

    def __init__(self, args):
        self.args = list(args)
        self.out = b""
        self._result = None
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        _track(self.proc, "openssl s_client")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        """Writes data to s_client's stdin (it sends it once the handshake is done)."""
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # s_client has exited (a refused handshake): its output says why

    def read_until(self, until, timeout=WAIT):
        """Reads s_client's output until it holds the bytes `until` (None: until s_client
        exits), s_client exits, or `timeout` passes. Returns whether `until` was seen."""
        deadline = time.monotonic() + timeout
        while not (until and until in self.out):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if not r:
                break
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                break
            self.out += chunk
        return bool(until) and until in self.out

    def close(self):
        """Kills s_client if it still runs, reaps it and returns the SClient. Idempotent."""
        if self._result is not None:
            return self._result
        p = self.proc
        if p.poll() is None:
            p.kill()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass  # still tracked: reap_all() kills it at the end of the session
        else:
            _untrack(p)
        for f in (p.stdin, p.stdout):
            try:
                f.close()
            except BrokenPipeError:
                pass
        self._result = SClient(self.args, self.out, p.returncode)
        return self._result


def s_client(pki, port, *opts, cert="dev0001", data=None, until=CONNACK_OK, timeout=WAIT):
    """Runs openssl s_client against 127.0.0.1:port (verifying the gateway against
    devices-ca, presenting `cert` when given; opts are more s_client options), writes `data`
    (default: a CONNECT) once the handshake is done and reads until the bytes `until` arrive,
    the gateway closes, or timeout. Bounded; the process is reaped before this returns."""
    args = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
            "-CAfile", pki.pem("devices-ca"), "-verify_return_error", *opts]
    if cert:
        args += ["-cert", pki.pem(cert), "-key", pki.key(cert)]
    if data is None:
        data = connect_pkt(cert or "s-client", keepalive=30)
    with SClientProcess(args) as p:
        p.send(data)
        p.read_until(until, timeout)
        return p.close()


def s_client_publish(pki, port, version="tls1_2", cipher=None, cert="dev0001", extra=(),
                     client_id=None, payload="21.5"):
    """A TLS 1.2 (cipher: a TLS 1.2 cipher list) or 1.3 (cipher: suites) handshake as `cert`
    (with its intermediate when the PKI has NAME.chain.pem), a CONNECT (client id: client_id,
    else the certificate's name, which is its CN) and a QoS 1 PUBLISH of `payload` on
    esp/ID/t with packet id 7; returns the SClient (r.has(PUBACK_7) when it got through)."""
    opts = ["-" + version]
    if cipher:
        opts += ["-ciphersuites" if version == "tls1_3" else "-cipher", cipher]
    chain = pki.dir / (cert + ".chain.pem")
    if chain.exists():
        opts += ["-cert_chain", str(chain)]
    cid = client_id or cert
    data = connect_pkt(cid, keepalive=30) + publish_pkt("esp/%s/t" % cid, payload, qos=1, pid=7)
    return s_client(pki, port, *opts, *extra, cert=cert, data=data, until=PUBACK_7)


def s_client_device(g, name, version="tls1_2", extra=()):
    """s_client_publish as device `name` (its certificate, its name as client id) against
    gateway g's first listener."""
    return s_client_publish(g.pki, g.port(), version, cert=name, extra=extra)
