"""Leaf private keys at rest (SPEC §8, docs/security.md): a copy of ca.db alone reveals no key.

Checked from the outside: the `sqlite3 .dump` of ca.db holds no private key that Python
`cryptography` or `openssl pkey` can open without the passphrase (PEM blocks or raw blobs), while
the bundle, made with the passphrase, still ships working keys that match their certificates. The
sealing format is re-implemented in helpers.py (hashlib scrypt + AES-GCM) and must open every key.
A CA made by the first release (fixtures/legacy-*) opens, is migrated in place, and its clear keys
are sealed on the first command that has the passphrase; read-only commands work before that.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import helpers as h
from conftest import Chpki

FIXTURES = Path(__file__).resolve().parent / "fixtures"
INVENTORY = """\
domain: example.com
subject: {O: Test, C: US}
ca: {common_name: Rest Root CA, key: ec-p256}
defaults: {key: ec-p256, validity: 90d}
hosts:
  - {name: node-1.example.com, ips: [10.0.0.1], groups: [backend]}
  - {name: node-2.example.com, ips: [10.0.0.2], groups: [backend]}
services:
  etcd: {hosts: backend, server_cert_mode: both}
  patroni: {hosts: backend, key: rsa-2048}
"""


@pytest.fixture
def site(chpki_bin, tmp_path):
    base = tmp_path / "site"
    base.mkdir()
    (base / "cluster.yml").write_text(INVENTORY)
    pf = h.write_secret(base / "pass", h.PASSPHRASE + "\n")
    return Chpki(chpki_bin, base), base, pf


def dump(ca: Path) -> str:
    r = subprocess.run(["sqlite3", str(ca / "ca.db"), ".dump"], capture_output=True, text=True, check=True)
    return r.stdout


def pem_blocks(text: str) -> list[str]:
    text = text.replace("''", "'")
    return re.findall(r"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----", text, re.S) and [
        m.group(0) for m in re.finditer(r"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----", text, re.S)]


def blobs(text: str) -> list[bytes]:
    return [bytes.fromhex(b) for b in re.findall(r"X'([0-9A-Fa-f]+)'", text)]


def opens_without_passphrase(data: bytes, tmp: Path) -> bool:
    """True if Python cryptography or openssl pkey can read a private key from `data` with no passphrase."""
    for load in (serialization.load_pem_private_key, serialization.load_der_private_key):
        try:
            load(data, None)
            return True
        except Exception:
            pass
    f = tmp / "candidate"
    f.write_bytes(data)
    for form in ("PEM", "DER"):
        r = subprocess.run(["openssl", "pkey", "-inform", form, "-in", str(f), "-noout", "-passin", "pass:"],
                           capture_output=True)
        if r.returncode == 0:
            return True
    return False


def assert_no_readable_key(ca: Path, tmp: Path):
    text = dump(ca)
    assert "BEGIN PRIVATE KEY" not in text and "BEGIN EC PRIVATE KEY" not in text and "BEGIN RSA PRIVATE KEY" not in text
    readable = [b[:40] for b in pem_blocks(text) if "PRIVATE KEY" in b and opens_without_passphrase(b.encode(), tmp)]
    readable += [b[:8].hex() for b in blobs(text) if opens_without_passphrase(b, tmp)]
    assert not readable, f"ca.db holds keys readable without the passphrase: {readable}"
    return text


def test_dump_of_ca_db_reveals_no_key_and_bundle_keys_work(site, tmp_path):
    tool, base, pf = site
    h.assert_ok(tool.run("init-ca", "--intermediate", "--passphrase-file", pf))
    h.assert_ok(tool.run("issue", "--passphrase-file", pf))
    text = assert_no_readable_key(base / "ca", tmp_path)
    # The keys are there, sealed: one blob per leaf (6 leaves: etcd and patroni server + patroni client per host)
    rows = h.db_rows(base / "ca", tmp_path / "db", passphrase=None)
    leaves = h.leaf_rows(rows)
    assert leaves and all(r["key_sealed"] and r["private_key_pem"] is None for r in leaves)
    assert len(blobs(text)) >= len(leaves)

    # The independent implementation opens each key with the passphrase, and each matches its certificate
    for r in h.leaf_rows(h.db_rows(base / "ca", tmp_path / "db2", passphrase=h.PASSPHRASE)):
        key = serialization.load_pem_private_key(r["private_key_pem"].encode(), None)
        assert h.spki(key) == h.spki(h.row_cert(r)), r["serial"]
        assert r["private_key_pem"].startswith("-----BEGIN PRIVATE KEY-----")

    # The intermediate's second copy of its key (sealed under the same data key, its own associated
    # data) opens with the same passphrase and is the key of intermediate.pem; the root has none
    authorities = [r for r in h.db_rows(base / "ca", tmp_path / "db3", passphrase=h.PASSPHRASE)
                   if r["kind"] in ("root", "intermediate")]
    assert [r["kind"] for r in authorities if r.get("key_sealed")] == ["intermediate"]
    copy = next(r for r in authorities if r["kind"] == "intermediate")["sealed_issuing_key_pem"]
    key = serialization.load_pem_private_key(copy.encode(), None)
    intermediate = x509.load_pem_x509_certificate((base / "ca" / "intermediate.pem").read_bytes())
    assert h.spki(key) == h.spki(intermediate)

    # ... and a wrong passphrase opens nothing
    with pytest.raises(Exception):
        h.unwrap_data_key(sqlite3.connect(base / "ca" / "ca.db").execute(
            "SELECT value FROM meta WHERE key='leaf_key_wrap'").fetchone()[0], "not the passphrase")

    # The bundle, made with the passphrase, ships keys openssl opens and that match the certificates
    h.assert_ok(tool.run("bundle", "--out", base / "out", "--passphrase-file", pf))
    keys = [p for p in (base / "out").rglob("*") if p.is_file() and "PRIVATE KEY" in p.read_text(errors="ignore")]
    assert keys
    for key in keys:
        r = h.openssl("pkey", "-in", key, "-pubout")
        assert r.returncode == 0, h.describe(r)
        host_tree = next(p for p in key.parents if p.parent == base / "out")
        public_keys = set()
        for cert in host_tree.rglob("*"):
            if cert.is_file() and "BEGIN CERTIFICATE" in cert.read_text(errors="ignore"):
                public_keys.add(h.openssl("x509", "-in", cert, "-noout", "-pubkey").stdout)
        assert r.stdout in public_keys, f"{key} matches no certificate of {host_tree.name}"


def test_bundle_needs_the_passphrase(site, tmp_path, wrong_passphrase_file):
    tool, base, pf = site
    h.assert_ok(tool.run("init-ca", "--passphrase-file", pf))
    h.assert_ok(tool.run("issue", "--passphrase-file", pf))
    h.assert_refused(tool.run("bundle", "--out", base / "out"), "passphrase", error="passphrase.missing")
    h.assert_refused(tool.run("bundle", "--out", base / "out2", "--passphrase-file", wrong_passphrase_file), "passphrase", error="passphrase.wrong")
    assert not any((base / "out2").rglob("*.pem")), "a refused bundle wrote files"
    # The environment variable is a source too
    h.assert_ok(tool.run("bundle", "--out", base / "out3", env={"CHPKI_CA_PASSPHRASE": h.PASSPHRASE}))
    h.assert_ok(tool.run("verify", "--passphrase-file", pf))


def test_no_passphrase_ca_keeps_leaf_keys_in_clear_and_says_so(site, tmp_path):
    tool, base, _ = site
    res = h.assert_ok(tool.run("init-ca", "--no-passphrase"))
    assert "UNENCRYPTED" in res.stderr + res.stdout and "leaf keys" in res.stderr + res.stdout
    h.assert_ok(tool.run("issue"))
    leaves = h.leaf_rows(h.db_rows(base / "ca", tmp_path / "db", passphrase=None))
    assert leaves and all(r["private_key_pem"] and r["key_sealed"] is None for r in leaves)
    h.assert_ok(tool.run("bundle", "--out", base / "out"))


def legacy_copy(name: str, tmp: Path) -> tuple[Path, Path]:
    src = FIXTURES / name
    assert src.is_dir(), f"fixture {name} missing"
    dst = tmp / name
    shutil.copytree(src, dst)
    for p in (dst / "ca").rglob("*"):
        p.chmod(0o700 if p.is_dir() else 0o600)
    (dst / "ca").chmod(0o700)
    return dst, h.write_secret(dst / "pass", (src / "passphrase.txt").read_text())


def test_first_release_ca_is_migrated_in_place(chpki_bin, tmp_path):
    base, pf = legacy_copy("legacy-issued", tmp_path)
    tool = Chpki(chpki_bin, base)
    before = h.db_rows(base / "ca", tmp_path / "db0", passphrase=None)
    assert any(r["private_key_pem"] for r in before), "the fixture should hold clear keys"
    root_before = (base / "ca" / "root.pem").read_bytes()

    # read-only commands work without the passphrase, before the keys are sealed
    listed = h.parse_json_output(h.assert_ok(tool.run("list", "--json")))
    assert {e["serial"] for e in listed} == {r["serial"] for r in before}
    h.assert_ok(tool.run("expiring", "--within", "1d"))
    assert (base / "ca" / "root.pem").read_bytes() == root_before
    con = sqlite3.connect(base / "ca" / "ca.db")
    columns = {row[1] for row in con.execute("PRAGMA table_info(certificates)")}
    con.close()
    assert {"authority_role", "authority_key_pem", "key_sealed"} <= columns, "the schema was not migrated in place"

    # the first command with the passphrase seals every key
    h.assert_ok(tool.run("crl", "--passphrase-file", pf))
    assert_no_readable_key(base / "ca", tmp_path)
    after = {r["serial"]: r for r in h.db_rows(base / "ca", tmp_path / "db1", passphrase=h.PASSPHRASE)}
    for r in before:
        if r["private_key_pem"]:
            assert after[r["serial"]]["private_key_pem"] == r["private_key_pem"], "a key changed in migration"
    h.assert_ok(tool.run("bundle", "--out", base / "out", "--passphrase-file", pf))
    out = h.assert_ok(tool.run("issue", "--passphrase-file", pf))
    assert "0 issued, 0 reissued, 0 renewed" in out.stdout


def test_first_release_ca_mid_rotation_keeps_its_roots(chpki_bin, tmp_path):
    base, pf = legacy_copy("legacy-rotating", tmp_path)
    tool = Chpki(chpki_bin, base)
    new_root = (base / "ca" / "root.pem").read_bytes()
    old_root = (base / "ca" / "previous-root.pem").read_bytes()
    h.assert_ok(tool.run("list"))
    assert (base / "ca" / "root.pem").read_bytes() == new_root
    assert (base / "ca" / "previous-root.pem").read_bytes() == old_root
    h.assert_ok(tool.run("issue", "--passphrase-file", pf))
    h.assert_ok(tool.run("rotate-ca", "--finish", "--force-unrecorded", "--passphrase-file", pf))
    assert (base / "ca" / "root.pem").read_bytes() == new_root
    assert not (base / "ca" / "previous-root.pem").exists()
    assert any(p.read_bytes() == old_root for p in (base / "ca" / "retired").iterdir())
