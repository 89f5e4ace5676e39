"""The CA's integrity against a wrong clock, a full disk, loose modes and odd rows (SPEC §6, §8).

- Clock: under `faketime` set before the issuing CA's notBefore, `issue client` and `crl` are
  refused (exit 2, naming the CA, its notBefore and the clock) and the CA is unchanged; a clock set
  back behind the CA's last recorded change refuses a CRL that would be expired when published.
- A failure after the commit (strace makes the view's rename fail with ENOSPC) exits 3, names the
  committed serial and the stale index.txt, and the next command rewrites it; a full tmpfs says
  "no space left on device" naming the file, and the CA works again once there is room.
- Modes: `ca/` 0755 and `ca.db` 0644 are put back to 0700/0600 by `list`, one line each.
- Every live intermediate is a file in ca/: after growth a leaf of the first intermediate verifies
  with `openssl verify` and `openssl ocsp -index` from files in ca/ alone.
- `revoke --reason keyCompromise` revokes the superseded pre-renewal certificate of the same key;
  the CRL (`openssl crl -text`) holds both.
- `rotate-ca --finish` leaves a CRL for the new issuing CA: `openssl verify -crl_check` passes.
- `expiring` and `verify` flag a CRL near or past its nextUpdate (exit 1, issuer and nextUpdate).
- An undecodable SANs/profile row is refused naming its serial; "no CA here" names where chpki
  looked and how to point it elsewhere, and suggests no second CA.
- A release build ignores CHPKI_NOW.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

import helpers as h
from lifecycle_support import serial_hex

INVENTORY = """\
domain: example.com
subject: {OU: Ops, O: MyCompany, C: US}
ca: {common_name: Integrity Root CA, key: ec-p256, validity: 10y}
defaults: {key: ec-p256, validity: 397d, renew_before: 30d}
hosts:
  - {name: backend-1.example.com, ips: [10.0.0.1], groups: [backend]}
  - {name: backend-2.example.com, ips: [10.0.0.2], groups: [backend]}
services:
  etcd: {hosts: backend, server_cert_mode: both}
"""

FAKETIME = shutil.which("faketime")
# Commands that never take a passphrase.
READERS = {"list", "expiring"}


@pytest.fixture
def site(run, write_inventory, init_ca, passphrase_file, ca_dir):
    """A CA with the inventory's leaves issued; returns a runner that adds the passphrase file."""
    write_inventory(INVENTORY)
    init_ca()

    def signed(*args, env=None, prefix=()):
        secret = [] if args[0] in READERS else ["--passphrase-file", passphrase_file]
        return run_prefixed(run, prefix, *args, *secret, env=env)

    h.assert_ok(signed("issue"))
    return signed


def run_prefixed(run, prefix, *args, env=None):
    """`run` with a wrapper in front of the binary (faketime, strace)."""
    if not prefix:
        return run(*args, env=env)
    chpki = run.__self__
    return subprocess.run([*prefix, str(chpki.path), *map(str, args)], cwd=chpki.cwd, env=h_clean_env(env),
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300, start_new_session=True)


def h_clean_env(extra):
    from conftest import clean_env
    return clean_env(extra)


def rows(ca_dir: Path, tmp: Path, where: str = "1=1") -> list[dict]:
    return h.db_rows(ca_dir, tmp, where)


def ca_state(ca_dir: Path) -> dict:
    return h.snapshot(ca_dir)


def faketime(when: dt.datetime) -> list[str]:
    if FAKETIME is None:
        pytest.fail("faketime is not installed (apt-get install faketime; scripts/test installs it)")
    return [FAKETIME, "-f", "@" + when.strftime("%Y-%m-%d %H:%M:%S")]


def issuing_certificate(ca_dir: Path) -> x509.Certificate:
    return h.load_cert(ca_dir / "intermediate.pem")


# --------------------------------------------------------------------------------------------
# clock


def test_clock_before_the_ca_refuses_issue_and_crl(site, ca_dir):
    issuer = issuing_certificate(ca_dir)
    before = ca_state(ca_dir)
    early = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    for args in (["issue", "client", "ops@backend-1"], ["crl"]):
        res = site(*args, "--json", prefix=faketime(early))
        line = h.assert_refused(res, "2020-01-01", issuer.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%S"),
                                "Integrity Root CA Intermediate", error="ca.clock-before-issuer")
        assert "clock" in line, line
        assert ca_state(ca_dir) == before, f"{args[0]} under an early clock changed the CA"
    # the same commands at the real time work
    h.assert_ok(site("issue", "client", "ops@backend-1"))
    h.assert_ok(site("crl"))


def test_clock_set_back_behind_the_last_change_refuses_an_expired_crl(run, write_inventory, init_ca, passphrase_file,
                                                                        ca_dir):
    """The CA is made 20 days ago (CHPKI_NOW, debug build), a leaf is issued now; a clock 10 days
    back is after every notBefore but a 1-day CRL would be expired by the CA's own record."""
    write_inventory(INVENTORY)
    now = h.utcnow().replace(microsecond=0)
    init_ca(env={"CHPKI_NOW": h.rfc3339_z(now - dt.timedelta(days=20))})
    h.assert_ok(run("issue", "--passphrase-file", passphrase_file))
    before = ca_state(ca_dir)
    res = run_prefixed(run, faketime(now - dt.timedelta(days=10)), "crl", "--days", "1", "--passphrase-file", passphrase_file, "--json")
    line = h.assert_refused(res, "nextUpdate", "clock", error="ca.clock-went-back")
    assert "expired" in line, line
    assert ca_state(ca_dir) == before


# --------------------------------------------------------------------------------------------
# failures after the commit, a full disk


def test_failure_after_the_commit_exits_3_and_names_what_was_committed(site, ca_dir, tmp_path):
    strace = shutil.which("strace")
    assert strace, "strace is needed (scripts/test installs it)"
    before = {r["serial"] for r in rows(ca_dir, tmp_path / "a")}
    # The first rename after the commit is index.txt's (the view is written after ca.db commits).
    inject = [strace, "-f", "-o", "/dev/null", "-e", "trace=rename,renameat,renameat2",
              "-e", "inject=rename,renameat,renameat2:error=ENOSPC:when=1"]
    res = site("issue", "client", "ops@backend-1", "--json", prefix=inject)
    assert res.returncode == 3, "a failure after the commit must not claim 'nothing changed' (exit 2)" + h.describe(res)
    added = {r["serial"] for r in rows(ca_dir, tmp_path / "b")} - before
    assert len(added) == 1, added
    serial = added.pop()
    line = h.error_line(res)
    assert h.error_object(res)["code"] == "ca.views-stale"
    for word in (serial, str(ca_dir / "index.txt").replace(str(ca_dir), ""), "committed", "stale", "no space left on device"):
        assert word.lower() in line.lower(), (word, line)
    assert serial not in (ca_dir / "index.txt").read_text(), "the scenario: index.txt is stale"
    # the next command rewrites it
    h.assert_ok(site("list"))
    index = {e["serial"] for e in h.parse_index((ca_dir / "index.txt").read_text())}
    assert serial in index
    assert not [p for p in ca_dir.iterdir() if ".tmp-" in p.name]


@pytest.fixture
def tiny_mount(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Fills the filesystem of `directory` to the last byte; returns the filler file."""
    filler = directory / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 1):
            try:
                while os.write(descriptor, b"\0" * size) > 0:
                    pass
            except OSError:
                pass
    finally:
        os.close(descriptor)
    return filler


def test_full_disk_says_so_naming_the_file_and_the_ca_recovers(site, ca_dir, tiny_mount, tmp_path, passphrase_file, run):
    ca = tiny_mount / "ca"
    shutil.copytree(ca_dir, ca)
    filler = fill(tiny_mount)
    res = run("issue", "client", "ops@backend-1", "--ca-dir", ca, "--passphrase-file", passphrase_file, "--json")
    assert res.returncode in (2, 3), h.describe(res)
    line = h.error_line(res)
    # Full before the commit (nothing changed) or after it (a derived file stale): both say so.
    assert h.error_object(res)["code"] in ("system.no-space", "ca.write-failed", "ca.views-stale"), res.stdout
    assert "no space left on device" in line.lower(), line
    assert re.search(re.escape(str(ca)) + r"/(ca\.db|index\.txt|crl\.pem)", line), f"the full file is not named: {line}"
    filler.unlink()
    h.assert_ok(run("list", "--ca-dir", ca))
    h.assert_ok(run("issue", "client", "ops@backend-1", "--ca-dir", ca, "--passphrase-file", passphrase_file))
    db = {r["serial"] for r in rows(ca, tmp_path / "db") if r["kind"] != "root"}
    index = {e["serial"] for e in h.parse_index((ca / "index.txt").read_text())}
    assert index == db


# --------------------------------------------------------------------------------------------
# modes


def test_every_command_restores_the_modes_and_says_so(site, ca_dir):
    os.chmod(ca_dir, 0o755)
    os.chmod(ca_dir / "ca.db", 0o644)
    os.chmod(ca_dir / "root.key", 0o640)
    res = h.assert_ok(site("list"))
    assert h.mode_of(ca_dir) == 0o700
    for p in ca_dir.iterdir():
        assert h.mode_of(p) == (0o700 if p.is_dir() else 0o600), p
    lines = [line for line in res.stderr.splitlines() if "set to" in line]
    assert any(f"{ca_dir.name}/ca.db was 0644; set to 0600" in line for line in lines), res.stderr
    assert any(f"{ca_dir.name}/root.key was 0640; set to 0600" in line for line in lines), res.stderr
    assert any(re.search(rf"{ca_dir.name}/? was 0755; set to 0700", line) for line in lines), res.stderr
    assert len(lines) == 3, res.stderr
    # nothing to fix: nothing said
    assert "set to" not in h.assert_ok(site("list")).stderr


# --------------------------------------------------------------------------------------------
# every live intermediate is a file


def test_a_leaf_of_an_older_intermediate_verifies_from_files_in_ca(site, ca_dir, tmp_path):
    first = issuing_certificate(ca_dir)
    leaf_row = next(r for r in rows(ca_dir, tmp_path / "a", "kind = 'server'"))
    # a one-off outside the intermediate's constraints grows a new one (test_growth.py)
    h.assert_ok(site("issue", "server", "--service", "grafana", "--host", "tools.example.org"))
    newest = issuing_certificate(ca_dir)
    assert newest.serial_number != first.serial_number, "scenario: growth made a new intermediate"
    # the name spells the serial as ca.db does: upper-case hex of even length (a leading 0 kept)
    older = ca_dir / f"intermediate-{serial_hex(first)}.pem"
    assert older.is_file(), sorted(p.name for p in ca_dir.iterdir())
    assert h.load_cert(older) == first and h.mode_of(older) == 0o600
    leaf = tmp_path / "leaf.pem"
    leaf.write_text(leaf_row["certificate_pem"])
    r = h.openssl("verify", "-CAfile", ca_dir / "root.pem", "-untrusted", older, leaf)
    assert r.returncode == 0, h.describe(r)
    statuses = h.ocsp_statuses(ca_dir / "index.txt", older, [leaf], tmp_path / "ocsp")
    assert statuses[str(leaf)] == "good", statuses


# --------------------------------------------------------------------------------------------
# keyCompromise


def test_key_compromise_revokes_the_superseded_certificate_of_the_same_key(site, ca_dir, tmp_path):
    h.assert_ok(site("renew", "--within", "400d"))
    etcd = rows(ca_dir, tmp_path / "a", "host = 'backend-1.example.com' AND service = 'etcd'")
    assert {r["status"] for r in etcd} == {"valid", "superseded"}, [(r["serial"], r["status"]) for r in etcd]
    keys = {h.spki(h.row_cert(r)) for r in etcd if r["status"] == "valid"}
    assert keys == {h.spki(h.row_cert(r)) for r in etcd if r["status"] == "superseded"}, "scenario: renew keeps the keys"
    res = h.assert_ok(site("revoke", "backend-1/etcd", "--reason", "keyCompromise"))
    for r in etcd:
        assert re.search(rf"revoked {r['serial']}\b", res.stdout), (r["serial"], res.stdout)
    after = rows(ca_dir, tmp_path / "b", "host = 'backend-1.example.com' AND service = 'etcd'")
    assert {r["status"] for r in after} == {"revoked"}
    crl = h.openssl("crl", "-in", ca_dir / "crl.pem", "-noout", "-text", check=True).stdout
    for r in etcd:
        assert re.search(rf"Serial Number: {r['serial']}\n\s+Revocation Date: .*\n\s+CRL entry extensions:\n\s+X509v3 CRL Reason Code:\s*\n\s+Key Compromise",
                         crl), (r["serial"], crl)
    # the other host's certificates are untouched
    assert {r["status"] for r in rows(ca_dir, tmp_path / "c", "host = 'backend-2.example.com'")} == {"valid", "superseded"}


# --------------------------------------------------------------------------------------------
# CRLs after a rotation, and CRLs near or past their nextUpdate


def test_rotation_finish_leaves_a_crl_for_the_new_issuer(site, ca_dir, tmp_path):
    h.assert_ok(site("rotate-ca"))
    h.assert_ok(site("issue"))
    h.assert_ok(site("rotate-ca", "--finish", "--force-unrecorded"))
    leaf_row = next(r for r in rows(ca_dir, tmp_path / "a", "kind = 'server' AND status = 'valid'"))
    leaf = tmp_path / "leaf.pem"
    leaf.write_text(leaf_row["certificate_pem"])
    r = h.openssl("verify", "-crl_check", "-CAfile", ca_dir / "root.pem", "-untrusted", ca_dir / "intermediate.pem",
                  "-CRLfile", ca_dir / "crl.pem", leaf)
    assert r.returncode == 0, "without a manual 'chpki crl'" + h.describe(r)


@pytest.mark.parametrize("days, word", [(26, "is near"), (31, "has passed")])
def test_expiring_and_verify_flag_a_crl_near_or_past_its_next_update(site, ca_dir, days, word):
    crl = x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes())
    issuer = crl.issuer.rfc4514_string()
    at = {"CHPKI_NOW": h.rfc3339_z(h.utcnow() + dt.timedelta(days=days))}
    next_update = crl.next_update_utc.strftime("%Y-%m-%dT%H:%M:%S")
    for args in (["expiring"], ["verify"]):
        res = site(*args, env=at)
        assert res.returncode == 1, h.describe(res)
        flagged = [line for line in (res.stdout + res.stderr).splitlines() if "CRL of" in line and next_update in line]
        assert flagged and issuer in flagged[0] and word in flagged[0], h.describe(res)
    # today: nothing to flag
    h.assert_ok(site("expiring"))
    h.assert_ok(site("verify"))


# --------------------------------------------------------------------------------------------
# odd rows, the wrong directory


@pytest.mark.parametrize("column, value", [("sans", "{not json"), ("profile", "[1, 2")])
def test_an_undecodable_row_is_refused_naming_its_serial(site, ca_dir, tmp_path, column, value):
    serial = next(r for r in rows(ca_dir, tmp_path / "a", "kind = 'server'"))["serial"]
    with sqlite3.connect(ca_dir / "ca.db") as db:
        db.execute(f"UPDATE certificates SET {column} = ? WHERE serial = ?", (value, serial))
    db.close()
    before = ca_state(ca_dir)
    for args in (["list"], ["issue"]):
        h.assert_refused(site(*args), serial, column, error="ca.corrupt")
    assert ca_state(ca_dir) == before


def test_no_ca_here_names_the_directory_and_suggests_no_second_ca(run, workdir, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for args, looked in ((["list"], workdir / "ca"), (["list", "--ca-dir", elsewhere], elsewhere)):
        line = h.assert_refused(run(*args), str(looked), "--ca-dir", "CHPKI_CA_DIR", error="ca.not-found")
        assert "create one with" not in line and "new cluster" in line, line


# --------------------------------------------------------------------------------------------
# the release build


def test_a_release_build_ignores_chpki_now(tmp_path):
    """CHPKI_NOW moves every signed notBefore: the packaged binary must not honour it."""
    import package_support
    root = package_support.extract(package_support.built_package(), tmp_path / "pkg")
    binary = root / "usr" / "bin" / "chpki"
    ca = tmp_path / "ca"
    res = subprocess.run([str(binary), "init-ca", "--ca-dir", str(ca), "--no-passphrase"], capture_output=True, text=True,
                         env=h_clean_env({"CHPKI_NOW": "2035-01-01T00:00:00Z"}), stdin=subprocess.DEVNULL, timeout=120)
    assert res.returncode == 0, h.describe(res)
    not_before = h.load_cert(ca / "root.pem").not_valid_before_utc
    assert abs(not_before - h.utcnow()) < dt.timedelta(days=1), not_before
