"""Lan: a private IPv4 network of network namespaces a test makes and removes itself, so that
several "boxes" (a load balancer, gateways) each have an address of their own: one switch
namespace holding a bridge, one veth pair from it into each member namespace (its eth0), and
one into the test's own namespace, where the broker and the devices stay. Lan.exec(member) is
the command prefix that runs a program there (ip netns exec, which execs it, so the PID is the
program's and the helpers stop it by PID)."""

import os
import subprocess

from .env import WAIT


def _ip(*args, check=True):
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=WAIT)
    if check and r.returncode != 0:
        raise OSError("ip %s: %s" % (" ".join(args), (r.stderr or r.stdout).strip()))
    return r


def _free_subnet():
    """A 10.213.N.0/24 that no route of ours covers yet."""
    routes = _ip("-4", "route", "show", "table", "all").stdout
    for i in range(250):
        n = (os.getpid() + i) % 250 + 1
        if "10.213.%d." % n not in routes:
            return "10.213.%d" % n
    raise OSError("no free 10.213.N.0/24 subnet")


class Lan:
    """members: names ("lb", "gwa", ...); each gets namespace PREFIX-NAME and address .2, .3,
    ... in order; the test's own end is .1. Use as a context manager, or up() / close()."""

    def __init__(self, members):
        self.tag = "igw%d" % (os.getpid() % 100000)
        self.members = list(members)
        self.net = None
        self.made = []       # namespaces created, removed in reverse order
        self.host_if = None  # the veth end in the test's own namespace

    def ns(self, member):
        return "%s-%s" % (self.tag, member)

    def exec(self, member):
        return ["ip", "netns", "exec", self.ns(member)]

    def addr(self, member):
        """The member's address; "host" is the test's own."""
        if member == "host":
            return "%s.1" % self.net
        return "%s.%d" % (self.net, self.members.index(member) + 2)

    def _add_ns(self, name):
        _ip("netns", "add", name)
        self.made.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def up(self):
        try:
            return self._up()
        except BaseException:
            self.close()
            raise

    def _up(self):
        self.net = _free_subnet()
        sw = self.ns("sw")
        self._add_ns(sw)
        _ip("-n", sw, "link", "add", "br0", "type", "bridge")
        _ip("-n", sw, "link", "set", "br0", "up")
        # The test's own end (interface names: at most 15 bytes).
        self.host_if = "%sh" % self.tag
        _ip("link", "add", self.host_if, "type", "veth", "peer", "name", "p0", "netns", sw)
        _ip("-n", sw, "link", "set", "p0", "master", "br0", "up")
        _ip("addr", "add", "%s/24" % self.addr("host"), "dev", self.host_if)
        _ip("link", "set", self.host_if, "up")
        for i, m in enumerate(self.members, 1):
            ns = self.ns(m)
            self._add_ns(ns)
            _ip("-n", sw, "link", "add", "p%d" % i, "type", "veth", "peer", "name", "eth0",
                "netns", ns)
            _ip("-n", sw, "link", "set", "p%d" % i, "master", "br0", "up")
            _ip("-n", ns, "addr", "add", "%s/24" % self.addr(m), "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
        return self

    def close(self):
        """Removes what up() made (stop the programs running in it first). Removing the
        switch namespace removes every veth pair with it."""
        if self.host_if:
            _ip("link", "del", self.host_if, check=False)
        for name in reversed(self.made):
            _ip("netns", "del", name, check=False)
        self.made = []

    def __enter__(self):
        return self.up()

    def __exit__(self, *exc):
        self.close()


def netns_unavailable():
    """None when this process can make network namespaces, else why not (for a skip)."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    probe = "igwprobe%d" % os.getpid()
    r = _ip("netns", "add", probe, check=False)
    if r.returncode != 0:
        return "ip netns add is not permitted here: %s" % (r.stderr.strip() or r.returncode)
    try:
        r = _ip("-n", probe, "link", "add", "br0", "type", "bridge", check=False)
        if r.returncode != 0:
            return "cannot create a bridge: %s" % (r.stderr.strip() or r.returncode)
    finally:
        _ip("netns", "del", probe, check=False)
    return None
