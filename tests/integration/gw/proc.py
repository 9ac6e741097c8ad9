"""The processes the helpers start, and what is shown when a test fails.

Every process started here is recorded by PID (_track) and stopped by PID: the helper that
started it stops it, and reap_all() (conftest, at session end) kills whatever a failed or
interrupted test left behind. LOG_SOURCES holds the objects whose logs are worth adding to
a failing test's report (each has dump() -> (title, text))."""

import os
import signal
import subprocess
import threading

from .env import STOP_WAIT

# Processes started by the helpers, by PID, so that a crashed test run still
# stops them (conftest calls reap_all() at session end).
_PROCS = {}
_PROCS_LOCK = threading.Lock()

# Objects whose logs are worth showing when a test fails (conftest dumps them).
LOG_SOURCES = []


def _track(proc, what):
    with _PROCS_LOCK:
        _PROCS[proc.pid] = (proc, what)


def _untrack(proc):
    with _PROCS_LOCK:
        _PROCS.pop(proc.pid, None)


def stop_process(proc, sig=signal.SIGTERM, timeout=None):
    """Signals a process the helpers started (by PID), waits for it (SIGKILL after timeout,
    STOP_WAIT by default) and forgets it."""
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(STOP_WAIT if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
    _untrack(proc)


def reap_all():
    """Kill (by PID) every process the helpers started and that is still running."""
    with _PROCS_LOCK:
        procs = list(_PROCS.values())
        _PROCS.clear()
    for proc, _ in procs:
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
