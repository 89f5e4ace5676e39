"""A command loads the CA only after taking the lock (SPEC §8): five `issue` runs racing a
`rotate-ca` all succeed (each waits for the lock, then signs with the CA it finds), none fails with
"this key does not belong"; two `bundle` runs on one --out both succeed (the second waits), and the
staging trees a killed bundle run left behind (they hold keys) are removed."""

from __future__ import annotations

import subprocess
import time

import pytest
from cryptography import x509

import helpers as h
from conftest import Chpki

INVENTORY = """\
domain: example.com
subject: {O: Test, C: US}
ca: {common_name: Race Root CA, key: ec-p256}
defaults: {key: ec-p256, validity: 90d}
hosts:
  - {name: node-1.example.com, ips: [10.0.0.1], groups: [backend]}
  - {name: node-2.example.com, ips: [10.0.0.2], groups: [backend]}
  - {name: node-3.example.com, ips: [10.0.0.3], groups: [backend]}
services:
  etcd: {hosts: backend, server_cert_mode: both}
  minio: {hosts: backend}
"""


@pytest.fixture
def site(chpki_bin, tmp_path, passphrase_file):
    base = tmp_path / "site"
    base.mkdir()
    (base / "cluster.yml").write_text(INVENTORY)
    tool = Chpki(chpki_bin, base)
    h.assert_ok(tool.run("init-ca", "--intermediate", "--passphrase-file", passphrase_file))
    h.assert_ok(tool.run("issue", "--passphrase-file", passphrase_file))
    return tool, base, passphrase_file


def test_issue_racing_rotate_ca_never_sees_half_a_ca(site):
    tool, base, pf = site
    # rotate-ca first (it holds the lock through its KDF), then five runs that must sign: one-off
    # client certificates. Each must wait for the lock and only then load the CA it signs with.
    procs = [tool.popen("rotate-ca", "--passphrase-file", pf)]
    for n in range(5):
        time.sleep(0.1)
        procs.append(tool.popen("issue", "client", f"app{n}@node-1.example.com", "--passphrase-file", pf))
    results = [(p.args, *p.communicate(timeout=300), p.returncode) for p in procs]
    for args, out, err, code in results:
        assert "does not belong" not in err, f"{args}: {err}"
        assert code == 0, f"{args} exit {code}: {err}"
    # and the inventory's issue racing the re-issue of a renew
    procs = [tool.popen("renew", "--passphrase-file", pf)] + [tool.popen("issue", "--passphrase-file", pf) for _ in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0 and "does not belong" not in err, err
    # Afterwards every valid leaf is signed by the current intermediate
    entries = h.parse_json_output(h.assert_ok(tool.run("list", "--json")))
    leaves = [e for e in entries if e["kind"] != "ca" and e["status"] == "valid"]
    inter = h.load_cert(base / "ca" / "intermediate.pem")
    assert len(leaves) >= 5
    stale = [e["serial"] for e in leaves if x509.load_pem_x509_certificate(e["certificate"].encode()).issuer != inter.subject]
    assert not stale, f"still signed by the old intermediate after renew: {stale}"


def test_two_bundles_on_one_out_and_stale_staging(site, tmp_path):
    tool, base, pf = site
    out = base / "out"
    out.mkdir()
    stale = out / ".node-1.example.com.new-deadbeef"
    (stale / "etc").mkdir(parents=True)
    (stale / "etc" / "private.key").write_text("left by a killed run")
    procs = [tool.popen("bundle", "--out", out, "--passphrase-file", pf) for _ in range(2)]
    results = [(*p.communicate(timeout=300), p.returncode) for p in procs]
    for stdout, stderr, code in results:
        assert code == 0, stderr
        assert "NSCocoaErrorDomain" not in stderr
    assert not stale.exists(), "a stale staging tree (with a key) was left"
    assert not [p for p in out.iterdir() if p.name.startswith(".")], list(out.iterdir())
    r = subprocess.run([str(tool.path), "verify", "--bundle", str(out)], cwd=base, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
