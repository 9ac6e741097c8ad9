"""Fixtures for the iotgw integration tests (real iotgw, real mosquitto, real TLS).

  pki            session: certificates made once with tools/iotgw-pki
  rpki           session: pki plus the revocation CAs and devices (gw.revocation_pki)
  upstream       module: a mosquitto broker (mutual TLS) with an observer subscribed to '#'
  make_gateway   function: factory starting iotgw processes for one test
  gw.module_gateway() for modules sharing one gateway between their tests

On a failing test the gateway stderr and the mosquitto log are added to the report.
"""

import os
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import gw  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "no_iotgw: runs without the iotgw binary (harness checks)")


def pytest_sessionstart(session):
    if not os.access(gw.IOTGW_BIN, os.X_OK):
        # Collecting still works (pytest --collect-only); running needs the daemon.
        session.config._iotgw_missing = True


def pytest_runtest_setup(item):
    if getattr(item.config, "_iotgw_missing", False) and "no_iotgw" not in item.keywords:
        pytest.fail("IOTGW_BIN=%s is not an executable (run `make` first)" % gw.IOTGW_BIN,
                    pytrace=False)


def pytest_sessionfinish(session, exitstatus):
    gw.reap_all()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when in ("setup", "call"):
        for src in list(gw.LOG_SOURCES):
            try:
                title, text = src.dump()
            except Exception as e:  # a dump must never hide the real failure
                title, text = repr(src), "cannot dump: %r" % e
            rep.sections.append((title, text))


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    if not os.access(gw.PKI_TOOL, os.X_OK):
        pytest.fail("%s is missing or not executable" % gw.PKI_TOOL, pytrace=False)
    return gw.Pki(tmp_path_factory.mktemp("pki")).build()


@pytest.fixture(scope="session")
def rpki(pki):
    """The session's PKI with the revocation CAs (gw.REV_ROOT, gw.REV_INTER) and their
    devices added. Tests that revoke change these CAs' databases only."""
    return gw.revocation_pki(pki)


@pytest.fixture(scope="module")
def upstream(pki, tmp_path_factory):
    u = gw.Upstream(pki, tmp_path_factory.mktemp("upstream"))
    try:
        u.start()
        u.start_observer()
        yield u
    finally:
        u.close()


@pytest.fixture
def make_gateway(request, pki, tmp_path):
    """make_gateway(upstream=..., listeners=[...], start=True, **Gateway kwargs) -> Gateway.
    Gateways still running at the end of the test must stop with exit 0 on SIGTERM."""
    made = []

    def factory(start=True, **kw):
        kw.setdefault("name", gw.safe_name("gw-" + request.node.name, 50) + "-%d" % len(made))
        g = gw.Gateway(tmp_path / ("gw%d" % len(made)), pki, **kw)
        made.append(g)
        if start:
            g.start()
        return g

    yield factory
    errors = []
    for g in made:
        try:
            g.finalize()
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture
def devices(request):
    """devices(port, client_id, **kw) -> gw.Device, closed at the end of the test."""
    made = []

    def factory(*a, **kw):
        d = gw.Device(*a, **kw)
        made.append(d)
        return d
    yield factory
    for d in made:
        d.close()


@pytest.fixture
def raw(request):
    """raw(port, **kw) -> gw.RawConn, closed at the end of the test."""
    made = []

    def factory(*a, **kw):
        c = gw.RawConn(*a, **kw)
        made.append(c)
        return c
    yield factory
    for c in made:
        c.close()


def _umount(mnt):
    for args in (["umount", str(mnt)], ["umount", "-l", str(mnt)]):
        for _ in range(20):
            r = subprocess.run(args, capture_output=True, text=True, timeout=gw.WAIT)
            if r.returncode == 0 or not os.path.ismount(mnt):
                return
            time.sleep(0.1)
    raise AssertionError("cannot unmount %s: %s" % (mnt, r.stderr))


@pytest.fixture
def tmpfs(tmp_path):
    """tmpfs(size) mounts a tmpfs of that size ("4m") for a spool and returns its path; it is
    unmounted after the test (stop the gateway using it first). Skips without root."""
    mounted = []

    def mount(size):
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs for the spool needs root (mount -t tmpfs)")
        mnt = tmp_path / ("spoolfs%d" % len(mounted))
        mnt.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs",
                            str(mnt)], capture_output=True, text=True, timeout=gw.WAIT)
        if r.returncode != 0:
            pytest.skip("mount -t tmpfs is not permitted here: %s"
                        % (r.stderr.strip() or r.returncode))
        mounted.append(mnt)
        return mnt
    yield mount
    for mnt in mounted:
        _umount(mnt)
