"""Crash safety as one unit (SPEC §6, §8): every multi-file command is killed with SIGKILL at each
of its rename(2) and fdatasync(2) calls (SQLite's commits) and at sampled fsync(2) and write(2)
calls, under `strace -e inject=SYSCALL:signal=KILL:when=N`. After each kill, checked with tools
chpki did not write (the sqlite3 CLI, the openssl CLI, Python cryptography):

- `chpki list --json` works (init-ca killed before its commit: "no CA here", and init-ca runs again);
- `PRAGMA integrity_check` is ok;
- index.txt's serials and statuses equal ca.db's (as `list --json` reports them);
- crl.pem lists exactly the revoked serials, and is signed by the CA;
- the CA files are one CA, before or after the change: root.key/intermediate.key open with the
  passphrase and match their certificates, the intermediate is signed by the root, and during a
  rotation cross-signed.pem and trust-bundle.pem tie the old root to the new one;
- re-running the command completes (or, for a change already made, is refused as done).

Counting first (`strace -c`) makes the loop cover every call; a kill that did not happen fails.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import helpers as h
from conftest import clean_env

assert shutil.which("strace"), "the kill-point tests need strace (scripts/test installs it)"

PASSPHRASE = "kill point passphrase"
INVENTORY = """\
domain: example.com
subject: {O: Test, C: US}
ca: {common_name: Kill Root CA, key: ec-p256}
defaults: {key: ec-p256, validity: 90d, renew_before: 30d}
hosts:
  - {name: node-1.example.com, ips: [10.0.0.1], groups: [backend]}
  - {name: node-2.example.com, ips: [10.0.0.2], groups: [backend]}
services:
  etcd: {hosts: backend, server_cert_mode: both}
"""
# Growth: a host with a new short name on a new network, so `issue` has the root sign a new
# intermediate and signs the host's certificates with it (one transaction, docs/growth.md).
GROWN = INVENTORY.replace("services:", "  - {name: node-3.example.com, ips: [10.9.0.3], groups: [backend]}\nservices:")
# Sixty days on: every 90-day leaf is within its 30-day renew_before.
LATER = h.rfc3339_z(h.utcnow().replace(microsecond=0) + dt.timedelta(days=65))


class Site:
    """A working directory with cluster.yml, the passphrase file and (maybe) ./ca."""

    def __init__(self, chpki_bin: Path, base: Path):
        self.bin = chpki_bin
        self.base = base
        self.ca = base / "ca"
        self.pf = base / "pass"

    @classmethod
    def fresh(cls, chpki_bin, base: Path) -> "Site":
        base.mkdir(parents=True)
        (base / "cluster.yml").write_text(INVENTORY)
        (base / "grown.yml").write_text(GROWN)
        h.write_secret(base / "pass", PASSPHRASE + "\n")
        return cls(chpki_bin, base)

    def copy(self, to: Path) -> "Site":
        shutil.copytree(self.base, to, symlinks=True)
        return Site(self.bin, to)

    def argv(self, args) -> list[str]:
        return [str(self.bin), *args, "--passphrase-file", str(self.pf)]

    def run(self, *args, env=None, prefix=(), passphrase=True) -> subprocess.CompletedProcess:
        argv = self.argv(args) if passphrase else [str(self.bin), *args]
        return subprocess.run([*prefix, *argv], cwd=self.base, env=clean_env(env), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=300, start_new_session=True)

    def ok(self, *args, env=None):
        return h.assert_ok(self.run(*args, env=env))


# Each scenario: (name, the command, the state it starts from, env).
SCENARIOS = {
    "init-ca": (["init-ca", "--intermediate"], "empty", None),
    "issue": (["issue"], "initialized", None),
    "issue-grow": (["issue", "--inventory", "grown.yml"], "issued", None),
    "revoke": (["revoke", "node-1.example.com"], "issued", None),
    "crl": (["crl"], "revoked", None),
    "renew-rekey": (["renew", "--rekey"], "issued", {"CHPKI_NOW": LATER}),
    "rotate-ca": (["rotate-ca"], "issued", None),
    "rotate-ca-finish": (["rotate-ca", "--finish", "--force-unrecorded"], "rotated", None),
}


@pytest.fixture(scope="module")
def states(chpki_bin, tmp_path_factory) -> dict[str, Site]:
    root = tmp_path_factory.mktemp("killpoint-states")
    empty = Site.fresh(chpki_bin, root / "empty")
    initialized = empty.copy(root / "initialized")
    initialized.ok("init-ca", "--intermediate")
    issued = initialized.copy(root / "issued")
    issued.ok("issue")
    revoked = issued.copy(root / "revoked")
    revoked.ok("revoke", "node-2.example.com/etcd")
    rotated = revoked.copy(root / "rotated")
    rotated.ok("rotate-ca")
    rotated.ok("issue")
    return {"empty": empty, "initialized": initialized, "issued": issued, "revoked": revoked, "rotated": rotated}


def count_calls(site: Site, args, env, syscall: str, tmp: Path) -> int:
    out = tmp / f"count-{syscall}"
    res = site.run(*args, env=env, prefix=["strace", "-f", "-c", "-o", str(out), "-e", f"trace={syscall}"])
    h.assert_ok(res)
    for line in out.read_text().splitlines():
        fields = line.split()
        if fields and fields[-1] == syscall:
            numbers = [f for f in fields[:-1] if re.fullmatch(r"\d+", f)]
            return int(numbers[-2] if len(numbers) >= 3 and len(fields) == 6 else numbers[-1])
    return 0


def points(total: int, sampled: bool) -> list[int]:
    if not sampled or total <= 6:
        return list(range(1, total + 1))
    return sorted({1, total // 3, total // 2, (2 * total) // 3, total})


def certificate_of(entry) -> x509.Certificate:
    return x509.load_pem_x509_certificate(entry["certificate"].encode())


def self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


_public_keys: dict[bytes, bytes] = {}


def key_matches(key_path: Path, cert_path: Path) -> bool:
    data = key_path.read_bytes()
    if data not in _public_keys:  # scrypt is slow: each distinct key file is opened once
        key = serialization.load_pem_private_key(data, PASSPHRASE.encode() if b"ENCRYPTED" in data else None)
        _public_keys[data] = h.spki(key)
    return _public_keys[data] == h.spki(h.load_cert(cert_path))


def check_consistent(site: Site, env, before_roots: set[str]) -> list[str]:
    """Problems with the CA in `site` (empty list: consistent)."""
    problems = []
    listed = site.run("list", "--json", env=env, passphrase=False)
    if listed.returncode != 0:
        return [f"list --json failed: {h.describe(listed)}"]
    entries = h.parse_json_output(listed)
    r = subprocess.run(["sqlite3", str(site.ca / "ca.db"), "PRAGMA integrity_check"], capture_output=True, text=True)
    if r.stdout.strip() != "ok":
        problems.append(f"integrity_check: {r.stdout.strip()} {r.stderr.strip()}")

    # index.txt: every certificate but self-signed roots, V/R as ca.db says
    want = {}
    for e in entries:
        if self_signed(certificate_of(e)):
            continue
        want[e["serial"]] = "R" if e["status"] == "revoked" else ("E" if e["status"] == "expired" else "V")
    got = {row["serial"]: row["status"] for row in h.parse_index((site.ca / "index.txt").read_text())}
    if got != want:
        problems.append(f"index.txt {got} != ca.db {want}")

    # crl.pem: exactly the revoked serials of its issuer, signed by a CA certificate of this CA
    crl = x509.load_pem_x509_crl((site.ca / "crl.pem").read_bytes())
    crl_serials = {format(c.serial_number, "X").rjust(36, "0") for c in crl}
    cas = {e["serial"]: certificate_of(e) for e in entries if e["kind"] == "ca"}
    issuer = next((c for c in cas.values() if c.subject == crl.issuer and crl.is_signature_valid(c.public_key())), None)
    if issuer is None:
        problems.append("crl.pem is not signed by a CA certificate of ca.db")
    else:
        revoked = {e["serial"] for e in entries if e["status"] == "revoked"
                   and certificate_of(e).issuer == issuer.subject}
        if crl_serials != revoked:
            problems.append(f"crl.pem lists {sorted(crl_serials)}, ca.db revoked {sorted(revoked)}")

    # The CA files: one CA, as before or after
    root = h.load_cert(site.ca / "root.pem")
    root_serial = format(root.serial_number, "X").rjust(36, "0")
    if root_serial not in cas:
        problems.append("root.pem is not a CA certificate of ca.db")
    if before_roots and root_serial not in before_roots and not (site.ca / "previous-root.pem").exists():
        problems.append("a new root.pem without previous-root.pem")
    if not key_matches(site.ca / "root.key", site.ca / "root.pem"):
        problems.append("root.key does not match root.pem")
    inter = site.ca / "intermediate.pem"
    if inter.exists():
        if not key_matches(site.ca / "intermediate.key", inter):
            problems.append("intermediate.key does not match intermediate.pem")
        v = h.openssl("verify", "-CAfile", site.ca / "root.pem", inter)
        if v.returncode != 0:
            problems.append(f"intermediate.pem is not signed by root.pem: {v.stdout}{v.stderr}")
    previous = site.ca / "previous-root.pem"
    if previous.exists():
        if not key_matches(site.ca / "previous-root.key", previous):
            problems.append("previous-root.key does not match previous-root.pem")
        cross = h.load_cert(site.ca / "cross-signed.pem")
        if cross.subject != root.subject or h.spki(cross) != h.spki(root):
            problems.append("cross-signed.pem is not the new root's subject and key")
        v = h.openssl("verify", "-CAfile", previous, site.ca / "cross-signed.pem")
        if v.returncode != 0:
            problems.append("cross-signed.pem is not signed by previous-root.pem")
        bundle = {h.fingerprint(c) for c in h.load_certs(site.ca / "trust-bundle.pem")}
        if bundle != {h.fingerprint(root), h.fingerprint(h.load_cert(previous))}:
            problems.append("trust-bundle.pem does not hold both roots")
    leftovers = [p.name for p in site.ca.iterdir() if ".tmp-" in p.name or p.name.endswith(".new") or ".init-" in p.name]
    if leftovers:
        problems.append(f"staging files left after recovery: {leftovers}")
    return problems


# A re-run of a change that was already made is refused as done (exit 2 with this text).
DONE = {
    "init-ca": "ca.exists",
    "rotate-ca": "ca.rotation-under-way",
    "rotate-ca-finish": "ca.no-rotation",
}


def error_code(res) -> str | None:
    """The code of the error object a --json run printed, or None."""
    try:
        return json.loads(res.stdout)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def kill_and_check(states, tmp_path, scenario: str, syscall: str, sampled: bool):
    args, start, env = SCENARIOS[scenario]
    base = states[start]
    total = count_calls(base.copy(tmp_path / "count"), args, env, syscall, tmp_path)
    assert total > 0, f"{scenario} makes no {syscall} call: the kill points would test nothing"
    before_roots = set()
    if (base.ca / "root.pem").exists():
        before_roots = {format(h.load_cert(base.ca / "root.pem").serial_number, "X").rjust(36, "0")}
    failures = []
    completed = []
    for n in points(total, sampled):
        site = base.copy(tmp_path / f"{syscall}-{n}")
        killed = site.run(*args, env=env, prefix=["strace", "-f", "-qq", "-o", "/dev/null",
                                                  "-e", f"trace={syscall}", "-e", f"inject={syscall}:signal=KILL:when={n}"])
        if killed.returncode not in (-9, 137):
            # strace counts injections per thread, `-c` counts calls of all threads: the last few
            # calls of the count may never be reached by one thread. Such a run must have completed.
            if killed.returncode != 0:
                failures.append(f"{syscall} #{n}: neither killed nor completed ({h.describe(killed)})")
            completed.append(n)
        if scenario == "init-ca" and not (site.ca / "ca.db").exists():
            listed = site.run("list", "--json", passphrase=False)
            if listed.returncode != 2 or error_code(listed) != "ca.not-found":
                failures.append(f"{syscall} #{n}: before the commit, list says {h.describe(listed)}")
        else:
            failures += [f"{syscall} #{n}: {p}" for p in check_consistent(site, env, before_roots)]
        again = site.run(*args, "--json", env=env)
        if again.returncode != 0 and not (scenario in DONE and again.returncode == 2 and error_code(again) == DONE[scenario]):
            failures.append(f"{syscall} #{n}: the re-run failed: {h.describe(again)}")
            continue
        failures += [f"{syscall} #{n}, after the re-run: {p}" for p in check_consistent(site, env, before_roots)]
        shutil.rmtree(site.base)
    tried = points(total, sampled)
    if completed:
        assert completed != tried, f"{scenario}: no {syscall} call was ever killed"
        assert completed == tried[-len(completed):], f"{scenario}: {syscall} calls {completed} were not killed"
    assert not failures, f"{scenario} killed at its {syscall} calls ({total}):\n" + "\n".join(failures)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_killed_at_every_rename(states, tmp_path, scenario):
    kill_and_check(states, tmp_path, scenario, "rename", sampled=False)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_killed_at_every_database_commit_sync(states, tmp_path, scenario):
    kill_and_check(states, tmp_path, scenario, "fdatasync", sampled=False)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_killed_at_sampled_fsync(states, tmp_path, scenario):
    kill_and_check(states, tmp_path, scenario, "fsync", sampled=True)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_killed_at_sampled_write(states, tmp_path, scenario):
    kill_and_check(states, tmp_path, scenario, "write", sampled=True)
