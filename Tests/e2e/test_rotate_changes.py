"""`scripts/chpki-rotate` renews, re-lays the bundles and runs `chpki rollout` (SPEC §7
"Deployment", docs/operations.md): only what changed is copied, only the services whose files
changed run their operations, each host is recorded after its last step, and `--dry-run` shows
exactly what the real run then does, renewals included.

Hosts are directory roots; the copy template unpacks the step's archive into the host's root,
the run template hands each command to a recorder (it really deletes the files of `rm -f --`).
Every service's operations are overridden to `[reload, SERVICE]` with no health check (no server
runs here): what "should" change is computed here from the bundle trees' manifests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import helpers as h
from conftest import clean_env
from lifecycle_support import REPO, CA, make_ca

ROTATE = REPO / "scripts" / "chpki-rotate"
MOVED = "backend-2.chpki.test"
OLD_IP, NEW_IP = "127.0.0.2", "127.0.0.12"

# The services of loopback.yml's hosts (examples/loopback.yml), plus the trust anchors every host gets.
SERVICES = {
    "backend-1.chpki.test": {"opensearch", "patroni", "etcd", "minio", "trust"},
    "backend-2.chpki.test": {"opensearch", "patroni", "etcd", "minio", "trust"},
    "backend-3.chpki.test": {"opensearch", "patroni", "etcd", "minio", "trust"},
    "frontend-1.chpki.test": {"nginx", "trust"},
    "haproxy-1.chpki.test": {"haproxy", "trust"},
}
ALL_SERVICES = sorted(set().union(*SERVICES.values()))

# argv: LOG ROOTS copy HOST (archive on stdin) | LOG ROOTS run HOST COMMAND...
# A `reload SERVICE` fails when ROOTS/fail names SERVICE.
RECORDER = r'''
import io, json, os, sys, tarfile
from pathlib import Path
log, roots, action, host, *command = sys.argv[1:]
root = Path(roots) / host
def note(*words):
    with open(log, "a") as out:
        out.write(json.dumps(words) + "\n")
if action == "copy":
    root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(sys.stdin.buffer.read()), mode="r:gz") as tar:
        tar.extractall(root, filter="fully_trusted")
    note("copy", host)
elif command[:3] == ["rm", "-f", "--"]:
    for path in command[3:]:
        (root / path.lstrip("/")).unlink(missing_ok=True)
        note("remove", host, path)
elif command[:1] == ["reload"]:
    note("reload", host, command[1])
    fail = Path(roots) / "fail"
    if fail.exists() and fail.read_text().strip() == command[1]:
        sys.exit(1)
else:
    note("other", host, *command)
'''


def manifest_path(tree: Path) -> Path:
    return tree / "var/lib/chpki/MANIFEST.json"


def file_services(tree: Path) -> dict[str, tuple]:
    """path -> (service, sha256 of the bytes in the tree, mode, owner, group), from the manifest."""
    m = json.loads(manifest_path(tree).read_text())
    # A bootstrap file (etcd's bootstrap.env: read at a member's first start) is copied only to a
    # host that never had it and never reloads anything: it is not a change a rollout acts on.
    return {f["path"]: (f["service"], hashlib.sha256((tree / f["path"]).read_bytes()).hexdigest(), f["mode"], f["owner"], f["group"])
            for f in m["files"] if f.get("role") != "bootstrap"}


def changed_services(before: dict, after: dict) -> dict[str, set]:
    """host -> services with a file added, removed or different between two bundle snapshots."""
    out = {}
    for host in after:
        a, b = before.get(host, {}), after[host]
        services = {(b.get(p) or a.get(p))[0] for p in set(a) | set(b) if a.get(p) != b.get(p)}
        if services:
            out[host] = services
    return out


def bundle_snapshot(out: Path) -> dict[str, dict]:
    return {p.name: file_services(p) for p in sorted(out.iterdir()) if p.is_dir() and not p.name.startswith(".")}


class Rig:
    """A CA from examples/loopback.yml, a bundle dir, a state dir, host roots and the recorder."""

    def __init__(self, chpki_bin, tmp_path: Path):
        self.ca: CA = make_ca(chpki_bin, tmp_path / "ca")
        self.out = tmp_path / "bundles"
        self.state = tmp_path / "installed state"  # a space: every path is one argv word
        self.log = tmp_path / "actions.log"
        self.roots = tmp_path / "hosts"
        self.roots.mkdir()
        recorder = tmp_path / "recorder.py"
        recorder.write_text(RECORDER)
        self.copy = f"{sys.executable} {recorder} {self.log} {self.roots} copy {{host}}"
        self.run_template = f"{sys.executable} {recorder} {self.log} {self.roots} run {{host}} {{command}}"
        self.operations = tmp_path / "operations.yml"
        self.operations.write_text("".join(f"{s}: {{on_leaf: [[reload, {s}]], on_trust: [[reload, {s}]], health: []}}\n"
                                           for s in ALL_SERVICES))
        self.removed: list[tuple] = []

    def argv(self, *args, state: bool = True) -> list[str]:
        return [str(ROTATE), "--chpki", str(self.ca.tool.path), "--ca-dir", str(self.ca.ca_dir),
                "--inventory", str(self.ca.inventory), "--out", str(self.out), *(["--state", str(self.state)] if state else []),
                "--passphrase-file", str(self.ca.pf), "--copy", self.copy,
                *(["--run", self.run_template] if self.run_template else []),
                "--operations", str(self.operations), *[str(a) for a in args]]

    def run(self, *args, env=None, state: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args, state=state), cwd=str(self.ca.base), env=clean_env(env), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=300)

    def ok(self, *args, env=None, state: bool = True) -> subprocess.CompletedProcess:
        res = self.run(*args, env=env, state=state)
        assert res.returncode == 0, h.describe(res)
        return res

    def actions(self) -> tuple[list[str], set[tuple]]:
        """(hosts copied, in order, once each; {(host, service) reloaded}), and empties the log."""
        lines = [json.loads(l) for l in self.log.read_text().splitlines()] if self.log.exists() else []
        self.log.unlink(missing_ok=True)
        copies = []
        for l in lines:
            if l[0] == "copy" and l[1] not in copies:
                copies.append(l[1])
        reloads = [(l[1], l[2]) for l in lines if l[0] == "reload"]
        self.removed = [(l[1], l[2]) for l in lines if l[0] == "remove"]
        self.order = [tuple(l) for l in lines if l[0] == "reload"]
        # A service runs at most once per phase: twice only when its trust files changed (trust
        # phase, on_trust) and its leaves too (leaves phase), e.g. MinIO's CAs/ holds its peers.
        assert all(reloads.count(r) <= 2 for r in reloads), f"a service ran more than twice on a host: {reloads}"
        return copies, set(reloads)

    def change_inventory(self, old: str, new: str):
        text = self.ca.inventory.read_text()
        assert text.count(old) == 1, f"scenario: {old!r} once in examples/loopback.yml"
        self.ca.inventory.write_text(text.replace(old, new))
        return self.ca.issue()

    def minio_leaves_backend_3(self):
        self.change_inventory("minio:   { hosts: backend,", "minio:   { hosts: [backend-1.chpki.test, backend-2.chpki.test],")

    def move_host(self):
        report = self.change_inventory(f"[{OLD_IP}]", f"[{NEW_IP}]")
        assert any(c["action"] == "reissued" and c["host"] == MOVED for c in report["certificates"]), report


def dry_run_actions(stdout: str) -> tuple[list[str], set[tuple]]:
    """What `chpki rollout --dry-run` printed: (hosts with a copy, {(host, service) run})."""
    copies, runs, host = [], set(), None
    for line in stdout.splitlines():
        m = re.match(r"^(trust|leaves|cleanup) step \d+: (\S+)$", line)
        if m:
            host = m.group(2)
            continue
        if line.startswith("  copy ") and host not in copies:
            copies.append(host)
        m = re.match(r"^  ([a-z0-9-]+) \(.*\): .* run \S+ reload \1$", line)
        if m:
            runs.add((host, m.group(1)))
    return copies, runs


def test_second_run_copies_and_reloads_nothing(chpki_bin, tmp_path):
    rig = Rig(chpki_bin, tmp_path)
    rig.ok()
    copies, reloads = rig.actions()
    # trust everywhere before any other service anywhere
    kinds = [s for _, _, s in rig.order]
    assert kinds[:5] == ["trust"] * 5 and "trust" not in kinds[5:], rig.order
    assert sorted(copies) == sorted(SERVICES), copies
    assert reloads == {(host, s) for host, ss in SERVICES.items() for s in ss}
    for host in SERVICES:
        recorded = rig.state / f"{host}.json"
        assert recorded.read_bytes() == manifest_path(rig.out / host).read_bytes(), f"{host}: record is not its manifest"
        assert h.mode_of(recorded) == 0o600
        for path, (_, sha, *_r) in file_services(rig.out / host).items():
            assert hashlib.sha256((rig.roots / host / path).read_bytes()).hexdigest() == sha, f"{host}:{path}"

    state = h.snapshot(rig.state)
    res = rig.ok()
    assert rig.actions() == ([], set()), "nothing changed, yet something ran"
    assert "nothing to roll out" in res.stdout, res.stdout
    assert h.snapshot(rig.state) == state


def test_a_moved_host_reinstalls_only_what_changed(chpki_bin, tmp_path):
    rig = Rig(chpki_bin, tmp_path)
    rig.ok()
    rig.actions()
    before = bundle_snapshot(rig.out)
    state = h.snapshot(rig.state)
    rig.move_host()

    dry = rig.ok("--dry-run")
    assert not rig.log.exists(), "--dry-run ran a copy or a command"
    assert h.snapshot(rig.state) == state, "--dry-run changed the state directory"
    assert bundle_snapshot(rig.out) == before, "--dry-run re-laid the bundles"

    rig.ok()
    after = bundle_snapshot(rig.out)
    expected = changed_services(before, after)
    copies, reloads = rig.actions()
    assert MOVED in expected and {"opensearch", "patroni", "etcd", "minio"} <= expected[MOVED], expected
    assert "frontend-1.chpki.test" not in expected and "haproxy-1.chpki.test" not in expected, expected
    assert "trust" not in set().union(*expected.values()), "an IP change must not touch trust files (SPEC §7)"
    assert sorted(copies) == sorted(expected), f"copied {copies}, expected {sorted(expected)}"
    assert reloads == {(host, s) for host, ss in expected.items() for s in ss}, (
        f"reloaded {sorted(reloads)}, expected {sorted(expected.items())}")
    # the dry run named the same hosts and the same services
    assert dry_run_actions(dry.stdout) == (copies, reloads), dry.stdout
    rig.ok()
    assert rig.actions() == ([], set())


def test_dry_run_with_certificates_due_lists_exactly_what_the_run_then_touches(chpki_bin, tmp_path):
    """The dry run renews and bundles in a scratch copy of the CA: with every leaf due (80 days into
    90-day leaves renewed 15 days before), it names every host and service, and changes nothing."""
    rig = Rig(chpki_bin, tmp_path)
    rig.ok()
    rig.actions()
    later = {"CHPKI_NOW": h.rfc3339_z(h.utcnow().replace(microsecond=0) + dt.timedelta(days=80))}
    ca_before = h.snapshot(rig.ca.ca_dir)
    dry = rig.ok("--dry-run", env=later)
    assert h.snapshot(rig.ca.ca_dir) == ca_before, "--dry-run renewed in the CA directory"
    assert not rig.log.exists()
    planned = dry_run_actions(dry.stdout)
    assert sorted(planned[0]) == sorted(SERVICES), dry.stdout
    rig.ok(env=later)
    assert rig.actions() == planned


def test_a_failed_operation_stops_the_run_and_the_next_run_finishes(chpki_bin, tmp_path):
    rig = Rig(chpki_bin, tmp_path)
    (rig.roots / "fail").write_text("minio\n")
    res = rig.run()
    assert res.returncode == 1, h.describe(res)
    line = h.error_line(res)
    assert "backend-1.chpki.test" in line and "service minio" in line and "next would have been" in line, line
    assert not (rig.state / "backend-1.chpki.test.json").exists(), "a host whose operation failed was recorded"
    _, reloads = rig.actions()
    assert ("backend-1.chpki.test", "minio") in reloads and not any(host == "backend-2.chpki.test" and s != "trust" for host, s in reloads)

    (rig.roots / "fail").unlink()
    rig.ok()
    _, reloads = rig.actions()
    assert {s for host, s in reloads if host == "backend-1.chpki.test"} == SERVICES["backend-1.chpki.test"]
    rig.ok("--force", "--hosts", "haproxy-1", "--no-renew")
    assert rig.actions() == (["haproxy-1.chpki.test"], {("haproxy-1.chpki.test", "haproxy"), ("haproxy-1.chpki.test", "trust")})


def test_default_state_dir_is_in_the_ca_directory(chpki_bin, tmp_path):
    rig = Rig(chpki_bin, tmp_path)
    rig.ok("--no-renew", "--hosts", "frontend-1", state=False)
    assert sorted(p.name for p in (rig.ca.ca_dir / "installed").iterdir()) == ["frontend-1.chpki.test.json"]


def test_a_damaged_record_is_refused_then_a_deleted_one_means_reinstall(chpki_bin, tmp_path):
    rig = Rig(chpki_bin, tmp_path)
    rig.ok()
    rig.actions()
    damaged = rig.state / "frontend-1.chpki.test.json"
    damaged.write_text('{"generator": "chpki", "files": [')
    (rig.state / "haproxy-1.chpki.test.json").unlink()
    res = rig.run()
    assert res.returncode == 2 and str(damaged) in res.stderr, h.describe(res)
    assert rig.actions() == ([], set()), "a command ran despite a refused record"
    damaged.unlink()
    rig.ok()
    copies, reloads = rig.actions()
    assert sorted(copies) == ["frontend-1.chpki.test", "haproxy-1.chpki.test"], copies
    assert reloads == {("frontend-1.chpki.test", "nginx"), ("frontend-1.chpki.test", "trust"),
                       ("haproxy-1.chpki.test", "haproxy"), ("haproxy-1.chpki.test", "trust")}


def test_a_service_that_leaves_a_host_takes_its_files_with_it(chpki_bin, tmp_path):
    rig = Rig(chpki_bin, tmp_path)
    rig.ok()
    rig.actions()
    leaver = "backend-3.chpki.test"
    snapshot_before = bundle_snapshot(rig.out)
    gone = sorted(p for p, v in snapshot_before[leaver].items() if v[0] == "minio")
    assert gone, "scenario: backend-3 had MinIO files"
    rig.minio_leaves_backend_3()
    rig.ok()
    _, reloads = rig.actions()
    snapshot_after = bundle_snapshot(rig.out)
    dropped = {(host, f"/{p}") for host, files in snapshot_before.items() for p in files if p not in snapshot_after[host]}
    assert sorted(rig.removed) == sorted(dropped)
    assert ("backend-1.chpki.test", f"/home/minio-user/.minio/certs/CAs/{leaver.split('.')[0]}.crt") in dropped
    for p in gone:
        assert not (rig.roots / leaver / p).exists(), f"{p} stayed on {leaver}"
    assert (leaver, "minio") not in reloads, "minio restarted on a host it left"
    assert {("backend-1.chpki.test", "minio"), ("backend-2.chpki.test", "minio")} <= reloads, reloads
    rig.ok()
    assert rig.actions() == ([], set()) and rig.removed == []


def test_a_host_with_no_bundle_left_is_named_not_touched(chpki_bin, tmp_path):
    rig = Rig(chpki_bin, tmp_path)
    rig.ok()
    rig.actions()
    rig.change_inventory("haproxy: { hosts: balancer }", "haproxy: { hosts: [frontend-1.chpki.test] }")
    res = rig.ok()
    copies, _ = rig.actions()
    assert "haproxy-1.chpki.test" not in copies and not [r for r in rig.removed if r[0] == "haproxy-1.chpki.test"]
    assert "haproxy-1.chpki.test: installed before, no bundle now" in res.stdout, res.stdout
    assert (rig.state / "haproxy-1.chpki.test.json").exists()


def test_options_of_the_old_script_are_refused_naming_the_new_ones(tmp_path):
    for old in (["--reload-cmd", "x"], ["--copy-cmd", "x"], ["--remove-cmd", ""], ["--reload-cmd-etcd", "x"], ["--trust-cmd", "x"]):
        res = subprocess.run([str(ROTATE), *old], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL, cwd=tmp_path)
        assert res.returncode == 2 and "--operations" in res.stderr, h.describe(res)
    assert "python" not in ROTATE.read_text(), "chpki-rotate needs only bash, coreutils and chpki"
