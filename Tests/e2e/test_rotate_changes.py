"""`scripts/chpki-rotate` installs only what changed (SPEC §7 "Deployment", docs/deployment.md):
it records each host's installed manifest on the controller, copies a host only when its new
manifest differs from that record, and reloads only the services whose files changed.

The copy and reload commands are recorders (they append to a log); what "should" change is
computed here from the bundle trees' manifests and files, not by the script.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
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
# What a file belongs to, for manifests that do not say it (bundles before the manifest moved).
PREFIXES = [("etc/pki/ca-trust/", "trust"), ("usr/local/share/ca-certificates/", "trust"),
            ("etc/opensearch/", "opensearch"), ("home/minio-user/", "minio"), ("etc/default/minio", "minio"),
            ("etc/ssl/haproxy", "haproxy"), ("etc/haproxy/", "haproxy"), ("etc/etcd/", "etcd"),
            ("etc/ssl/", "patroni"), ("etc/patroni/", "patroni"), ("etc/cinc-project/", "nginx")]


def manifest_path(tree: Path) -> Path:
    new = tree / "var/lib/chpki/MANIFEST.json"
    return new if new.exists() else tree / "MANIFEST.json"


def file_services(tree: Path) -> dict[str, tuple]:
    """path -> (service, sha256 of the bytes in the tree, mode, owner, group), from the manifest."""
    m = json.loads(manifest_path(tree).read_text())
    out = {}
    for f in m["files"]:
        service = f.get("service") or next(s for p, s in PREFIXES if f["path"].startswith(p))
        out[f["path"]] = (service, hashlib.sha256((tree / f["path"]).read_bytes()).hexdigest(), f["mode"], f["owner"], f["group"])
    return out


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
    """A CA from examples/loopback.yml, a bundle dir, a state dir and recording commands."""

    def __init__(self, chpki_bin, tmp_path: Path):
        self.ca: CA = make_ca(chpki_bin, tmp_path / "ca")
        self.out = tmp_path / "bundles"
        self.state = tmp_path / "installed state"  # a space: the paths are quoted
        self.log = tmp_path / "actions.log"
        q = shlex.quote(str(self.log))
        self.copy = f"echo copy {{host}} >> {q}"
        self.reload = f"echo reload {{host}} {{service}} >> {q}"
        # the dropped paths come on stdin, NUL-separated (never on a command line)
        self.remove = f"xargs -0 -r -n1 echo remove {{host}} >> {q}"

    def run(self, *args, env=None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(ROTATE), "--chpki", str(self.ca.tool.path), "--ca-dir", str(self.ca.ca_dir),
             "--inventory", str(self.ca.inventory), "--out", str(self.out), "--state", str(self.state),
             "--passphrase-file", str(self.ca.pf), "--copy-cmd", self.copy, "--reload-cmd", self.reload,
             "--remove-cmd", self.remove, *[str(a) for a in args]],
            cwd=str(self.ca.base), env=clean_env(env), stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=300)

    def ok(self, *args, env=None) -> subprocess.CompletedProcess:
        res = self.run(*args, env=env)
        assert res.returncode == 0, h.describe(res)
        return res

    def actions(self) -> tuple[list[str], set[tuple]]:
        """(hosts copied, in order; {(host, service) reloaded}), and empties the log."""
        lines = [l.split() for l in self.log.read_text().splitlines()] if self.log.exists() else []
        self.log.unlink(missing_ok=True)
        copies = [l[1] for l in lines if l[0] == "copy"]
        reloads = [(l[1], l[2]) for l in lines if l[0] == "reload"]
        self.removed = [(l[1], l[2]) for l in lines if l[0] == "remove"]
        assert len(reloads) == len(set(reloads)), f"a service reloaded twice: {reloads}"
        return copies, set(reloads)

    def change_inventory(self, old: str, new: str):
        """One edit of the inventory (the scenario's text must be there once), then chpki issue;
        returns issue's JSON report."""
        text = self.ca.inventory.read_text()
        assert text.count(old) == 1, f"scenario: {old!r} once in examples/loopback.yml"
        self.ca.inventory.write_text(text.replace(old, new))
        return self.ca.issue()

    def minio_leaves_backend_3(self):
        self.change_inventory("minio:   { hosts: backend,", "minio:   { hosts: [backend-1.chpki.test, backend-2.chpki.test],")

    def move_host(self):
        """backend-2 gets another address; chpki issue re-issues what names it."""
        report = self.change_inventory(f"[{OLD_IP}]", f"[{NEW_IP}]")
        assert any(c["action"] == "reissued" and c["host"] == MOVED for c in report["certificates"]), report


def test_second_run_copies_and_reloads_nothing(chpki_bin, tmp_path):
    rig = Rig(chpki_bin, tmp_path)
    res = rig.ok()
    lines = [l.split() for l in rig.log.read_text().splitlines()]
    copies, reloads = rig.actions()
    # trust anchors are activated right after the copy, before the services that use them restart
    for i, l in enumerate(lines):
        if l[0] == "copy":
            assert lines[i + 1] == ["reload", l[1], "trust"], lines
    # the first run: every host, every service of it (minicluster and the manifest are no services)
    assert copies == sorted(SERVICES), copies
    assert reloads == {(host, s) for host, ss in SERVICES.items() for s in ss}
    assert "installed 5 host(s)" in res.stdout, res.stdout
    for host in SERVICES:
        recorded = rig.state / f"{host}.json"
        assert recorded.read_bytes() == manifest_path(rig.out / host).read_bytes(), f"{host}: record is not its manifest"
        assert h.mode_of(recorded) == 0o600

    state = h.snapshot(rig.state)
    res = rig.ok()
    copies, reloads = rig.actions()
    assert copies == [] and reloads == set(), f"nothing changed, yet copied {copies} reloaded {sorted(reloads)}"
    assert "installed 0 host(s), 0 service reload(s), removed 0 dropped file(s); 5 host(s) unchanged" in res.stdout, res.stdout
    assert h.snapshot(rig.state) == state


def test_a_moved_host_reinstalls_only_what_changed(chpki_bin, tmp_path):
    rig = Rig(chpki_bin, tmp_path)
    rig.ok()
    rig.actions()
    before = bundle_snapshot(rig.out)
    state = h.snapshot(rig.state)
    rig.move_host()

    # --dry-run: shows exactly what a run would do, runs and records nothing
    dry = rig.ok("--dry-run")
    assert not rig.log.exists(), "--dry-run ran a copy or reload command"
    assert h.snapshot(rig.state) == state, "--dry-run changed the state directory"
    assert bundle_snapshot(rig.out) == before, "--dry-run re-laid the bundles"

    res = rig.ok()
    after = bundle_snapshot(rig.out)
    expected = changed_services(before, after)
    copies, reloads = rig.actions()

    # what the bundles say changed: the moved host's certificates, and the peers' copies of them
    assert MOVED in expected and {"opensearch", "patroni", "etcd", "minio"} <= expected[MOVED], expected
    assert "frontend-1.chpki.test" not in expected and "haproxy-1.chpki.test" not in expected, expected
    assert "trust" not in set().union(*expected.values()), "an IP change must not touch trust files (SPEC §7)"
    assert copies == sorted(expected), f"copied {copies}, expected {sorted(expected)}" + h.describe(res)
    assert reloads == {(host, s) for host, ss in expected.items() for s in ss}, (
        f"reloaded {sorted(reloads)}, expected {sorted(expected.items())}")

    # the dry run named the same hosts and the same services, each with its changed files
    would_copy = re.findall(r"^chpki-rotate: (\S+): would copy$", dry.stdout, re.M)
    would_reload = set(re.findall(r"^chpki-rotate: (\S+): would reload (\S+): \S", dry.stdout, re.M))
    assert would_copy == copies, dry.stdout
    assert would_reload == reloads, dry.stdout
    for host in copies:
        assert f"+ echo copy {host} >>" in dry.stdout, dry.stdout
    assert re.search(rf"^chpki-rotate: {re.escape(MOVED)}: would reload etcd: .*etc/etcd/pki/server\.pem \(changed\)",
                     dry.stdout, re.M), dry.stdout

    # and again: nothing
    rig.ok()
    assert rig.actions() == ([], set())


def test_a_failed_reload_is_retried_by_the_next_run(chpki_bin, tmp_path):
    rig = Rig(chpki_bin, tmp_path)
    q = shlex.quote(str(rig.log))
    rig.reload = f"echo reload {{host}} {{service}} >> {q} && test {{service}} != minio"
    res = rig.run()
    assert res.returncode == 1 and "backend-1.chpki.test: reload of minio failed" in res.stderr, h.describe(res)
    assert not (rig.state / "backend-1.chpki.test.json").exists(), "a host whose reload failed was recorded"
    copies, _ = rig.actions()
    assert copies == ["backend-1.chpki.test"], "the run went on after the failure"

    rig.reload = f"echo reload {{host}} {{service}} >> {q}"
    rig.ok()
    copies, reloads = rig.actions()
    assert copies == sorted(SERVICES), "the failed host (and the hosts after it) are installed by the next run"
    assert {s for host, s in reloads if host == "backend-1.chpki.test"} == SERVICES["backend-1.chpki.test"]

    rig.ok("--force", "--hosts", "haproxy-1")
    assert rig.actions() == (["haproxy-1.chpki.test"], {("haproxy-1.chpki.test", "haproxy"), ("haproxy-1.chpki.test", "trust")})


def test_reload_commands_per_service(chpki_bin, tmp_path):
    """--reload-cmd-SERVICE, CHPKI_RELOAD_<SERVICE>, --trust-cmd and the defaults reach {command};
    an empty command reloads nothing."""
    rig = Rig(chpki_bin, tmp_path)
    q = shlex.quote(str(rig.log))
    rig.reload = f"printf '%s\\n' {{host}}={{service}}={{command}} >> {q}"
    rig.ok("--hosts", "backend-1,haproxy-1,frontend-1", "--reload-cmd-etcd", "etcd-cmd --now", "--trust-cmd", "trust-cmd",
           "--reload-cmd-opensearch", "", env={"CHPKI_RELOAD_HAPROXY": "haproxy-cmd", "CHPKI_RELOAD_ETCD": "not this"})
    got = {tuple(l.split("=", 2)) for l in rig.log.read_text().splitlines() if not l.startswith("copy ")}
    b1 = "backend-1.chpki.test"
    assert (b1, "etcd", "etcd-cmd --now") in got
    assert (b1, "trust", "trust-cmd") in got
    assert ("haproxy-1.chpki.test", "haproxy", "haproxy-cmd") in got
    assert not [g for g in got if g[1] == "opensearch"], "an empty reload command must reload nothing"
    # the defaults of reference 000's services
    assert (b1, "patroni", 'systemctl reload patroni && kill -HUP "$(head -n 1 /data/postgresql/postmaster.pid)"') in got
    assert (b1, "minio", "systemctl restart minio") in got
    nginx = [g for g in got if g[1] == "nginx"]
    assert len(nginx) == 1 and "cinc-server-ctl reconfigure" in nginx[0][2] and "chef-server-ctl reconfigure" in nginx[0][2]

    res = subprocess.run([str(ROTATE), "--reload-cmd-Bad_Name", "x"], capture_output=True, text=True, timeout=30,
                         stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert res.returncode == 2 and "not a service name" in res.stderr, h.describe(res)


def test_default_state_dir_is_beside_the_bundles(chpki_bin, tmp_path):
    rig = Rig(chpki_bin, tmp_path)
    res = subprocess.run(
        [str(ROTATE), "--chpki", str(rig.ca.tool.path), "--ca-dir", str(rig.ca.ca_dir), "--inventory", str(rig.ca.inventory),
         "--out", str(rig.out) + "/", "--passphrase-file", str(rig.ca.pf), "--copy-cmd", rig.copy,
         "--reload-cmd", rig.reload, "--no-renew",
         "--hosts", "frontend-1"],
        cwd=str(rig.ca.base), env=clean_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, h.describe(res)
    assert sorted(p.name for p in (tmp_path / "bundles.installed").iterdir()) == ["frontend-1.chpki.test.json"]


def test_a_damaged_record_is_refused_then_a_deleted_one_means_reinstall(chpki_bin, tmp_path):
    """A record that is not a chpki manifest (truncated, edited) is refused, naming it, and nothing
    runs on any host (SPEC §8: recorded state is data); a missing record counts as never installed."""
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
    assert copies == ["frontend-1.chpki.test", "haproxy-1.chpki.test"], copies
    assert reloads == {("frontend-1.chpki.test", "nginx"), ("frontend-1.chpki.test", "trust"),
                       ("haproxy-1.chpki.test", "haproxy"), ("haproxy-1.chpki.test", "trust")}
    assert json.loads((rig.state / "frontend-1.chpki.test.json").read_text())["generator"] == "chpki"


def test_a_service_that_leaves_a_host_takes_its_files_with_it(chpki_bin, tmp_path):
    """MinIO leaves backend-3: its files are deleted there (an untar never deletes, and a stale key
    must not stay behind), minio is not restarted on backend-3, and the peers that list it reload."""
    rig = Rig(chpki_bin, tmp_path)
    hosts = tmp_path / "hosts"
    q, log = shlex.quote(str(hosts)), shlex.quote(str(rig.log))
    rig.copy = f"mkdir -p {q}/{{host}} && tar -xzpf {{archive}} -C {q}/{{host}} && echo copy {{host}} >> {log}"
    rig.remove = f"xargs -0 -r -I @ sh -c 'rm -- \"$0/$1$2\" && echo remove \"$1\" \"$2\"' {q} {{host}} @ >> {log}"
    rig.ok()
    rig.actions()
    assert rig.removed == []
    leaver = "backend-3.chpki.test"
    snapshot_before = bundle_snapshot(rig.out)
    before = snapshot_before[leaver]

    rig.minio_leaves_backend_3()

    res = rig.ok("--dry-run")
    copies, reloads = rig.actions()
    assert copies == [] and reloads == set() and rig.removed == [], "a dry run ran a command"
    gone = sorted(p for p, v in before.items() if v[0] == "minio")
    assert gone, "scenario: backend-3 had MinIO files"
    for p in gone:
        assert f"{leaver}: would remove /{p} (no longer in the bundle)" in res.stdout, res.stdout
        assert (hosts / leaver / p).is_file(), "a dry run removed a file"

    res = rig.ok()
    copies, reloads = rig.actions()
    after_tree = file_services(rig.out / leaver)
    assert not [p for p in after_tree if p in gone], "scenario: the new bundle still has a MinIO file"
    assert sorted(p for h_, p in rig.removed if h_ == leaver) == [f"/{p}" for p in gone]
    # exactly the files each host's new bundle dropped: the leaver's MinIO files, and the peers'
    # copy of the leaver's certificate in MinIO's CAs/
    snapshot_after = bundle_snapshot(rig.out)
    dropped = {(host, f"/{p}") for host, files in snapshot_before.items() for p in files if p not in snapshot_after[host]}
    assert sorted(rig.removed) == sorted(dropped)
    assert ("backend-1.chpki.test", f"/home/minio-user/.minio/certs/CAs/{leaver.split('.')[0]}.crt") in dropped
    for p in gone:
        assert not (hosts / leaver / p).exists(), f"{p} stayed on {leaver}"
    for p, (_, sha, *_rest) in after_tree.items():
        assert hashlib.sha256((hosts / leaver / p).read_bytes()).hexdigest() == sha, f"{leaver}:{p}"
    assert (leaver, "minio") not in reloads, "minio restarted on a host it left"
    assert f"{leaver}: minio left this host" in res.stdout, res.stdout
    # the peers' MINIO_VOLUMES lost backend-3: they reload minio
    assert {("backend-1.chpki.test", "minio"), ("backend-2.chpki.test", "minio")} <= reloads, reloads
    assert f"removed {len(dropped)} dropped file(s)" in res.stdout, res.stdout
    assert json.loads((rig.state / f"{leaver}.json").read_text()) == json.loads(manifest_path(rig.out / leaver).read_text())

    res = rig.ok()
    assert rig.actions() == ([], set()) and rig.removed == []


def test_a_failed_remove_stops_the_run_and_is_retried(chpki_bin, tmp_path):
    rig = Rig(chpki_bin, tmp_path)
    rig.ok()
    rig.actions()
    rig.minio_leaves_backend_3()
    log = shlex.quote(str(rig.log))
    rig.remove = f"xargs -0 -r -n1 echo remove {{host}} >> {log}; false"
    first = "backend-1.chpki.test"  # the first host in name order; it drops CAs/backend-3.crt
    res = rig.run()
    assert res.returncode == 1 and f"{first}: remove command failed" in res.stderr, h.describe(res)
    record = json.loads((rig.state / f"{first}.json").read_text())
    assert any(f["path"].endswith("CAs/backend-3.crt") for f in record["files"]), \
        "a host whose remove failed was recorded as installed"
    copies, reloads = rig.actions()
    assert copies == [first] and reloads == set(), "the run went on after the failed remove"
    rig.remove = f"xargs -0 -r -n1 echo remove {{host}} >> {log}"
    rig.ok()
    copies, _ = rig.actions()
    assert copies[0] == first and (first, "/home/minio-user/.minio/certs/CAs/backend-3.crt") in rig.removed
    rig.ok()
    assert rig.actions() == ([], set()) and rig.removed == []


def test_a_host_with_no_bundle_left_is_named_not_touched(chpki_bin, tmp_path):
    """A host whose only service left keeps its record and its files: chpki-rotate names it and
    touches nothing there (it may be gone; deleting on a host is for hosts that are in the bundle)."""
    rig = Rig(chpki_bin, tmp_path)
    rig.ok()
    rig.actions()
    rig.change_inventory("haproxy: { hosts: balancer }", "haproxy: { hosts: [frontend-1.chpki.test] }")
    res = rig.ok()
    copies, _ = rig.actions()
    assert "haproxy-1.chpki.test" not in copies and not [r for r in rig.removed if r[0] == "haproxy-1.chpki.test"]
    assert "haproxy-1.chpki.test: installed before, no bundle now" in res.stdout, res.stdout
    assert (rig.state / "haproxy-1.chpki.test.json").exists()
