"""Password file entries made with hashlib, not with the code under test: the format of
`iotgw passwd` (docs/iotgw.8), PBKDF2-HMAC-SHA256 with a random 16-byte salt."""

import base64
import hashlib
import os

SCHEME = "$iotgw-pbkdf2-sha256$"


def pw_line(device, password, iterations=1000, salt=None):
    """One `device:$iotgw-pbkdf2-sha256$ITER$SALT$HASH` line (no newline)."""
    salt = os.urandom(16) if salt is None else salt
    h = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations, 32)
    return "%s:%s%d$%s$%s" % (device, SCHEME, iterations, base64.b64encode(salt).decode(),
                              base64.b64encode(h).decode())


def pw_file(path, entries, iterations=1000):
    """Writes {device: password} as a password file (mode 0640); returns the path."""
    path.write_text("".join(pw_line(d, p, iterations) + "\n" for d, p in entries.items()))
    os.chmod(path, 0o640)
    return path
