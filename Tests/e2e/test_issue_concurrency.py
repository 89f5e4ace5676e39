"""`chpki issue` under concurrency and sudden death (SPEC §6): two runs at once never duplicate a
serial or an identity; a run killed at any moment leaves the CA as before or as after the whole
batch, never between, and the next run completes it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections import Counter

import pytest
from cryptography.hazmat.primitives import serialization

import helpers as h

REFERENCE = h.INVENTORIES / "reference-000.yml"


def check_ca_consistent(ca_dir, tmp, expected_leaves: int | None = None) -> list[dict]:
    """ca.db intact, serials unique, one valid row per identity, index.txt well-formed and in step
    with ca.db. Returns the rows."""
    assert h.db_integrity(ca_dir, tmp) == "ok"
    rows = h.db_rows(ca_dir, tmp)
    serials = [r["serial"] for r in rows]
    dup = [s for s, n in Counter(serials).items() if n > 1]
    assert not dup, f"duplicate serials in ca.db: {dup}"
    assert len({int(s, 16) for s in serials}) == len(serials), "serials equal as numbers"
    idents = Counter(h.row_identity(r) for r in h.leaf_rows(rows))
    twins = [i for i, n in idents.items() if n > 1]
    assert not twins, f"more than one valid certificate for {twins}"
    if expected_leaves is not None:
        assert len(h.leaf_rows(rows, status=None)) == expected_leaves
    entries = h.parse_index((ca_dir / "index.txt").read_text())
    idx_serials = [e["serial"] for e in entries]
    assert len(idx_serials) == len(set(idx_serials)), "duplicate serial in index.txt"
    by_serial = {r["serial"]: r for r in rows}
    for e in entries:
        assert e["serial"] in by_serial, f"index.txt serial {e['serial']} is not in ca.db"
        cert = h.row_cert(by_serial[e["serial"]])
        assert e["status"] == "V", e
        assert e["revocation"] == ""
        assert e["expiry"] == h.asn1_time(cert.not_valid_after_utc), e
        assert e["subject"] == h.oneline(cert.subject), e
    return rows


def index_serials(ca_dir) -> set[str]:
    return {e["serial"] for e in h.parse_index((ca_dir / "index.txt").read_text())}


@pytest.mark.parametrize("round_", [1, 2])
def test_two_concurrent_runs(chpki, workdir, init_ca, ca_dir, passphrase_file, tmp_path, round_):
    inv = workdir / "cluster.yml"
    shutil.copyfile(REFERENCE, inv)
    init_ca("--inventory", inv)
    expected = h.expected_certificates(h.load_yaml(inv))
    args = ("issue", "--json", "--ca-dir", ca_dir, "--inventory", inv, "--passphrase-file", passphrase_file)
    procs = [chpki.popen(*args) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, f"exit {p.returncode}\n--- stdout ---\n{out}\n--- stderr ---\n{err}"
    import json

    reports = [json.loads(out) for out, _ in outs]
    rows = check_ca_consistent(ca_dir, tmp_path / "db", expected_leaves=len(expected))
    valid = {h.row_identity(r): r for r in h.leaf_rows(rows)}
    assert set(valid) == set(expected)
    # together the two runs issued each certificate exactly once; the other found it in place
    actions = Counter()
    for rep in reports:
        seen = set()
        for c in rep["certificates"]:
            ident = (c["kind"], c["host"], c["service"], c["name"])
            assert ident not in seen
            seen.add(ident)
            actions[(ident, c["action"])] += 1
            assert c["action"] in ("issued", "unchanged"), c
            assert c["serial"] == valid[ident]["serial"], (
                f"{ident}: a run reported serial {c['serial']}, the valid certificate is {valid[ident]['serial']}")
        assert seen == set(expected)
    for ident in expected:
        assert actions[(ident, "issued")] == 1, f"{ident} issued {actions[(ident, 'issued')]} times"
    assert sum(rep["summary"]["issued"] for rep in reports) == len(expected)
    assert index_serials(ca_dir) == {r["serial"] for r in rows if r["kind"] != "root"}


# ---------------------------------------------------------------------------------------------
# kill -9 in the middle of a batch


N_HOSTS = 24  # 25 RSA-2048 keys: a batch of a few seconds


def big_inventory() -> str:
    hosts = "".join(
        f"  - name: node-{i:02d}.example.com\n    ips: [10.0.0.{i}]\n    groups: [backend]\n" for i in range(1, N_HOSTS + 1))
    return f"""\
domain: example.com
subject:
  O: MyCompany
  C: US
defaults:
  key: ec-p256
  validity: 397d
  renew_before: 30d
hosts:
{hosts}services:
  opensearch:
    hosts: backend
    key: rsa-2048
    server_cert_mode: both
    enable_client: false
  etcd: {{ hosts: backend, server_cert_mode: both }}
  patroni: {{ hosts: backend }}
admin:
  name: admin
"""


def wait_or_kill(proc, delay: float) -> bool:
    """True if `proc` was killed by us after `delay` seconds, False if it had finished."""
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    return True


def test_killed_run_leaves_all_or_nothing(chpki, workdir, init_ca, ca_dir, passphrase_file, tmp_path):
    inv = workdir / "cluster.yml"
    inv.write_text(big_inventory())
    init_ca("--inventory", inv, "--no-intermediate")  # the leaves are checked against root.pem alone
    expected = h.expected_certificates(h.load_yaml(inv))
    n = len(expected)
    assert n == 5 * N_HOSTS + 1
    args = ("issue", "--json", "--ca-dir", ca_dir, "--inventory", inv, "--passphrase-file", passphrase_file)

    # how long a whole batch takes here, on a copy of the CA
    timing_ca = tmp_path / "ca-timing"
    shutil.copytree(ca_dir, timing_ca)
    started = time.monotonic()
    p = chpki.popen("issue", "--ca-dir", timing_ca, "--inventory", inv, "--passphrase-file", passphrase_file)
    out, err = p.communicate(timeout=300)
    duration = time.monotonic() - started
    assert p.returncode == 0, err
    assert len(h.leaf_rows(h.db_rows(timing_ca, tmp_path / "db"))) == n

    killed = 0
    outcomes = []
    for fraction in (0.3, 0.7, 0.95):
        p = chpki.popen(*args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if wait_or_kill(p, duration * fraction):
            killed += 1
        else:
            p.communicate(timeout=60)
        rows = check_ca_consistent(ca_dir, tmp_path / "db")
        leaves = h.leaf_rows(rows, status=None)
        assert len(leaves) in (0, n), f"killed after {fraction:.0%} of a run: {len(leaves)} of {n} certificates recorded"
        # index.txt also lists the intermediate (a default CA's), which is not part of the batch
        idx = index_serials(ca_dir) - {r["serial"] for r in rows if r["kind"] == "intermediate"}
        assert idx in (set(), {r["serial"] for r in leaves}), (
            f"index.txt lists {len(idx)} certificates, ca.db {len(leaves)}: a partial index")
        outcomes.append((fraction, len(leaves)))
        if leaves:
            break
    print(f"batch {duration:.2f}s; (fraction of it before SIGKILL, certificates then in ca.db): {outcomes}")
    assert killed >= 1, f"no run was killed mid-way (a batch takes {duration:.2f}s); the test proved nothing"

    # the CA still works: the next run completes the batch, or finds it complete
    res = chpki.run(*args)
    h.assert_ok(res)
    report = h.parse_json_output(res)
    s = report["summary"]
    assert (s["issued"], s["unchanged"]) in ((n, 0), (0, n)), s
    assert s["reissued"] == s["renewed"] == 0
    rows = check_ca_consistent(ca_dir, tmp_path / "db", expected_leaves=n)
    valid = {h.row_identity(r): r for r in h.leaf_rows(rows)}
    assert set(valid) == set(expected)
    assert index_serials(ca_dir) == {r["serial"] for r in rows if r["kind"] != "root"}, "index.txt is stale"

    mismatched = []
    servers, clients = [], []
    certdir = tmp_path / "certs"
    certdir.mkdir()
    for i, (ident, r) in enumerate(valid.items()):
        cert = h.row_cert(r)
        key = serialization.load_pem_private_key(r["private_key_pem"].encode(), None)
        if h.spki(key) != h.spki(cert):
            mismatched.append(ident)
        path = certdir / f"{i:03d}.pem"
        path.write_text(r["certificate_pem"])
        (servers if ident[0] == "server" else clients).append(path)
    assert not mismatched, f"certificates whose stored key does not match: {mismatched}"
    for purpose, paths in (("sslserver", servers), ("sslclient", clients)):
        res = h.openssl("verify", "-CAfile", ca_dir / "root.pem", "-purpose", purpose, *paths)
        oks = [line for line in res.stdout.splitlines() if line.endswith(": OK")]
        assert res.returncode == 0 and len(oks) == len(paths), h.describe(res)
