"""Shared by test_lifecycle.py and test_rotation.py: a CA made from one of the examples, run with a
fixed "now" (CHPKI_NOW, docs/lifecycle.md), and readers that look at ca.db, the certificates and
the bundle trust files with code chpki did not write."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from cryptography import x509

import helpers as h
from conftest import Chpki

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
PASSPHRASE = "lifecycle test passphrase"
DAY = dt.timedelta(days=1)


def now_s() -> dt.datetime:
    return h.utcnow().replace(microsecond=0)


class CA:
    """A CA directory and inventory in `base`, driven through the chpki binary."""

    def __init__(self, chpki_bin: Path, base: Path, example: str = "loopback.yml", inventory_text: str | None = None):
        self.base = Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.tool = Chpki(chpki_bin, self.base)
        self.ca_dir = self.base / "ca"
        self.inventory = self.base / "cluster.yml"
        if inventory_text is None:
            shutil.copy(EXAMPLES / example, self.inventory)
        else:
            self.inventory.write_text(inventory_text)
        self.pf = h.write_secret(self.base / "ca-pass", PASSPHRASE + "\n")
        self._tmp = self.base / "scratch"

    # -- running chpki

    def run(self, *args, now: dt.datetime | None = None, env: dict | None = None):
        e = dict(env or {})
        if now is not None:
            e["CHPKI_NOW"] = h.rfc3339_z(now)
        return self.tool.run(*args, "--ca-dir", self.ca_dir, "--inventory", self.inventory, env=e)

    def signed(self, *args, now=None, env=None):
        """A command that needs the CA key: adds --passphrase-file."""
        return self.run(*args, "--passphrase-file", self.pf, now=now, env=env)

    def ok(self, *args, now=None, signed=False):
        res = (self.signed if signed else self.run)(*args, now=now)
        return h.assert_ok(res)

    def json_ok(self, *args, now=None, signed=False):
        return h.parse_json_output(self.ok(*args, "--json", now=now, signed=signed))

    def init(self, *args):
        return self.ok("init-ca", *args, signed=True)

    def issue(self, now=None):
        return self.json_ok("issue", now=now, signed=True)

    # -- reading the CA

    def rows(self, where: str = "1=1") -> list[dict]:
        return h.db_rows(self.ca_dir, self._tmp, where, passphrase=PASSPHRASE)

    def valid_leaves(self) -> dict[str, dict]:
        """serial -> valid leaf row."""
        return {r["serial"]: r for r in h.leaf_rows(self.rows())}

    def by_serial(self) -> dict[str, dict]:
        return {r["serial"]: r for r in self.rows()}

    def root(self) -> x509.Certificate:
        return h.load_cert(self.ca_dir / "root.pem")

    def has_intermediate(self) -> bool:
        return (self.ca_dir / "intermediate.pem").exists()

    def issuer(self) -> x509.Certificate:
        """The CA that signs leaves and CRLs."""
        return h.load_cert(self.ca_dir / ("intermediate.pem" if self.has_intermediate() else "root.pem"))

    def issuer_path(self) -> Path:
        return self.ca_dir / ("intermediate.pem" if self.has_intermediate() else "root.pem")

    def snapshot(self):
        return h.snapshot(self.ca_dir)


def make_ca(chpki_bin, base: Path, example: str = "loopback.yml", init_args=(), issue: bool = True,
            inventory_text: str | None = None) -> CA:
    ca = CA(chpki_bin, base, example, inventory_text)
    ca.init(*init_args)
    if issue:
        ca.issue()
    return ca


def not_after(row) -> dt.datetime:
    return h.row_cert(row).not_valid_after_utc


def not_before(row) -> dt.datetime:
    return h.row_cert(row).not_valid_before_utc


def write_pem(path: Path, *certs: x509.Certificate) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(h.pem(c) for c in certs))
    return path


def epoch(t: dt.datetime) -> int:
    return int(t.timestamp())


def serial_hex(cert: x509.Certificate) -> str:
    """The serial as ca.db, index.txt and the reports spell it: upper-case hex, even length."""
    text = f"{cert.serial_number:X}"
    return "0" * (len(text) % 2) + text


def fp(cert: x509.Certificate) -> str:
    return h.fingerprint(cert)


def is_ca(cert: x509.Certificate) -> bool:
    bc = h.ext(cert, x509.BasicConstraints)
    return bc is not None and bc.value.ca


def certs_in(path: Path) -> list[x509.Certificate]:
    """Every certificate in a PEM file, or in every file of a directory."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    out = []
    for f in files:
        data = f.read_bytes()
        if b"-----BEGIN CERTIFICATE-----" in data:
            out.extend(x509.load_pem_x509_certificates(data))
    return out


# Where a host tree keeps its trust anchors (docs/bundles.md); the MinIO CAs/ directory also holds
# the peers' leaf certificates, so only CA certificates are counted there.
TRUST_LOCATIONS = (
    "etc/pki/ca-trust/source/anchors",
    "usr/local/share/ca-certificates",
    "etc/opensearch/root-ca.pem",
    "etc/ssl/root-ca.pem",
    "etc/etcd/pki/ca.pem",
    "home/minio-user/.minio/certs/CAs",
)


def trust_files(tree: Path) -> dict[str, list[x509.Certificate]]:
    """location -> the CA certificates it holds, for every trust location present in a host tree."""
    out = {}
    for loc in TRUST_LOCATIONS:
        p = Path(tree) / loc
        if p.exists():
            out[loc] = [c for c in certs_in(p) if is_ca(c)]
    return out
