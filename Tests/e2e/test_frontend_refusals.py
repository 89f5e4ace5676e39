"""Every refusal of `bundle-frontend` and `install-frontend` (SPEC §1, §5): exit 2, one clear line
on stderr per problem, never a secret in it, and nothing written at the destination."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import frontend_helpers as fh
from frontend_helpers import frontend, keys  # noqa: F401  (shared fixtures)
import helpers as h



def refused_bundle(run, fe: fh.Frontend, tmp_path: Path, *mentions, args=(), error="frontend.invalid"):
    """bundle-frontend must refuse with one line naming `mentions`, and write no archive."""
    out = tmp_path / "out" / "bundle.tgz"
    out.parent.mkdir(exist_ok=True)
    res = run("bundle-frontend", "--from", fe.root, "--out", out, *args)
    line = h.assert_refused(res, *mentions, error=error)
    assert list(out.parent.iterdir()) == [], "a refused bundle-frontend wrote something"
    assert res.stdout == ""
    for value in fe.secret_values():
        for part in value.splitlines():
            if len(part) >= 16 and "-----" not in part:
                assert part not in res.stderr, "a secret value appeared in an error"
    return line


# ---------------------------------------------------------------------------------------------
# bundle-frontend: the checks of SPEC §5


def test_pivotal_key_not_the_superuser_key(run, frontend, tmp_path, keys):
    fe = frontend()
    fh.write(fe.path("pivotal_pem"), fh.pkcs1_pem(keys[2]), 0o600)
    line = refused_bundle(run, fe, tmp_path, "pivotal.pem", "superuser_key", error="frontend.invalid")
    # Named by fingerprints of the two public halves, never by the keys.
    assert fh.spki_sha256(keys[2]) in line and fh.spki_sha256(keys[0]) in line
    assert "401" in line


def test_webui_public_key_not_the_private_key(run, frontend, tmp_path, keys):
    fe = frontend()
    fh.write(fe.path("webui_pub"), fh.public_pem(keys[2]), 0o644)
    line = refused_bundle(run, fe, tmp_path, "webui_pub.pem", "webui_priv.pem", error="frontend.invalid")
    assert "public half" in line
    assert fh.spki_sha256(keys[2]) in line and fh.spki_sha256(keys[1]) in line


def test_webui_pair_not_the_secrets_webui_key(run, frontend, tmp_path, keys):
    """webui_priv.pem and webui_pub.pem agree with each other, but not with chef-server.webui_key."""
    fe = frontend()
    fh.write(fe.path("webui_priv"), fh.pkcs1_pem(keys[2]), 0o600)
    fh.write(fe.path("webui_pub"), fh.public_pem(keys[2]), 0o644)
    out = tmp_path / "b.tgz"
    res = run("bundle-frontend", "--from", fe.root, "--out", out)
    assert res.returncode == 2, h.describe(res)
    assert "chef-server.webui_key" in res.stderr and not out.exists()
    assert all(line.startswith("chpki: error:") for line in res.stderr.splitlines())
    assert h.error_object(res)["code"] == "frontend.invalid"


def test_public_key_file_holding_a_private_key(run, frontend, tmp_path, keys):
    fe = frontend()
    fh.write(fe.path("webui_pub"), fh.pkcs1_pem(keys[1]), 0o644)
    refused_bundle(run, fe, tmp_path, "webui_pub.pem", "private key", error="frontend.invalid")


@pytest.mark.parametrize("content, why", [
    ("", "empty"),
    ("garbage\n", "not JSON"),
    ('{"major":1}', "no minor"),
    ('{"major":1,"minor":"52"}', "minor a string"),
    ('{"major":1,"minor":52.5}', "minor not an integer"),
    ('{"major":1,"minor":52,"extra":1}', "extra key"),
    ('{"major":1,"minor":52}\n{"major":1,"minor":53}\n', "two objects"),
    ('[1, 52]', "an array"),
    ('{"major":0,"minor":0}', "level 0.0"),
])
def test_bad_migration_level(run, frontend, tmp_path, content, why):
    fe = frontend()
    fe.path("migration_level").write_text(content)
    line = refused_bundle(run, fe, tmp_path, "migration-level", error="frontend.invalid")
    assert "migration" in line.lower()


def test_missing_migration_level(run, frontend, tmp_path):
    fe = frontend()
    fe.path("migration_level").unlink()
    refused_bundle(run, fe, tmp_path, "migration-level", "missing", error="frontend.invalid")


def test_missing_bootstrapped_marker(run, frontend, tmp_path):
    fe = frontend()
    fe.path("bootstrapped").unlink()
    refused_bundle(run, fe, tmp_path, "bootstrapped", "missing", error="frontend.invalid")


@pytest.mark.parametrize("role", ["rb", "dark_launch", "pivotal_pem", "pivotal_rb", "private_chef_sh", "secrets",
                                  "webui_priv", "webui_pub"])
def test_missing_file(run, frontend, tmp_path, role):
    fe = frontend()
    fe.path(role).unlink()
    refused_bundle(run, fe, tmp_path, Path(fe.paths[role]).name, "missing", error="frontend.invalid")


def test_every_problem_is_reported_one_line_each(run, frontend, tmp_path, keys):
    fe = frontend()
    fe.path("bootstrapped").unlink()
    fe.path("migration_level").write_text("nope")
    fh.write(fe.path("pivotal_pem"), fh.pkcs1_pem(keys[2]), 0o600)
    out = tmp_path / "b.tgz"
    res = run("bundle-frontend", "--from", fe.root, "--out", out)
    assert res.returncode == 2
    lines = res.stderr.splitlines()
    assert len(lines) == 3, h.describe(res)
    assert all(line.startswith("chpki: error: ") for line in lines)
    joined = res.stderr
    assert "bootstrapped" in joined and "migration-level" in joined and "pivotal.pem" in joined
    error = h.error_object(res)
    assert error["code"] == "frontend.invalid" and len(error["problems"]) == 3, error
    assert not out.exists()


def test_malformed_dark_launch_json(run, frontend, tmp_path):
    fe = frontend()
    fe.path("dark_launch").write_text('{"reporting": true,,}')
    refused_bundle(run, fe, tmp_path, "dark_launch_features.json", "JSON", error="frontend.invalid")


def test_malformed_secrets_json(run, frontend, tmp_path):
    fe = frontend()
    text = fe.path("secrets").read_text()
    fe.path("secrets").write_text(text[: len(text) // 2])
    refused_bundle(run, fe, tmp_path, "private-cinc-secrets.json", "JSON", error="frontend.invalid")


def test_secrets_that_do_not_decrypt(run, frontend, tmp_path):
    fe = frontend()
    doc = fe.secrets_doc
    doc["veil"]["cipher"]["key"] = fh.base64.b64encode(os.urandom(32)).decode()
    fe.write_secrets(doc=doc)
    refused_bundle(run, fe, tmp_path, "private-cinc-secrets.json", "veil.credentials", "decrypt", error="frontend.invalid")


def test_secrets_cipher_key_of_the_wrong_length(run, frontend, tmp_path):
    fe = frontend()
    doc = fe.secrets_doc
    doc["veil"]["cipher"]["key"] = fh.base64.b64encode(os.urandom(16)).decode()
    fe.write_secrets(doc=doc)
    refused_bundle(run, fe, tmp_path, "veil.cipher.key", "32", error="frontend.invalid")


def test_source_file_is_a_directory(run, frontend, tmp_path):
    fe = frontend()
    fe.path("bootstrapped").unlink()
    fe.path("bootstrapped").mkdir()
    refused_bundle(run, fe, tmp_path, "bootstrapped", "not a regular file", error="frontend.invalid")


def test_unreadable_source_file(chpki, frontend, tmp_path):
    """chmod 000 stops no root process with CAP_DAC_OVERRIDE: run chpki without it (setpriv), so
    the kernel refuses the read as it would for an unprivileged operator."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to drop CAP_DAC_OVERRIDE")
    fe = frontend()
    os.chmod(fe.path("secrets"), 0o000)
    out = tmp_path / "out"
    out.mkdir()
    argv = [str(chpki.path), "bundle-frontend", "--from", str(fe.root), "--out", str(out / "b.tgz"), "--json"]
    if os.geteuid() == 0:
        argv = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                "--inh-caps=-dac_override,-dac_read_search", *argv]
        probe = subprocess.run([*argv[:3], "cat", str(fe.path("secrets"))], capture_output=True)
        if probe.returncode == 0:
            pytest.skip("cannot drop CAP_DAC_OVERRIDE here (the probe could still read a mode-000 file)")
    from conftest import clean_env

    res = subprocess.run(argv, capture_output=True, text=True, env=clean_env(), stdin=subprocess.DEVNULL,
                         cwd=chpki.cwd, timeout=120)
    h.assert_refused(res, "private-cinc-secrets.json", "permission denied", error="frontend.invalid")
    assert list(out.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# install-frontend: a damaged or altered bundle, a wrong passphrase


@pytest.fixture
def plain_bundle(run, frontend, tmp_path):
    fe = frontend()
    out = tmp_path / "good.tgz"
    h.assert_ok(run("bundle-frontend", "--from", fe.root, "--out", out))
    return fe, out


@pytest.fixture
def empty_root(tmp_path):
    b = tmp_path / "B"
    b.mkdir()
    return b


def refused_install(run, snapshot, bundle_file, root, *mentions, args=(), env=None, error=None):
    before = snapshot(root)
    res = run("install-frontend", bundle_file, "--root", root, *args, env=env)
    line = h.assert_refused(res, *mentions, error=error)
    assert snapshot(root) == before, "a refused install wrote at the destination"
    return line


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_truncated_archive(run, snapshot, plain_bundle, empty_root, tmp_path, keep):
    _, good = plain_bundle
    data = good.read_bytes()
    bad = tmp_path / "truncated.tgz"
    bad.write_bytes(data[: int(len(data) * keep)])
    refused_install(run, snapshot, bad, empty_root, "truncated.tgz", error="archive.truncated")


def test_truncated_tar_inside_a_complete_gzip(run, snapshot, plain_bundle, empty_root, tmp_path):
    _, good = plain_bundle
    raw = gzip.decompress(good.read_bytes())
    bad = tmp_path / "short-tar.tgz"
    bad.write_bytes(gzip.compress(raw[: len(raw) // 2]))
    refused_install(run, snapshot, bad, empty_root, "short-tar.tgz", error="archive.truncated")


def test_manifest_checksum_mismatch(run, snapshot, plain_bundle, empty_root, tmp_path, keys):
    fe, good = plain_bundle
    bad = tmp_path / "altered.tgz"
    target = fe.paths["pivotal_pem"]
    fh.rewrite_bundle(good, bad, lambda m, d: fh.pkcs1_pem(keys[2]).encode() if m.name == target else d)
    refused_install(run, snapshot, bad, empty_root, "pivotal.pem", "SHA-256", "MANIFEST.json", error="secrets.invalid")


def test_member_not_in_the_manifest(run, snapshot, plain_bundle, empty_root, tmp_path):
    fe, good = plain_bundle
    bad = tmp_path / "extra.tgz"

    def drop(m, d):
        if m.name == "MANIFEST.json":
            manifest = json.loads(d)
            manifest["files"] = [f for f in manifest["files"] if not f["path"].endswith("pivotal.rb")]
            return json.dumps(manifest).encode()
        return d

    fh.rewrite_bundle(good, bad, drop)
    line = refused_install(run, snapshot, bad, empty_root, "pivotal.rb", error="secrets.invalid")
    assert "not in MANIFEST.json" in line or "missing" in line


def test_manifest_path_outside_the_bundle_files(run, snapshot, plain_bundle, empty_root, tmp_path):
    """A hand-made manifest cannot make install write anywhere else (e.g. etc/passwd)."""
    fe, good = plain_bundle
    bad = tmp_path / "evil.tgz"

    def evil(m, d):
        if m.name == "MANIFEST.json":
            manifest = json.loads(d)
            for f in manifest["files"]:
                if f["path"].endswith("pivotal.rb"):
                    f["path"] = "etc/passwd"
            return json.dumps(manifest).encode()
        return d

    fh.rewrite_bundle(good, bad, evil)
    before = snapshot(empty_root)
    res = run("install-frontend", bad, "--root", empty_root)
    assert res.returncode == 2, h.describe(res)
    assert "etc/passwd" in res.stderr
    assert snapshot(empty_root) == before


def test_not_a_bundle(run, snapshot, empty_root, tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello, not a bundle\n")
    refused_install(run, snapshot, junk, empty_root, "junk.bin", "not a frontend bundle", error="secrets.not-a-bundle")
    refused_install(run, snapshot, tmp_path / "nope.tgz", empty_root, "nope.tgz", "no such file", error="file.missing")


def test_wrong_passphrase(run, snapshot, frontend, empty_root, tmp_path):
    fe = frontend()
    sealed = tmp_path / "sealed.cms"
    h.assert_ok(run("bundle-frontend", "--from", fe.root, "--out", sealed, "--encrypt",
                    env={"CHPKI_BUNDLE_PASSPHRASE": fh.BUNDLE_PASSPHRASE}))
    wrong = h.write_secret(tmp_path / "wrong", "not the bundle passphrase\n")
    line = refused_install(run, snapshot, sealed, empty_root, "sealed.cms", "passphrase", args=("--passphrase-file", wrong), error="secrets.decrypt-failed")
    assert "not the bundle passphrase" not in line
    # Without any passphrase and no terminal: refused, naming where to put one.
    refused_install(run, snapshot, sealed, empty_root, "CHPKI_BUNDLE_PASSPHRASE", error="passphrase.missing")


def test_damaged_envelope(run, snapshot, frontend, empty_root, tmp_path):
    fe = frontend()
    sealed = tmp_path / "sealed.cms"
    h.assert_ok(run("bundle-frontend", "--from", fe.root, "--out", sealed, "--encrypt", "--format", "der",
                    env={"CHPKI_BUNDLE_PASSPHRASE": fh.BUNDLE_PASSPHRASE}))
    data = bytearray(sealed.read_bytes())
    data[-40] ^= 0xFF  # inside the encrypted content
    bad = tmp_path / "damaged.cms"
    bad.write_bytes(bytes(data))
    refused_install(run, snapshot, bad, empty_root, "damaged.cms",
                    env={"CHPKI_BUNDLE_PASSPHRASE": fh.BUNDLE_PASSPHRASE},
                    # CBC without a MAC: the damage shows in the padding or in the gzip stream inside.
                    error=("secrets.decrypt-failed", "archive.corrupt", "archive.truncated"))


def test_existing_directory_in_the_way(run, snapshot, plain_bundle, tmp_path):
    fe, good = plain_bundle
    root = tmp_path / "R"
    (root / fe.paths["secrets"]).mkdir(parents=True)
    refused_install(run, snapshot, good, root, "private-cinc-secrets.json", "not a regular file", args=("--force",), error="install.conflict")


def test_bundle_and_compare_option_errors(run, frontend, tmp_path):
    fe = frontend()
    h.assert_refused(run("bundle-frontend", "--out", tmp_path / "x"), "--from", error="usage.missing-option")
    h.assert_refused(run("bundle-frontend", "--from", fe.root), "--out", error="usage.missing-option")
    h.assert_refused(run("bundle-frontend", "--compare", fe.root), "--compare", error="usage.invalid-value")
    h.assert_refused(run("bundle-frontend", "--compare", fe.root, fe.root, "--out", tmp_path / "x"), "--out", error="usage.conflicting-options")
    h.assert_refused(run("bundle-frontend", "--from", tmp_path / "nowhere", "--out", tmp_path / "x"), "nowhere", error="file.missing")
    assert not (tmp_path / "x").exists()
