"""`chpki bundle-backend` / `chpki install-backend`: the Chef Backend secrets carrier (reference 001
Steps 2-3, SPEC §5). The secrets file is made here as `chef-backend-ctl create-cluster` writes it;
envelopes are opened and made with the openssl CLI; every refusal exits 2 with one line and
writes nothing."""

from __future__ import annotations

import json
import os
import secrets as pysecrets
import stat
from pathlib import Path

import pytest

import frontend_helpers as fh
from frontend_helpers import frontend, keys  # noqa: F401  (shared fixtures)
import helpers as h
import tar_craft as tc
from test_frontend_hostile import state

SECRETS = "etc/chef-backend/chef-backend-secrets.json"


def backend_secrets() -> dict:
    """As create-cluster writes it: flat groups of random hex values."""
    return {
        "postgresql": {"db_superuser_password": pysecrets.token_hex(50), "replication_password": pysecrets.token_hex(50)},
        "etcd": {"initial_cluster_token": pysecrets.token_hex(50)},
        "elasticsearch": {"cluster_name": "ChefBackend-" + pysecrets.token_hex(4)},
    }


def make_backend(root: Path, doc=None, text: str | None = None) -> Path:
    path = root / SECRETS
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o755)
    path.write_text(text if text is not None else json.dumps(doc if doc is not None else backend_secrets(), indent=2) + "\n")
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def pass_file(tmp_path) -> Path:
    return h.write_secret(tmp_path / "pass", fh.BUNDLE_PASSPHRASE + "\n")


@pytest.fixture
def leader(tmp_path) -> Path:
    root = tmp_path / "be1"
    make_backend(root)
    return root


@pytest.fixture
def joiner(tmp_path):
    """The joining backend's root, and a sibling nothing may touch."""
    root = tmp_path / "be2"
    (root / "etc").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    return root, outside


def assert_no_secret(res, doc: dict):
    text = res.stdout + res.stderr
    for group in doc.values():
        for value in group.values():
            assert value not in text, "chpki printed a backend secret"


def test_round_trip_plain(run, leader, joiner, tmp_path):
    root, outside = joiner
    doc = json.loads((leader / SECRETS).read_text())
    out = tmp_path / "backend.tgz"
    res = run("bundle-backend", "--from", leader, "--out", out)
    h.assert_ok(res)
    assert_no_secret(res, doc)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    manifest = json.loads(fh.tar_read(out, "MANIFEST.json"))
    assert manifest["format"] == "chpki-backend-bundle"
    assert [(f["path"], f["mode"], f["owner"]) for f in manifest["files"]] == [(SECRETS, "0600", "root")]

    res = run("install-backend", out, "--root", root)
    h.assert_ok(res)
    assert_no_secret(res, doc)
    installed = root / SECRETS
    assert installed.read_bytes() == (leader / SECRETS).read_bytes()
    st = os.lstat(installed)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(root / "etc/chef-backend").st_mode) == 0o755
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (0, 0)
    # The next step and the reminder of reference 001 Step 3.5.
    assert "chef-backend-ctl join-cluster" in res.stdout and f"-s /{SECRETS}" in res.stdout
    assert f"delete {out}" in res.stdout.lower()
    assert sorted(os.listdir(outside)) == []

    # A second run changes nothing.
    before = state(root)
    res = run("install-backend", out, "--root", root, "--json")
    h.assert_ok(res)
    assert [s["action"] for s in json.loads(res.stdout)["steps"]] == ["unchanged"]
    assert state(root) == before


def test_round_trip_encrypted_opens_with_openssl(run, leader, joiner, tmp_path, pass_file):
    root, _ = joiner
    out = tmp_path / "backend.cms"
    h.assert_ok(run("bundle-backend", "--from", leader, "--out", out, "--encrypt", "--passphrase-file", pass_file))
    assert out.read_text().startswith("-----BEGIN CMS-----")
    plain = tmp_path / "opened.tgz"
    h.openssl("cms", "-decrypt", "-binary", "-inform", "PEM", "-in", out, "-out", plain,
              "-pwri_password", fh.BUNDLE_PASSPHRASE, check=True)
    assert fh.tar_read(plain, SECRETS) == (leader / SECRETS).read_bytes()
    h.assert_ok(run("install-backend", out, "--root", root, "--passphrase-file", pass_file))
    assert (root / SECRETS).read_bytes() == (leader / SECRETS).read_bytes()


def test_veil_format_backend_secrets_accepted(run, tmp_path, joiner):
    """A veil-written file (as newer chef-backend releases may write) holding the same groups."""
    leader = tmp_path / "veil-leader"
    make_backend(leader, doc=fh.veil_v2_document(backend_secrets()))
    out = tmp_path / "b.tgz"
    h.assert_ok(run("bundle-backend", "--from", leader, "--out", out))
    h.assert_ok(run("install-backend", out, "--root", joiner[0]))


# ---------------------------------------------------------------------------------------------
# bundle-backend refusals: exit 2, one line naming the file (and field), no bundle


def without(group: str, name: str | None):
    doc = backend_secrets()
    if name is None:
        del doc[group]
    else:
        del doc[group][name]
    return json.dumps(doc)


@pytest.mark.parametrize("text, mentions", [
    ("{ not json", ("not valid JSON",)),
    ("", ("not valid JSON",)),
    ('["postgresql"]', ("not a JSON object",)),
    (without("postgresql", "replication_password"), ("postgresql.replication_password", "missing")),
    (without("etcd", None), ("no etcd group",)),
    (without("elasticsearch", "cluster_name"), ("elasticsearch.cluster_name",)),
    (json.dumps({**backend_secrets(), "etcd": {"initial_cluster_token": 42}}), ("etcd.initial_cluster_token", "not a string")),
    (json.dumps({**backend_secrets(), "etcd": {"initial_cluster_token": ""}}), ("etcd.initial_cluster_token", "empty")),
    (json.dumps({"postgresql": "secret"}), ("postgresql",)),
])
def test_bundle_backend_refuses_bad_secrets(run, tmp_path, text, mentions):
    leader = tmp_path / "bad"
    make_backend(leader, text=text)
    out = tmp_path / "out" / "b.tgz"
    out.parent.mkdir()
    res = run("bundle-backend", "--from", leader, "--out", out)
    h.assert_refused(res, "chef-backend-secrets.json", *mentions, error="secrets.invalid")
    assert list(out.parent.iterdir()) == []


def test_bundle_backend_refuses_a_missing_file(run, tmp_path):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "b.tgz"
    h.assert_refused(run("bundle-backend", "--from", tmp_path / "empty", "--out", out), "chef-backend-secrets.json",
                     "create-cluster", error="file.missing")
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# install-backend refusals: exit 2, one line, the root unchanged


def refused_install(run, bundle_file, joiner, *mentions, args=(), env=None, error=None):
    root, outside = joiner
    before, before_outside = state(root), state(outside)
    res = run("install-backend", bundle_file, "--root", root, *args, env=env)
    line = h.assert_refused(res, *mentions, error=error)
    assert state(root) == before and state(outside) == before_outside
    return line


@pytest.fixture
def plain(run, leader, tmp_path) -> Path:
    out = tmp_path / "plain.tgz"
    h.assert_ok(run("bundle-backend", "--from", leader, "--out", out))
    return out


def test_wrong_passphrase(run, leader, joiner, tmp_path, pass_file):
    out = tmp_path / "b.cms"
    h.assert_ok(run("bundle-backend", "--from", leader, "--out", out, "--encrypt", "--passphrase-file", pass_file))
    wrong = h.write_secret(tmp_path / "wrong", "not the passphrase at all\n")
    refused_install(run, out, joiner, "b.cms", "passphrase", args=("--passphrase-file", wrong), error="secrets.decrypt-failed")


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.95])
def test_truncated_file(run, plain, joiner, tmp_path, keep):
    data = plain.read_bytes()
    bad = tmp_path / "cut.tgz"
    bad.write_bytes(data[: int(len(data) * keep)])
    refused_install(run, bad, joiner, "cut.tgz", error="archive.truncated")


def test_truncated_envelope(run, leader, joiner, tmp_path, pass_file):
    out = tmp_path / "b.cms"
    h.assert_ok(run("bundle-backend", "--from", leader, "--out", out, "--encrypt", "--passphrase-file", pass_file))
    text = out.read_bytes()
    bad = tmp_path / "cut.cms"
    bad.write_bytes(text[: len(text) // 2])
    refused_install(run, bad, joiner, "cut.cms", args=("--passphrase-file", pass_file), error="secrets.not-a-bundle")


@pytest.mark.parametrize("text, mentions", [
    ("{ not json", ("not valid JSON",)),
    (without("postgresql", "db_superuser_password"), ("postgresql.db_superuser_password",)),
])
def test_crafted_bundle_with_bad_secrets(run, plain, joiner, tmp_path, text, mentions):
    """A consistent hand-made bundle (checksums right) whose secrets a joining node cannot use."""
    b = tc.Bundle.parse(plain.read_bytes())
    b.set_data(SECRETS, text.encode())
    bad = tmp_path / "crafted.tgz"
    bad.write_bytes(b.tgz())
    refused_install(run, bad, joiner, "crafted.tgz", *mentions, error="secrets.invalid")


def test_crafted_bundle_with_a_loose_mode(run, plain, joiner, tmp_path):
    b = tc.Bundle.parse(plain.read_bytes())
    b.set_mode(SECRETS, 0o644)
    bad = tmp_path / "crafted.tgz"
    bad.write_bytes(b.tgz())
    refused_install(run, bad, joiner, SECRETS, "0644", "0600", error="secrets.invalid")


def test_frontend_bundle_is_not_a_backend_bundle(run, frontend, joiner, tmp_path):
    fe = frontend()
    out = tmp_path / "fe.tgz"
    h.assert_ok(run("bundle-frontend", "--from", fe.root, "--out", out))
    refused_install(run, out, joiner, "fe.tgz", "install-frontend", error="secrets.wrong-kind")


def test_backend_bundle_is_not_a_frontend_bundle(run, plain, joiner):
    root, _ = joiner
    before = state(root)
    h.assert_refused(run("install-frontend", plain, "--root", root), "install-backend", error="secrets.wrong-kind")
    assert state(root) == before


def test_symlinked_chef_backend_directory(run, plain, joiner):
    root, outside = joiner
    os.symlink(outside, root / "etc" / "chef-backend")
    refused_install(run, plain, joiner, "etc/chef-backend", "symlink", error="install.unsafe-path")
    assert os.listdir(outside) == []


def test_existing_different_file_needs_force(run, plain, leader, joiner):
    root, _ = joiner
    make_backend(root)  # another cluster's secrets
    old = (root / SECRETS).read_bytes()
    refused_install(run, plain, joiner, SECRETS, "--force", error="install.conflict")
    res = run("install-backend", plain, "--root", root, "--force", env={"CHPKI_NOW": "2027-03-04T05:06:07Z"})
    h.assert_ok(res)
    assert (root / SECRETS).read_bytes() == (leader / SECRETS).read_bytes()
    backup = root / (SECRETS + ".chpki-backup-20270304T050607Z")
    assert backup.read_bytes() == old and stat.S_IMODE(os.stat(backup).st_mode) == 0o600


def test_dry_run_writes_nothing(run, plain, joiner):
    root, _ = joiner
    before = state(root)
    res = run("install-backend", plain, "--root", root, "--dry-run")
    h.assert_ok(res)
    assert "would create" in res.stdout and "would mkdir" in res.stdout
    assert state(root) == before
