"""`chpki rollout` carries the plan out and decides nothing (SPEC §7, issue 17): what it copies
(a gzip tar per step, owners and modes from the manifest), what it runs (argv through the
templates, never a shell here), when it records (after a step's commands and checks passed), and
how it stops (the first failure: exit 1, one line naming host, step and service, nothing later
runs, the failed host not recorded). Hosts are directory roots; the run template hands every
command to a helper that only logs it (and fails where the test says)."""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

import pytest

import helpers as h
from lifecycle_support import make_ca

HOSTS = [f"node-{i}.chpki.test" for i in (1, 2, 3)]
INVENTORY = """domain: chpki.test
subject: {O: chpki test}
ca: {common_name: chpki Executor Root, validity: 2y}
defaults: {key: ec-p256, validity: 90d, renew_before: 15d}
hosts:
  - {name: node-1.chpki.test, ips: [127.0.0.1], groups: [db]}
  - {name: node-2.chpki.test, ips: [127.0.0.2], groups: [db]}
  - {name: node-3.chpki.test, ips: [127.0.0.3], groups: [db]}
services:
  etcd: {hosts: db, enable_client: true}
"""

# argv: LOG FAIL {host} {command}: appends [host, command] to LOG; exits 3 when FAIL names the host
# and the command is restart-etcd.
HELPER = r'''
import json, sys
log, fail, host, *command = sys.argv[1:]
with open(log, "a") as out:
    out.write(json.dumps([host, command]) + "\n")
sys.exit(3 if host == fail and command[:1] == ["restart-etcd"] else 0)
'''


@pytest.fixture
def rig(chpki_bin, tmp_path):
    ca = make_ca(chpki_bin, tmp_path / "ca", inventory_text=INVENTORY, init_args=("--no-intermediate",))
    bundles = tmp_path / "bundles"
    ca.ok("bundle", "--out", bundles, signed=True)
    roots = tmp_path / "roots"
    for host in HOSTS:
        (roots / host).mkdir(parents=True)
    helper = tmp_path / "helper.py"
    helper.write_text(HELPER)
    ops = tmp_path / "ops.yml"
    ops.write_text("etcd: {on_leaf: [[restart-etcd]], on_trust: [[restart-etcd]], health: []}\n"
                   "trust: {on_leaf: [[anchors]], on_trust: [[anchors]]}\n")
    log = tmp_path / "commands.log"
    state = tmp_path / "state"

    def rollout(*extra, fail: str = "-", copy: str | None = None):
        return ca.run("rollout", "--bundles", bundles, "--state", state, "--operations", ops,
                      "--copy", copy or f"tar -xzpf - -C {roots}/{{host}}",
                      "--run", f"{sys.executable} {helper} {log} {fail} {{host}} {{command}}", *extra)

    def commands():
        return [tuple(json.loads(line)) for line in log.read_text().splitlines()] if log.exists() else []

    class Rig:
        pass

    r = Rig()
    r.ca, r.bundles, r.roots, r.state, r.ops, r.tmp = ca, bundles, roots, state, ops, tmp_path
    r.rollout, r.commands = rollout, commands
    return r


def manifest(rig, host) -> dict:
    return json.loads((rig.bundles / host / "var/lib/chpki/MANIFEST.json").read_text())


def test_a_full_rollout_copies_runs_and_records_in_plan_order(rig):
    res = h.assert_ok(rig.rollout("--json"))
    report = json.loads(res.stdout)
    assert [(s["phase"], s["host"], s["status"]) for s in report["steps"]] == \
        [("trust", x, "done") for x in HOSTS] + [("leaves", x, "done") for x in HOSTS]
    # trust anchors everywhere first, then each host's etcd restart
    assert rig.commands() == [(x, ["anchors"]) for x in HOSTS] + [(x, ["restart-etcd"]) for x in HOSTS]
    for host in HOSTS:
        m = manifest(rig, host)
        root = rig.roots / host
        for f in m["files"]:
            p = root / f["path"]
            assert p.is_file(), f"{host}: {f['path']} not copied"
            assert oct(h.mode_of(p)) == oct(int(f["mode"], 8)), f"{host}: {f['path']} mode {oct(h.mode_of(p))}"
        for d in m["directories"]:
            assert oct(h.mode_of(root / d["path"])) == oct(int(d["mode"], 8)), f"{host}: {d['path']}"
        assert (root / "var/lib/chpki/MANIFEST.json").read_bytes() == (rig.bundles / host / "var/lib/chpki/MANIFEST.json").read_bytes()
        assert json.loads((rig.state / f"{host}.json").read_text()) == m
    # no private key ever in an argv: every command is the plan's, the archive goes on stdin
    assert not any("PRIVATE KEY" in " ".join(c) for _, c in rig.commands())
    # a second run: nothing new, nothing runs
    before = rig.commands()
    res = h.assert_ok(rig.rollout())
    assert "nothing to roll out" in res.stdout
    assert rig.commands() == before


def test_dry_run_prints_every_argv_and_runs_nothing(rig):
    res = h.assert_ok(rig.rollout("--dry-run"))
    assert rig.commands() == [] and not rig.state.exists()
    assert all(not any((rig.roots / x).iterdir()) for x in HOSTS)
    for host in HOSTS:
        assert f"tar -xzpf - -C {rig.roots}/{host}" in res.stdout
        assert f"{host} restart-etcd" in res.stdout
    assert "dry run: nothing was copied, run or recorded" in res.stdout
    report = json.loads(h.assert_ok(rig.rollout("--dry-run", "--json")).stdout)
    assert report["dry_run"] is True and {s["status"] for s in report["steps"]} == {"planned"}
    step = report["steps"][3]
    assert step["phase"] == "leaves" and step["host"] == HOSTS[0]
    assert step["run"][0]["argv"][-2:] == [HOSTS[0], "restart-etcd"]
    assert step["copy_argv"] == ["tar", "-xzpf", "-", "-C", f"{rig.roots}/{HOSTS[0]}"]


def test_the_first_failure_stops_the_run_and_names_host_step_service(rig):
    res = rig.rollout(fail=HOSTS[1])
    assert res.returncode == 1, h.describe(res)
    line = h.error_line(res)
    for word in (HOSTS[1], "leaves step 2", "service etcd", "exited 3", f"leaves step 3 on {HOSTS[2]}", "run chpki rollout again"):
        assert word in line, f"{word!r} not in: {line}"
    assert len(res.stderr.strip().splitlines()) >= 1
    # trust went everywhere, node-1's leaves ran and it is recorded; node-2 failed, node-3 untouched by leaves
    assert rig.commands() == [(x, ["anchors"]) for x in HOSTS] + [(HOSTS[0], ["restart-etcd"]), (HOSTS[1], ["restart-etcd"])]
    assert sorted(p.name for p in rig.state.iterdir()) == [f"{HOSTS[0]}.json"]
    assert not (rig.roots / HOSTS[2] / "etc/etcd/pki/server.pem").exists()
    # fixed, run again: node-1 is not touched twice; node-2 and node-3 (not recorded) get their whole plan again
    before = len(rig.commands())
    h.assert_ok(rig.rollout())
    assert rig.commands()[before:] == [(x, ["anchors"]) for x in HOSTS[1:]] + [(x, ["restart-etcd"]) for x in HOSTS[1:]]
    assert sorted(p.name for p in rig.state.iterdir()) == sorted(f"{x}.json" for x in HOSTS)


def test_a_failing_copy_or_health_check_stops_before_recording(rig):
    res = rig.rollout(copy="false")
    assert res.returncode == 1 and "copy" in h.error_line(res) and HOSTS[0] in h.error_line(res), h.describe(res)
    assert rig.commands() == [] and not rig.state.exists()
    # a health check on a port nothing listens on: the step fails after --health-timeout
    rig.ops.write_text("etcd: {on_leaf: [[restart-etcd]], on_trust: [[restart-etcd]], health: [{kind: etcd, port: 9, address: 127.0.0.1}]}\n"
                       "trust: {on_leaf: [[anchors]], on_trust: [[anchors]]}\n")
    res = rig.rollout("--health-timeout", "2s")
    assert res.returncode == 1, h.describe(res)
    line = h.error_line(res)
    assert "health check" in line and "service etcd" in line and HOSTS[0] in line and "127.0.0.1:9" in line, line
    assert not (rig.state / f"{HOSTS[0]}.json").exists()


def test_the_archive_carries_owners_modes_and_only_the_steps_files(rig):
    capture = rig.tmp / "captured"
    capture.mkdir()
    res = h.assert_ok(rig.rollout(copy=f"dd status=none of={capture}/{{host}}.tgz"))
    # the last archive per host (the leaves step) holds the leaves, keys, config and the manifest, no trust file
    with tarfile.open(capture / f"{HOSTS[0]}.tgz") as tar:
        members = {m.name: m for m in tar.getmembers()}
    m = manifest(rig, HOSTS[0])
    files = {f["path"]: f for f in m["files"]}
    assert "var/lib/chpki/MANIFEST.json" in members
    for name, member in members.items():
        if name in files:
            assert files[name]["role"] != "trust", name
            assert member.uname == files[name]["owner"] and oct(member.mode) == oct(int(files[name]["mode"], 8)), name
    assert "etc/etcd/pki/server-key.pem" in members, sorted(members)


def test_templates_are_refused_with_one_line(rig):
    res = rig.ca.run("rollout", "--bundles", rig.bundles, "--state", rig.state, "--run", "ssh root@{host} true")
    h.assert_refused(res, "--run", "{command}", error="usage.invalid-argument")
    res = rig.ca.run("rollout", "--bundles", rig.bundles, "--state", rig.state, "--health-timeout", "soon")
    assert res.returncode == 2, h.describe(res)
