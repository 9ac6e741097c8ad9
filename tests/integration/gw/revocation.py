"""The revocation PKI of the device-trust tests: a root CA (REV_ROOT) signing devices rev-a,
rev-b and rev-e, and an intermediate (REV_INTER, signed by the root) signing rev-c and rev-d,
added once to the session's PKI directory (revocation_pki, behind conftest's `rpki` fixture);
and CRL bundles written the way an operator's deploy script would (crl_bundle). Revocations
change these CAs' databases only, never the CAs of the other tests."""

import os

REV_ROOT, REV_INTER = "rev-root", "rev-int"


def revocation_pki(pki):
    """Adds the revocation CAs and their devices to pki unless an earlier call did; returns
    pki."""
    if not (pki.dir / (REV_INTER + ".pem")).exists():
        pki.run("ca", REV_ROOT)
        pki.run("ca", REV_INTER, "--ca", REV_ROOT)
        for name in ("rev-a", "rev-b", "rev-e"):
            pki.run("client", name, "--ca", REV_ROOT)
        for name in ("rev-c", "rev-d"):
            pki.run("client", name, "--ca", REV_INTER)
    return pki


def crl_bundle(pki, path, revoke=(), cas=(REV_ROOT, REV_INTER)):
    """Revokes each (NAME, CANAME), then writes the CRLs of `cas` into path (atomically, as
    an operator's deploy script would)."""
    for name, ca in revoke:
        pki.run("revoke", name, "--ca", ca)
    for ca in cas:
        pki.run("crl", ca)
    tmp = str(path) + ".new"
    with open(tmp, "wb") as out:
        for ca in cas:
            out.write((pki.dir / (ca + ".crl.pem")).read_bytes())
    os.replace(tmp, path)
