"""HAProxy (Debian's haproxy package) as the load balancer in front of gateways: HAProxy runs
one configuration a test writes (TCP-mode frontends and backends, send-proxy, health checks),
in the foreground, started and stopped by PID, optionally inside a network namespace
(prefix = ["ip", "netns", "exec", NS]). haproxy_available() says whether the binary is there
(tools/install-deps installs it)."""

import os
import shutil
import subprocess
from pathlib import Path

from .env import WAIT
from .net import wait_port
from .proc import LOG_SOURCES, _track, stop_process
from .util import read_log, tail

HAPROXY = os.environ.get("HAPROXY", "/usr/sbin/haproxy")

# What every test configuration starts with: TCP mode, bounded timeouts, no daemon, no
# user switch (the tests run as root and stop it by PID).
HAPROXY_BASE = """\
global
    maxconn 4096

defaults
    mode tcp
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    timeout check 1s
"""


def haproxy_available():
    return os.access(HAPROXY, os.X_OK) or shutil.which("haproxy") is not None


class HAProxy:
    """One haproxy process (-db: foreground, no fork) running HAPROXY_BASE + `sections`."""

    def __init__(self, workdir, sections, name="haproxy", prefix=()):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.prefix = list(prefix)
        self.conf = self.dir / ("%s.cfg" % name)
        self.logfile = self.dir / ("%s.stderr" % name)
        self.conf.write_text(HAPROXY_BASE + "\n" + sections)
        self.proc = None
        LOG_SOURCES.append(self)

    def check_config(self):
        r = subprocess.run([*self.prefix, HAPROXY, "-c", "-f", str(self.conf)],
                           capture_output=True, text=True, timeout=WAIT)
        assert r.returncode == 0, "haproxy -c:\n%s%s\n%s" % (r.stdout, r.stderr,
                                                            self.conf.read_text())

    def start(self, wait=()):
        """Starts it; wait: (host, port) pairs of its frontends to wait for."""
        assert self.proc is None or self.proc.poll() is not None, "haproxy already running"
        self.check_config()
        self.log_fh = open(self.logfile, "ab")
        self.proc = subprocess.Popen([*self.prefix, HAPROXY, "-db", "-f", str(self.conf)],
                                     stdin=subprocess.DEVNULL, stdout=self.log_fh,
                                     stderr=self.log_fh)
        _track(self.proc, "haproxy")
        for host, port in wait:
            wait_port(host, port, WAIT, self.proc)
        return self

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        p = self.proc
        if p is None:
            return
        stop_process(p)  # SIGTERM: a hard stop, the tests' connections may go
        self.log_fh.close()

    def close(self):
        self.stop()
        if self in LOG_SOURCES:
            LOG_SOURCES.remove(self)

    def log_text(self):
        return read_log(self.logfile)

    def dump(self):
        return ("haproxy %s (%s)" % (self.name, self.conf),
                self.conf.read_text() + "\n-- stderr:\n" + tail(self.log_text(), 60))
