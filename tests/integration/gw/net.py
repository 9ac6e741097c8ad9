"""Local TCP: free ports, the IPv6 loopback check, and waiting until a port accepts."""

import socket
import time

from .env import WAIT


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A port that was free a moment ago (bind port 0, read it, close)."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def ipv6_loopback_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def wait_port(host, port, timeout=WAIT, proc=None):
    """Until a TCP connect to host:port succeeds (or proc died)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise AssertionError("process exited with %s before %s:%d accepted connections"
                                 % (proc.returncode, host, port))
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(1)
                s.connect((host, port))
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise AssertionError("%s:%d did not accept connections within %.1fs" % (host, port, timeout))
        time.sleep(0.02)
