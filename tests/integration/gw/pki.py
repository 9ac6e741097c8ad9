"""The test session's certificates, made with tools/iotgw-pki (Pki), and TLS client
contexts like a sensor node's (Pki.client_ctx)."""

import ssl
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .env import PKI_TOOL


class Pki:
    """Certificates for one test session, made with tools/iotgw-pki."""

    DEVICES = ("dev0001", "dev0002", "dev0003", "dev0004")

    def __init__(self, directory):
        self.dir = Path(directory)

    def run(self, *args):
        r = subprocess.run([PKI_TOOL, "-d", str(self.dir), *args], capture_output=True,
                           text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("iotgw-pki %s failed (%d):\n%s%s"
                               % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def build(self):
        with ThreadPoolExecutor(3) as ex:
            for f in [ex.submit(self.run, "ca", ca)
                      for ca in ("devices-ca", "upstream-ca", "other-ca")]:
                f.result()
        leaves = [
            ("server", "gateway", "--ca", "devices-ca"),
            # A second server certificate for the certificate-reload test.
            ("server", "gateway-b", "--ca", "devices-ca"),
            # An RSA server certificate: older device stacks only verify RSA chains.
            ("server", "gateway-rsa", "--ca", "devices-ca", "--rsa"),
            ("server", "broker", "--ca", "upstream-ca"),
            ("client", "gateway-upstream", "--ca", "upstream-ca"),
            ("client", "observer", "--ca", "upstream-ca"),
            ("client", "intruder", "--ca", "other-ca"),
            ("client", "expired", "--ca", "devices-ca", "--cn", "dev0666", "--expired"),
            # identity = san-dns: the device id comes from the DNS SAN, not the CN.
            ("client", "sandev", "--ca", "devices-ca", "--cn", "sandev-cn",
             "--san", "DNS:dev0077"),
        ] + [("client", d, "--ca", "devices-ca") for d in self.DEVICES]
        with ThreadPoolExecutor(4) as ex:
            for f in [ex.submit(self.run, *leaf) for leaf in leaves]:
                f.result()
        return self

    def pem(self, name):
        return str(self.dir / (name + ".pem"))

    def key(self, name):
        return str(self.dir / (name + ".key"))

    def der(self, name):
        return (self.dir / (name + ".der")).read_bytes()

    def client_ctx(self, cert=None, ca="devices-ca", check_hostname=True, max_version=None,
                   min_version=None, ciphers=None, curve=None):
        """A TLS client context like a sensor node's: trusts `ca`, presents `cert` if given."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.pem(ca))
        ctx.check_hostname = check_hostname
        if not check_hostname:
            ctx.verify_mode = ssl.CERT_REQUIRED
        if cert:
            ctx.load_cert_chain(self.pem(cert), self.key(cert))
        if max_version:
            ctx.maximum_version = max_version
        if min_version:
            ctx.minimum_version = min_version
        if ciphers:
            ctx.set_ciphers(ciphers)
        if curve:
            ctx.set_ecdh_curve(curve)
        return ctx
