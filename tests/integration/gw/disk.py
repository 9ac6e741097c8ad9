"""Disk-full helpers for the spool tests (the file systems come from conftest's tmpfs)."""

import errno
import os


def fill_fs(path):
    """Writes `path` until its file system has no block left; returns the bytes written."""
    total = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in (1 << 20, 1 << 16, 1 << 12, 512, 1):
            data = b"\0" * chunk
            while True:
                try:
                    n = os.write(fd, data)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
                total += n
                if n < chunk:
                    break
        os.fsync(fd)
    finally:
        os.close(fd)
    return total
