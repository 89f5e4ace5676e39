"""`chpki rollout-plan` on a real CA (docs/rollout.md): the phased plan of a rotation — every host's
trust before any leaf, the leaves of the new root after — read from the bundles' MANIFEST.json
(format 3: roles, each leaf's root checked here against the root certificate with Python's
cryptography) and the records in <ca-dir>/installed; site overrides and their refusals."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

import helpers as h
from lifecycle_support import make_ca

MANIFEST = "var/lib/chpki/MANIFEST.json"


def root_digest(ca) -> str:
    return hashlib.sha256(ca.root().public_bytes(Encoding.DER)).hexdigest()


def hosts_of(bundles: Path) -> list[str]:
    return sorted(p.name for p in bundles.iterdir() if (p / MANIFEST).is_file())


def record(ca, bundles: Path):
    """What a rollout records once a host's steps succeeded."""
    state = ca.ca_dir / "installed"
    state.mkdir(mode=0o700, exist_ok=True)
    for host in hosts_of(bundles):
        shutil.copyfile(bundles / host / MANIFEST, state / f"{host}.json")
        (state / f"{host}.json").chmod(0o600)


def plan(ca, bundles: Path, *args) -> dict:
    res = h.assert_ok(ca.run("rollout-plan", "--bundles", bundles, "--json", *args))
    return json.loads(res.stdout)


def steps(doc: dict, phase: str) -> list[dict]:
    return next(p for p in doc["phases"] if p["name"] == phase)["steps"]


def test_a_rotation_plans_trust_everywhere_before_any_leaf(chpki_bin, tmp_path):
    ca = make_ca(chpki_bin, tmp_path / "ca")
    old_root = root_digest(ca)
    ca.ok("bundle", "--out", tmp_path / "before", signed=True)
    record(ca, tmp_path / "before")
    hosts = hosts_of(tmp_path / "before")
    assert plan(ca, tmp_path / "before") == {"phases": [{"name": n, "steps": []} for n in ("trust", "leaves", "cleanup")],
                                             "orphans": []}

    ca.ok("rotate-ca", signed=True)
    ca.issue()
    new_root = root_digest(ca)
    ca.ok("bundle", "--out", tmp_path / "after", signed=True)
    for host in hosts:
        manifest = json.loads((tmp_path / "after" / host / MANIFEST).read_text())
        assert manifest["format"] == 3 and manifest["ca_sha256"] == new_root
        leaves = [f for f in manifest["files"] if f["role"] == "leaf"]
        assert leaves and all(f["root"] == new_root for f in leaves), leaves
        before = json.loads((tmp_path / "before" / host / MANIFEST).read_text())
        assert all(f["root"] == old_root for f in before["files"] if f["role"] == "leaf")

    doc = plan(ca, tmp_path / "after")
    trust, leaves = steps(doc, "trust"), steps(doc, "leaves")
    # every host, in name order, trust first; then every host's leaves
    assert [s["host"] for s in trust] == hosts and [s["host"] for s in leaves] == hosts
    for step in trust:
        roles = {f["path"]: f["role"] for f in json.loads((tmp_path / "after" / step["host"] / MANIFEST).read_text())["files"]}
        copied = [p for p in step["copy"] if p in roles]
        assert copied and all(roles[p] == "trust" for p in copied), step["copy"]
        assert step["run"][0]["argv"] == ["update-ca-certificates"] and not step["record"]
        # the services restarted on trust are checked before the next host
        restarted = {r["service"] for r in step["run"]} - {"trust"}
        assert restarted <= {c["service"] for c in step["health"]}, step
    for step in leaves:
        roles = {f["path"]: f["role"] for f in json.loads((tmp_path / "after" / step["host"] / MANIFEST).read_text())["files"]}
        assert "trust" not in {roles.get(p) for p in step["copy"]} and "leaf" in {roles.get(p) for p in step["copy"]}
        assert step["copy"][-1] == MANIFEST and step["record"]
        for command in step["run"]:
            assert all(isinstance(word, str) for word in command["argv"]) and command["why"]
    # etcd rereads its certificate per handshake: its leaves step runs nothing for it (the
    # restart for its new trust came in phase trust), yet checks it serves the new server.pem.
    etcd = [s for s in leaves if any(p.startswith("etc/etcd/pki/server") for p in s["copy"])]
    assert etcd and all(not any(r["service"] == "etcd" for r in s["run"]) for s in etcd), etcd
    assert all(any(c["kind"] == "etcd" and c["port"] == 2379 and c["leaf"] == "/etc/etcd/pki/server.pem"
                   for c in s["health"]) for s in etcd), etcd
    assert all(any(r["service"] == "etcd" and r["argv"] == ["systemctl", "restart", "etcd"] for r in s["run"])
               for s in trust if any("etcd" in p for p in s["copy"])), trust

    # the same plan for people: phases in order
    text = h.assert_ok(ca.run("rollout-plan", "--bundles", tmp_path / "after")).stdout
    assert text.index("phase trust:") < text.index("phase leaves:"), text


def test_site_operations_replace_the_defaults_and_bad_ones_are_refused(chpki_bin, tmp_path):
    ca = make_ca(chpki_bin, tmp_path / "ca")
    ca.ok("bundle", "--out", tmp_path / "b", signed=True)
    ops = tmp_path / "ops.yml"
    ops.write_text("trust:\n  on_trust: [[update-ca-trust, extract]]\n")
    doc = plan(ca, tmp_path / "b", "--operations", ops)
    assert all(s["run"][0]["argv"] == ["update-ca-trust", "extract"] for s in steps(doc, "trust")), steps(doc, "trust")
    for text, field in [("etcd:\n  on_leaf: \"systemctl restart etcd; rm -rf /\"\n", "etcd.on_leaf"),
                        ("etcd:\n  restart: [[x]]\n", "etcd.restart"),
                        ("etcd:\n  health: [{kind: tls, port: 2379, cafile: etc/x}]\n", "etcd.health[0].cafile")]:
        ops.write_text(text)
        res = ca.run("rollout-plan", "--bundles", tmp_path / "b", "--operations", ops)
        assert res.returncode == 2 and not res.stdout, h.describe(res)
        line = h.error_line(res)
        assert f"{ops}: {field}:" in line, line
