"""Two secrets (SPEC §6, issue 16 "The root key apart"): the root key under the root passphrase,
the issuing keys (intermediates, the leaf-key data key) under the operations passphrase.

Checked from the outside: `openssl pkey` opens ca/root.key (a view of ca.db) with the root
passphrase only and the intermediate keys with the operations passphrase only; the leaf keys open
with the independent unsealer of helpers.py (hashlib scrypt + AES-GCM) under the operations
passphrase. The root passphrase is never in the environment of the runs that must not need it
(conftest strips every CHPKI_* variable, and stdin is not a terminal, so no prompt can stand in).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

import helpers as h
from conftest import Chpki

OPS = "operations passphrase 1"
ROOT = "root passphrase, kept apart"

INVENTORY = """\
domain: example.com
subject: {O: Two Secrets, C: US}
ca: {common_name: Two Secrets Root CA, key: ec-p256}
defaults: {key: ec-p256, validity: 90d, renew_before: 30d}
hosts:
  - {name: node-1.example.com, ips: [10.0.0.1], groups: [backend]}
  - {name: node-2.example.com, ips: [10.0.0.2], groups: [backend]}
services:
  etcd: {hosts: backend, server_cert_mode: both}
"""

# A new short name on a new network: outside the first intermediate's name constraints (growth).
GROWN = INVENTORY.replace(
    "services:",
    "  - {name: storage-7.example.com, ips: [192.168.77.7], groups: [backend]}\nservices:",
)


@pytest.fixture
def site(chpki_bin, tmp_path):
    base = tmp_path / "site"
    base.mkdir()
    (base / "cluster.yml").write_text(INVENTORY)
    files = dict(
        ops=h.write_secret(base / "ops-pass", OPS + "\n"),
        root=h.write_secret(base / "root-pass", ROOT + "\n"),
        wrong=h.write_secret(base / "wrong-pass", "not the passphrase at all\n"),
    )
    return Chpki(chpki_bin, base), base, files


def two_secret_ca(tool, files):
    res = h.assert_ok(tool.run("init-ca", "--passphrase-file", files["ops"], "--root-passphrase-file", files["root"]))
    h.assert_ok(tool.run("issue", "--passphrase-file", files["ops"]))
    return res


def opens(path: Path, passphrase: str, tmp: Path) -> bool:
    """Whether `openssl pkey` opens the encrypted PKCS#8 file with `passphrase`."""
    pf = h.write_secret(tmp / "pkey-pass", passphrase + "\n")
    return h.openssl("pkey", "-in", path, "-passin", f"file:{pf}", "-noout").returncode == 0


def authority_keys(ca: Path, tmp: Path, kind: str) -> list[str]:
    """The stored (encrypted) keys of every CA certificate of `kind`, read from a copy of ca.db."""
    con = sqlite3.connect(h.db_copy(ca, tmp))
    try:
        return [r[0] for r in con.execute(
            "SELECT authority_key_pem FROM certificates WHERE kind = ? AND authority_key_pem IS NOT NULL ORDER BY id", (kind,))]
    finally:
        con.close()


def assert_keys_open(ca: Path, tmp: Path, root: str, ops: str):
    """root.key (and every stored root key) opens with `root` only, every intermediate key with
    `ops` only, and every leaf key unseals under `ops` and matches its certificate."""
    tmp.mkdir(parents=True, exist_ok=True)
    assert opens(ca / "root.key", root, tmp), "root.key does not open with the root passphrase"
    if root != ops:
        assert not opens(ca / "root.key", ops, tmp), "root.key opens with the operations passphrase"
    assert opens(ca / "intermediate.key", ops, tmp), "intermediate.key does not open with the operations passphrase"
    if root != ops:
        assert not opens(ca / "intermediate.key", root, tmp), "intermediate.key opens with the root passphrase"
    for kind, secret in (("root", root), ("intermediate", ops)):
        for i, pem in enumerate(authority_keys(ca, tmp / f"db-{kind}", kind)):
            path = tmp / f"{kind}-{i}.key"
            h.write_secret(path, pem)
            assert opens(path, secret, tmp), f"a stored {kind} key does not open with its passphrase"
    leaves = h.leaf_rows(h.db_rows(ca, tmp / "db-leaves", passphrase=ops))
    assert leaves
    for r in leaves:
        key = serialization.load_pem_private_key(r["private_key_pem"].encode(), None)
        assert h.spki(key) == h.spki(h.row_cert(r)), r["serial"]


def test_init_ca_wraps_the_root_under_its_own_passphrase(site, tmp_path):
    tool, base, files = site
    res = two_secret_ca(tool, files)
    assert "root passphrase" in res.stdout, res.stdout
    assert_keys_open(base / "ca", tmp_path / "check", ROOT, OPS)


def test_weekly_renewal_needs_only_the_operations_passphrase(site, tmp_path):
    tool, base, files = site
    two_secret_ca(tool, files)
    # renew + bundle + crl, as the weekly timer runs them: the operations passphrase only
    renewed = h.assert_ok(tool.run("renew", "--within", "365d", "--passphrase-file", files["ops"], "--json"))
    assert h.parse_json_output(renewed)["summary"]["renewed"] == 4, renewed.stdout
    h.assert_ok(tool.run("bundle", "--out", base / "bundles", "--passphrase-file", files["ops"]))
    h.assert_ok(tool.run("crl", "--passphrase-file", files["ops"]))
    h.assert_ok(tool.run("revoke", "node-2.example.com/etcd", "--passphrase-file", files["ops"]))
    h.assert_ok(tool.run("verify", "--passphrase-file", files["ops"]))
    # the same through the environment variable
    h.assert_ok(tool.run("renew", "--within", "365d", env={"CHPKI_CA_PASSPHRASE": OPS}))
    assert_keys_open(base / "ca", tmp_path / "check", ROOT, OPS)


def test_growth_beyond_the_constraints_needs_the_root_passphrase(site, tmp_path):
    tool, base, files = site
    two_secret_ca(tool, files)
    (base / "cluster.yml").write_text(GROWN)
    before = h.snapshot(base / "ca")
    res = tool.run("issue", "--passphrase-file", files["ops"])
    h.assert_refused(res, "root passphrase", "--root-passphrase-file", "CHPKI_ROOT_PASSPHRASE", error="passphrase.root-needed")
    assert h.snapshot(base / "ca") == before, "a refused growth changed the CA"
    # a wrong root passphrase: refused naming its file, CA unchanged
    res = tool.run("issue", "--passphrase-file", files["ops"], "--root-passphrase-file", files["wrong"])
    h.assert_refused(res, str(files["wrong"]), "root.key", error="passphrase.wrong")
    assert h.snapshot(base / "ca") == before, "a refused growth changed the CA"
    # a one-off outside the constraints: the same refusal
    res = tool.run("issue", "server", "--service", "etcd", "--host", "storage-9.example.com", "--passphrase-file", files["ops"])
    h.assert_refused(res, "--root-passphrase-file", "CHPKI_ROOT_PASSPHRASE", error="passphrase.root-needed")
    assert h.snapshot(base / "ca") == before, "a refused growth changed the CA"
    # with it: a new intermediate, wrapped under the operations passphrase
    grown = h.assert_ok(tool.run("issue", "--passphrase-file", files["ops"], env={"CHPKI_ROOT_PASSPHRASE": ROOT}))
    assert "intermediate" in grown.stdout and "storage-7" in grown.stdout, grown.stdout
    assert len(authority_keys(base / "ca", tmp_path / "db", "intermediate")) == 2
    assert_keys_open(base / "ca", tmp_path / "check", ROOT, OPS)
    # and the next weekly run is back to the operations passphrase alone
    h.assert_ok(tool.run("renew", "--within", "365d", "--passphrase-file", files["ops"]))


def test_rotate_ca_needs_the_root_passphrase(site, tmp_path):
    tool, base, files = site
    two_secret_ca(tool, files)
    before = h.snapshot(base / "ca")
    h.assert_refused(tool.run("rotate-ca", "--passphrase-file", files["ops"]), "--root-passphrase-file", "CHPKI_ROOT_PASSPHRASE", error="passphrase.root-needed")
    assert h.snapshot(base / "ca") == before, "a refused rotate-ca changed the CA"
    h.assert_ok(tool.run("rotate-ca", "--passphrase-file", files["ops"], "--root-passphrase-file", files["root"]))
    # the new root under the root passphrase, the new intermediate under the operations one
    assert_keys_open(base / "ca", tmp_path / "check", ROOT, OPS)
    assert opens(base / "ca" / "previous-root.key", ROOT, tmp_path)


def test_passphrase_change_operations_keeps_every_key_opening(site, tmp_path):
    tool, base, files = site
    two_secret_ca(tool, files)
    root_key = (base / "ca" / "root.key").read_bytes()
    new = h.write_secret(base / "new-ops", "the new operations passphrase\n")
    res = h.assert_ok(tool.run("passphrase", "change", "--which", "operations", "--passphrase-file", files["ops"],
                               "--new-passphrase-file", new))
    assert "re-wrapped" in res.stdout, res.stdout
    assert (base / "ca" / "root.key").read_bytes() == root_key, "an operations change touched the root key"
    assert_keys_open(base / "ca", tmp_path / "check", ROOT, "the new operations passphrase")
    # the old one opens nothing now; the new one works for the weekly run
    h.assert_refused(tool.run("renew", "--passphrase-file", files["ops"]), str(files["ops"]), error="passphrase.wrong")
    h.assert_ok(tool.run("renew", "--within", "365d", "--passphrase-file", new))
    h.assert_ok(tool.run("bundle", "--out", base / "bundles", "--passphrase-file", new))


def test_passphrase_change_root_keeps_every_key_opening(site, tmp_path):
    tool, base, files = site
    two_secret_ca(tool, files)
    intermediate_key = (base / "ca" / "intermediate.key").read_bytes()
    res = h.assert_ok(tool.run("passphrase", "change", "--which", "root", "--root-passphrase-file", files["root"],
                               env={"CHPKI_NEW_PASSPHRASE": "the new root passphrase"}))
    assert "re-wrapped 1 CA key" in res.stdout, res.stdout
    assert (base / "ca" / "intermediate.key").read_bytes() == intermediate_key, "a root change touched the intermediate"
    assert_keys_open(base / "ca", tmp_path / "check", "the new root passphrase", OPS)
    h.assert_refused(tool.run("rotate-ca", "--passphrase-file", files["ops"], "--root-passphrase-file", files["root"]),
                     str(files["root"]), error="passphrase.wrong")


def test_passphrase_change_refusals_change_nothing(site, tmp_path):
    tool, base, files = site
    two_secret_ca(tool, files)
    new = h.write_secret(base / "new", "a brand new passphrase\n")
    short = h.write_secret(base / "short", "short\n")
    before = h.snapshot(base / "ca")
    h.assert_refused(tool.run("passphrase", "change", "--which", "root", "--root-passphrase-file", files["wrong"],
                              "--new-passphrase-file", new), str(files["wrong"]), error="passphrase.wrong")
    h.assert_refused(tool.run("passphrase", "change", "--which", "operations", "--passphrase-file", files["wrong"],
                              "--new-passphrase-file", new), str(files["wrong"]), error="passphrase.wrong")
    h.assert_refused(tool.run("passphrase", "change", "--which", "root", "--new-passphrase-file", new),
                     "--root-passphrase-file", "CHPKI_ROOT_PASSPHRASE", error="passphrase.root-needed")
    h.assert_refused(tool.run("passphrase", "change", "--which", "operations", "--passphrase-file", files["ops"],
                              "--new-passphrase-file", short), "--new-passphrase-file", "8", error="passphrase.too-short")
    h.assert_refused(tool.run("passphrase", "change", "--which", "operations", "--passphrase-file", files["ops"],
                              "--new-passphrase-file", base / "missing"), "--new-passphrase-file", str(base / "missing"), error="file.missing")
    assert h.snapshot(base / "ca") == before, "a refused passphrase change changed the CA"


def test_one_passphrase_ca_keeps_working_and_is_split_by_change_root(site, tmp_path):
    tool, base, files = site
    made = h.assert_ok(tool.run("init-ca", "--passphrase-file", files["ops"]))
    assert "one passphrase" in made.stderr and "passphrase change --which root" in made.stderr, made.stderr
    h.assert_ok(tool.run("issue", "--passphrase-file", files["ops"]))
    assert_keys_open(base / "ca", tmp_path / "one", OPS, OPS)
    # unchanged behaviour: growth with the one passphrase
    (base / "cluster.yml").write_text(GROWN)
    h.assert_ok(tool.run("issue", "--passphrase-file", files["ops"]))
    # a root passphrase equal to the operations one is refused, CA unchanged
    before = h.snapshot(base / "ca")
    h.assert_refused(tool.run("passphrase", "change", "--which", "root", "--passphrase-file", files["ops"],
                              "--new-passphrase-file", files["ops"]), "operations passphrase", error="passphrase.reused")
    assert h.snapshot(base / "ca") == before
    # the migration: the old root passphrase is the one passphrase
    res = h.assert_ok(tool.run("passphrase", "change", "--which", "root", "--passphrase-file", files["ops"],
                               "--new-passphrase-file", files["root"], "--json"))
    assert h.parse_json_output(res)["split"] is True, res.stdout
    assert_keys_open(base / "ca", tmp_path / "split", ROOT, OPS)
    # from now on growth needs the root passphrase, the weekly run does not
    (base / "cluster.yml").write_text(GROWN.replace("storage-7", "storage-8").replace("192.168.77.7", "192.168.78.8"))
    h.assert_refused(tool.run("issue", "--passphrase-file", files["ops"]), "--root-passphrase-file", error="passphrase.root-needed")
    h.assert_ok(tool.run("issue", "--passphrase-file", files["ops"], "--root-passphrase-file", files["root"]))
    h.assert_ok(tool.run("renew", "--within", "365d", "--passphrase-file", files["ops"]))
    assert_keys_open(base / "ca", tmp_path / "after", ROOT, OPS)


@pytest.mark.parametrize("command", ["issue", "renew"])
def test_a_bad_passphrase_file_is_refused_with_nothing_due(site, command):
    tool, base, files = site
    two_secret_ca(tool, files)
    h.assert_ok(tool.run(command, "--passphrase-file", files["ops"]))  # nothing due
    before = h.snapshot(base / "ca")
    h.assert_refused(tool.run(command, "--passphrase-file", base / "nonexistent"), str(base / "nonexistent"), error="file.missing")
    h.assert_refused(tool.run(command, "--passphrase-file", files["wrong"]), str(files["wrong"]), error="passphrase.wrong")
    h.assert_refused(tool.run(command, env={"CHPKI_CA_PASSPHRASE": "not it either"}), "CHPKI_CA_PASSPHRASE", error="passphrase.wrong")
    h.assert_refused(tool.run(command), "--passphrase-file", "CHPKI_CA_PASSPHRASE", error="passphrase.missing")
    assert h.snapshot(base / "ca") == before, "a refused run changed the CA"


def test_init_ca_refuses_muddled_secrets(site):
    tool, base, files = site
    h.assert_refused(tool.run("init-ca", "--passphrase-file", files["ops"], "--root-passphrase-file", files["ops"]),
                     "root passphrase", "operations passphrase", error="passphrase.reused")
    h.assert_refused(tool.run("init-ca", "--no-passphrase", "--root-passphrase-file", files["root"]), "--no-passphrase", error="usage.conflicting-options")
    h.assert_refused(tool.run("init-ca", "--no-intermediate", "--passphrase-file", files["ops"],
                              "--root-passphrase-file", files["root"]), "--no-intermediate", error="usage.conflicting-options")
    h.assert_refused(tool.run("init-ca", "--passphrase-file", files["ops"], "--root-passphrase-file", base / "missing"),
                     "--root-passphrase-file", str(base / "missing"), error="file.missing")
    assert not (base / "ca").exists(), "a refused init-ca created the CA"
