"""The soak's CI profile (docs/soak.md): 20 simulated weeks of a real cluster on 127.0.1.x (etcd,
Patroni + PostgreSQL, HAProxy, nginx), each week the real weekly job, growth, a prune, a root
rotated start to finish and the first root expiring, a probe handshaking with every endpoint every
second and writing through etcd and the Patroni leader. Fails on any certificate or trust failure
the probe sees, on any failed write (outside the operator's leader switchover, counted apart) and
on any failed weekly job, printing where and why (report.json's first and last
failure). A server that did not answer for a moment during its planned restart is reported
(unavailable_probes, longest_leader_gap_seconds), not failed on: `scripts/soak --strict` does."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("CHPKI_PATRONI_VENV", "/opt/chpki-test-venv"))


def test_soak_ci_profile(chpki_bin):
    if os.geteuid() != 0:
        pytest.skip("the soak binds ports 443, 2379, 2380, 5432 and 8008 on 127.0.1.x: run as root")
    python = VENV / "bin/python"
    if not python.is_file():
        pytest.skip(f"no virtualenv {VENV} (scripts/test creates it with Patroni and psycopg2)")
    # /tmp, not pytest's 0700 tree: the postgres user must reach its member's files
    base = Path(tempfile.mkdtemp(prefix="chpki-soak-", dir="/tmp"))
    base.chmod(0o755)  # mkdtemp makes it 0700: the postgres user must reach its member's directory
    out = base / "run"
    try:
        res = subprocess.run([str(python), str(REPO / "scripts/soak"), "--ci", "--out", str(out), "--chpki", str(chpki_bin)],
                             capture_output=True, text=True, timeout=1200, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        report = json.loads((out / "report.json").read_text()) if (out / "report.json").is_file() else {}
        detail = f"\nstdout:\n{res.stdout[-4000:]}\nstderr:\n{res.stderr[-4000:]}"
        assert report, "no report.json" + detail
        kinds = [e["kind"] for e in report["events"]]
        for kind in ("host-added", "host-removed", "rotate-ca-start", "rotate-ca-finish", "root-expired"):
            assert kind in kinds, f"the CI profile must include {kind}: {kinds}" + detail
        assert kinds.index("rotate-ca-finish") < kinds.index("root-expired"), f"the root expired before it was replaced: {kinds}"
        assert len(report["weeks"]) >= 21 and all(w["exit"] == 0 for w in report["weeks"]), report["weeks"]
        assert sum(w["renewed"] for w in report["weeks"]) > 0, "no renewal by the weekly job: " + json.dumps(report["weeks"])
        assert report["certificate_failures"] == 0, json.dumps(
            {n: e for n, e in report["endpoints"].items() if e["certificate_failures"]}, indent=1) + detail
        assert all(e["attempts"] > 0 for e in report["endpoints"].values())
        # Patroni's trust change restarts it in maintenance mode: the primary keeps taking writes.
        assert report["failed_writes"] == 0, json.dumps(
            {n: e for n, e in report["endpoints"].items() if n.endswith("-write") and e["failures"]}) + detail
        assert res.returncode == 0, detail
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)
