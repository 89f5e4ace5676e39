"""`chpki bundle-frontend` and `chpki install-frontend`: SPEC §5, the frontend secret bundle.

Each test builds realistic frontend roots itself (frontend_helpers: real RSA-2048 keys, a veil v2
secrets file encrypted as Veil::Cipher::V2 does, the files with their real modes) and checks what
chpki writes with tar, Python's tarfile/hashlib/cryptography and the openssl CLI.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

import frontend_helpers as fh
from frontend_helpers import frontend, keys  # noqa: F401  (shared fixtures)
import helpers as h



@pytest.fixture
def bundle_pass(tmp_path) -> Path:
    return h.write_secret(tmp_path / "bundle-pass", fh.BUNDLE_PASSPHRASE + "\n")


def bundle(run, src: Path, out: Path, *args, env=None):
    res = run("bundle-frontend", "--from", src, "--out", out, *args, env=env)
    h.assert_ok(res)
    assert out.is_file()
    return res


def assert_no_secret(res, fe: fh.Frontend):
    """No credential value and no private key appears in what chpki printed."""
    text = res.stdout + res.stderr
    for value in fe.secret_values():
        for line in value.splitlines():
            if len(line) >= 16 and "-----" not in line:
                assert line not in text, "chpki printed a secret value" + h.describe(res)
    assert "PRIVATE KEY" not in text


# ---------------------------------------------------------------------------------------------
# round trip


def test_round_trip_into_an_empty_root(run, frontend, tmp_path):
    a = frontend("A")
    out = tmp_path / "frontend.tar.gz"
    res = bundle(run, a.root, out)
    assert_no_secret(res, a)
    assert h.mode_of(out) == 0o600, "the bundle holds every secret of the frontend"

    b = tmp_path / "B"
    b.mkdir()
    res = run("install-frontend", out, "--root", b)
    h.assert_ok(res)
    assert_no_secret(res, a)

    # Every file of A is in B, byte for byte, with the same mode; and nothing else is.
    assert fh.tree(b) == fh.tree(a.root)
    for role, rel in a.paths.items():
        assert h.mode_of(b / rel) == fh.MODES[role], rel
        st = os.stat(b / rel)
        assert (st.st_uid, st.st_gid) == (0, 0)
    # The directories the new frontend lacked were created (reference 001: mkdir -p .../upgrades/).
    assert (b / "var/opt/cinc-project/upgrades").is_dir()
    assert h.mode_of(b / "var/opt/cinc-project/upgrades") == 0o755
    assert h.mode_of(b / "etc/cinc-project") == 0o755

    # The two frontends agree.
    res = run("bundle-frontend", "--compare", a.root, b)
    h.assert_ok(res)
    assert "agree" in res.stdout
    assert_no_secret(res, a)


def test_archive_is_a_tar_gz_with_a_checked_manifest(run, frontend, tmp_path):
    a = frontend("A")
    out = tmp_path / "frontend.tar.gz"
    bundle(run, a.root, out)

    # GNU tar reads it, with owners and modes.
    listing = subprocess.run(["tar", "-tvzf", out], capture_output=True, text=True, check=True).stdout
    assert "-rw------- root/root" in listing and "etc/cinc-project/private-cinc-secrets.json" in listing

    members = fh.tar_members(out)
    manifest = json.loads(fh.tar_read(out, "MANIFEST.json"))
    assert manifest["flavor"] == "cinc"
    assert manifest["migration_level"] == "1.52"
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == set(a.paths.values()), "the bundle holds exactly the ten files of SPEC §5"
    for role, rel in a.paths.items():
        entry = listed[rel]
        data = (a.root / rel).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["size"] == len(data)
        assert int(entry["mode"], 8) == fh.MODES[role]
        assert (entry["owner"], entry["group"]) == ("root", "root")
        assert members[rel].mode == fh.MODES[role]
        assert (members[rel].uname, members[rel].gname) == ("root", "root")
        assert fh.tar_read(out, rel) == data
    dirs = {d["path"] for d in manifest["directories"]}
    assert dirs == {"etc/cinc-project", "var/opt/cinc-project", "var/opt/cinc-project/upgrades"}

    # `tar -xzpf` restores the same tree too.
    x = tmp_path / "x"
    x.mkdir()
    subprocess.run(["tar", "-xzpf", out, "-C", x], check=True)
    (x / "MANIFEST.json").unlink()
    assert fh.tree(x) == fh.tree(a.root)


def test_same_frontend_gives_the_same_bytes(run, frontend, tmp_path):
    a = frontend("A")
    bundle(run, a.root, tmp_path / "one.tgz")
    bundle(run, a.root, tmp_path / "two.tgz")
    assert (tmp_path / "one.tgz").read_bytes() == (tmp_path / "two.tgz").read_bytes()


def test_json_report_names_keys_by_fingerprint(run, frontend, tmp_path):
    a = frontend("A")
    res = bundle(run, a.root, tmp_path / "b.tgz", "--json")
    report = h.parse_json_output(res)
    assert report["flavor"] == "cinc" and report["encrypted"] is None
    assert report["migration_level"] == "1.52"
    assert report["credentials"] == sum(len(v) for v in a.credentials.values())
    fps = report["key_fingerprints"]
    assert fps["pivotal.pem"] == fps["chef-server.superuser_key"] == fh.spki_sha256(a.pivotal_key)
    assert fps["webui_pub.pem"] == fps["webui_priv.pem"] == fps["chef-server.webui_key"] == fh.spki_sha256(a.webui_key)
    assert_no_secret(res, a)


def test_chef_flavour_round_trip(run, frontend, tmp_path):
    a = frontend("A", flavor="chef")
    out = tmp_path / "chef.tgz"
    res = bundle(run, a.root, out, "--flavor", "chef")
    assert "chef-server-ctl reconfigure" in res.stdout
    manifest = json.loads(fh.tar_read(out, "MANIFEST.json"))
    assert manifest["flavor"] == "chef"
    assert {f["path"] for f in manifest["files"]} == set(a.paths.values())
    assert all(p.startswith(("etc/opscode/", "var/opt/opscode/")) for p in a.paths.values())

    b = tmp_path / "B"
    b.mkdir()
    h.assert_ok(run("install-frontend", out, "--root", b))
    assert fh.tree(b) == fh.tree(a.root)
    assert (b / "var/opt/opscode/upgrades/migration-level").read_text() == '{"major":1,"minor":52}'
    h.assert_ok(run("bundle-frontend", "--flavor", "chef", "--compare", a.root, b))


def test_chef_flavour_without_key_files_when_the_secrets_hold_them(run, frontend, tmp_path):
    """Chef ≥ 12.14 keeps pivotal and webui keys in the secrets file (reference 001, Step 6 note)."""
    a = frontend("A", flavor="chef")
    for role in ("pivotal_pem", "webui_priv", "webui_pub", "pivotal_rb", "private_chef_sh", "dark_launch"):
        a.path(role).unlink()
    out = tmp_path / "chef.tgz"
    bundle(run, a.root, out, "--flavor", "chef")
    b = tmp_path / "B"
    b.mkdir()
    h.assert_ok(run("install-frontend", out, "--root", b))
    assert fh.tree(b) == fh.tree(a.root)


def test_wrong_flavour_is_named(run, frontend, tmp_path):
    a = frontend("A", flavor="chef")
    out = tmp_path / "b.tgz"
    res = run("bundle-frontend", "--from", a.root, "--out", out)
    h.assert_refused(res, "etc/cinc-project", "--flavor chef", error="frontend.invalid")
    assert not out.exists()


def test_legacy_flat_secrets_file_is_accepted(run, frontend, tmp_path):
    a = frontend("A")
    a.write_secrets(doc=a.credentials)  # {group: {name: value}}
    out = tmp_path / "b.tgz"
    res = bundle(run, a.root, out, "--json")
    report = h.parse_json_output(res)
    assert report["secrets_format"] == "legacy flat"
    assert report["key_fingerprints"]["chef-server.superuser_key"] == fh.spki_sha256(a.pivotal_key)


def test_loose_secret_modes_are_tightened(run, frontend, tmp_path):
    """A secrets file copied with the wrong mode is a known failure: the bundle carries 0600."""
    a = frontend("A")
    os.chmod(a.path("secrets"), 0o644)
    os.chmod(a.path("rb"), 0o644)
    out = tmp_path / "b.tgz"
    res = bundle(run, a.root, out)
    assert "private-cinc-secrets.json is 0644" in res.stderr
    b = tmp_path / "B"
    b.mkdir()
    h.assert_ok(run("install-frontend", out, "--root", b))
    assert h.mode_of(b / a.paths["secrets"]) == 0o600
    assert h.mode_of(b / a.paths["rb"]) == 0o640


# ---------------------------------------------------------------------------------------------
# --encrypt


def test_encrypted_bundle_opens_with_stock_openssl(run, frontend, tmp_path, bundle_pass):
    a = frontend("A")
    plain = tmp_path / "plain.tgz"
    sealed = tmp_path / "sealed.cms"
    bundle(run, a.root, plain)
    res = bundle(run, a.root, sealed, "--encrypt", "--passphrase-file", bundle_pass)
    assert fh.BUNDLE_PASSPHRASE not in res.stdout + res.stderr
    assert h.mode_of(sealed) == 0o600
    text = sealed.read_text()
    assert text.startswith("-----BEGIN CMS-----")
    assert b"private-cinc-secrets" not in sealed.read_bytes()

    # What it is, according to openssl: EnvelopedData, one password recipient, PBKDF2, AES-256-CBC.
    printed = h.openssl("cms", "-cmsout", "-print", "-inform", "PEM", "-in", sealed, check=True).stdout
    assert "pkcs7-envelopedData" in printed
    assert "d.pwri:" in printed and "PBKDF2" in printed and "id-alg-PWRI-KEK" in printed
    assert "aes-256-cbc" in printed
    assert "d.ktri" not in printed and "d.kekri" not in printed

    # Stock openssl opens it (OpenSSL 3.0's -pwri_password takes the password literally), and
    # the content is the unencrypted bundle, byte for byte.
    out = tmp_path / "opened.tgz"
    h.openssl("cms", "-decrypt", "-binary", "-inform", "PEM", "-in", sealed, "-out", out,
              "-pwri_password", fh.BUNDLE_PASSPHRASE, check=True)
    assert out.read_bytes() == plain.read_bytes()
    bad = h.openssl("cms", "-decrypt", "-binary", "-inform", "PEM", "-in", sealed, "-out", tmp_path / "bad",
                    "-pwri_password", "not the passphrase")
    assert bad.returncode != 0


def test_encrypted_bundle_iteration_count_is_high(run, frontend, tmp_path, bundle_pass):
    from cryptography.hazmat.primitives.serialization import pkcs7  # noqa: F401  (cryptography present)

    a = frontend("A")
    sealed = tmp_path / "sealed.der"
    bundle(run, a.root, sealed, "--encrypt", "--format", "der", "--passphrase-file", bundle_pass)
    parsed = h.openssl("asn1parse", "-inform", "DER", "-in", sealed, check=True).stdout
    # The PBKDF2 parameters: an 8-byte salt, then the iteration count.
    lines = parsed.splitlines()
    i = next(n for n, line in enumerate(lines) if ":PBKDF2" in line)
    iterations = next(int(line.split(":")[-1], 16) for line in lines[i:i + 6] if "INTEGER" in line)
    assert iterations >= 600_000
    out = tmp_path / "opened.tgz"
    h.openssl("cms", "-decrypt", "-binary", "-inform", "DER", "-in", sealed, "-out", out,
              "-pwri_password", fh.BUNDLE_PASSPHRASE, check=True)
    assert json.loads(fh.tar_read(out, "MANIFEST.json"))["flavor"] == "cinc"


def test_encrypted_round_trip_with_file_and_environment(run, frontend, tmp_path, bundle_pass):
    a = frontend("A")
    sealed = tmp_path / "sealed.cms"
    bundle(run, a.root, sealed, "--encrypt", env={"CHPKI_BUNDLE_PASSPHRASE": fh.BUNDLE_PASSPHRASE})
    b = tmp_path / "B"
    b.mkdir()
    res = run("install-frontend", sealed, "--root", b, "--passphrase-file", bundle_pass)
    h.assert_ok(res)
    assert fh.tree(b) == fh.tree(a.root)
    c = tmp_path / "C"
    c.mkdir()
    h.assert_ok(run("install-frontend", sealed, "--root", c, env={"CHPKI_BUNDLE_PASSPHRASE": fh.BUNDLE_PASSPHRASE}))
    assert fh.tree(c) == fh.tree(a.root)


def test_bundle_made_by_openssl_cms_is_installed(run, frontend, tmp_path):
    """The envelope is plain CMS: one written by `openssl cms -encrypt -pwri_password` installs too."""
    a = frontend("A")
    plain = tmp_path / "plain.tgz"
    bundle(run, a.root, plain)
    sealed = tmp_path / "by-openssl.cms"
    h.openssl("cms", "-encrypt", "-binary", "-aes256", "-in", plain, "-outform", "PEM", "-out", sealed,
              "-pwri_password", fh.BUNDLE_PASSPHRASE, check=True)
    b = tmp_path / "B"
    b.mkdir()
    h.assert_ok(run("install-frontend", sealed, "--root", b, env={"CHPKI_BUNDLE_PASSPHRASE": fh.BUNDLE_PASSPHRASE}))
    assert fh.tree(b) == fh.tree(a.root)


def test_encrypt_refuses_a_short_passphrase_and_argv_passphrases(run, frontend, tmp_path):
    a = frontend("A")
    out = tmp_path / "s.cms"
    res = run("bundle-frontend", "--from", a.root, "--out", out, "--encrypt", env={"CHPKI_BUNDLE_PASSPHRASE": "short"})
    h.assert_refused(res, "8 characters", error="passphrase.too-short")
    assert not out.exists()
    res = run("bundle-frontend", "--from", a.root, "--out", out, "--encrypt", "--passphrase", "x" * 20)
    assert res.returncode == 2 and not out.exists()
    # No terminal and no passphrase: refused with the variable to use, never a hang.
    res = run("bundle-frontend", "--from", a.root, "--out", out, "--encrypt")
    h.assert_refused(res, "CHPKI_BUNDLE_PASSPHRASE", error="passphrase.missing")
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# installing over an existing frontend


def test_existing_different_secrets_refused_then_replaced_with_force(run, frontend, tmp_path, keys, snapshot):
    a = frontend("A")
    out = tmp_path / "b.tgz"
    bundle(run, a.root, out)
    # B already has its own, different secrets file (a frontend bootstrapped on its own).
    b = frontend("B", pivotal_key=keys[0], webui_key=keys[1])
    b.write_secrets(creds=fh.make_credentials(keys[0], keys[1]))
    old = b.path("secrets").read_bytes()
    assert old != a.path("secrets").read_bytes()

    before = snapshot(b.root)
    res = run("install-frontend", out, "--root", b.root)
    line = h.assert_refused(res, "private-cinc-secrets.json", "--force", error="install.conflict")
    assert "differs" in line
    assert snapshot(b.root) == before, "a refused install changed the destination"

    # --dry-run --force says what it would do and writes nothing.
    res = run("install-frontend", out, "--root", b.root, "--force", "--dry-run")
    h.assert_ok(res)
    assert "would replace" in res.stdout and "private-cinc-secrets.json" in res.stdout
    assert snapshot(b.root) == before

    res = run("install-frontend", out, "--root", b.root, "--force", env={"CHPKI_NOW": "2027-03-04T05:06:07Z"})
    h.assert_ok(res)
    assert fh.tree(b.root).get(a.paths["secrets"]) == fh.tree(a.root)[a.paths["secrets"]]
    backup = b.path("secrets").with_name("private-cinc-secrets.json.chpki-backup-20270304T050607Z")
    assert backup.read_bytes() == old
    assert h.mode_of(backup) == 0o600
    # Everything else was identical and is unchanged; the two frontends now agree.
    h.assert_ok(run("bundle-frontend", "--compare", a.root, b.root))
    assert sorted(p.name for p in b.path("secrets").parent.iterdir() if "chpki-backup" in p.name) == [backup.name]


def test_install_twice_changes_nothing(run, frontend, tmp_path, snapshot):
    a = frontend("A")
    out = tmp_path / "b.tgz"
    bundle(run, a.root, out)
    b = tmp_path / "B"
    b.mkdir()
    h.assert_ok(run("install-frontend", out, "--root", b))
    before = snapshot(b)
    res = run("install-frontend", out, "--root", b, "--json")
    h.assert_ok(res)
    report = h.parse_json_output(res)
    assert {s["action"] for s in report["steps"]} == {"unchanged"}
    assert snapshot(b) == before


def test_install_restores_a_wrong_mode_without_force(run, frontend, tmp_path):
    a = frontend("A")
    out = tmp_path / "b.tgz"
    bundle(run, a.root, out)
    b = tmp_path / "B"
    b.mkdir()
    h.assert_ok(run("install-frontend", out, "--root", b))
    os.chmod(b / a.paths["secrets"], 0o644)
    res = run("install-frontend", out, "--root", b)
    h.assert_ok(res)
    assert h.mode_of(b / a.paths["secrets"]) == 0o600


def test_dry_run_writes_nothing(run, frontend, tmp_path, snapshot):
    a = frontend("A")
    out = tmp_path / "b.tgz"
    bundle(run, a.root, out)
    b = tmp_path / "B"
    b.mkdir()
    res = run("install-frontend", out, "--root", b, "--dry-run")
    h.assert_ok(res)
    assert snapshot(b) == {".": ("drwxr-xr-x", None)}
    for rel in a.paths.values():
        assert f"{b}/{rel}" in res.stdout
    assert "would create" in res.stdout and "would mkdir" in res.stdout


# ---------------------------------------------------------------------------------------------
# --compare


def test_compare_names_what_differs_without_values(run, frontend, tmp_path, keys):
    a = frontend("A")
    b = frontend("B")
    creds = json.loads(json.dumps(a.credentials))
    creds["postgresql"]["db_superuser_password"] = "a different password of some length 1234"
    creds["rabbitmq"].pop("actions_password")
    b.write_secrets(creds=creds)
    b.path("migration_level").write_text('{"major":1,"minor":41}')
    res = run("bundle-frontend", "--compare", a.root, b.root)
    assert res.returncode == 1, h.describe(res)
    out = res.stdout
    assert "postgresql.db_superuser_password differs" in out
    assert "rabbitmq.actions_password only on" in out
    assert "1.52" in out and "1.41" in out
    assert "a different password" not in out + res.stderr
    assert_no_secret(res, a)
    assert "opscode_erchef" not in out, "an equal secret was reported"

    # A different pivotal key is named by fingerprints.
    c = frontend("C", pivotal_key=keys[2])
    res = run("bundle-frontend", "--compare", a.root, c.root, "--json")
    assert res.returncode == 1
    report = h.parse_json_output(res)
    assert report["agree"] is False
    diffs = "\n".join(report["differences"])
    assert fh.spki_sha256(keys[0]) in diffs and fh.spki_sha256(keys[2]) in diffs
    assert "chef-server.superuser_key differs" in diffs
    assert_no_secret(res, a)


def test_compare_agrees_despite_a_new_veil_cipher(run, frontend, tmp_path):
    """The same credentials under another random key and IV are the same secrets."""
    a = frontend("A")
    b = frontend("B")
    b.write_secrets(creds=a.credentials)
    assert b.path("secrets").read_bytes() != a.path("secrets").read_bytes()
    b.write_secrets(doc={**b.secrets_doc, "veil": {**b.secrets_doc["veil"], "hasher": a.secrets_doc["veil"]["hasher"]}})
    h.assert_ok(run("bundle-frontend", "--compare", a.root, b.root))


# ---------------------------------------------------------------------------------------------
# owners


def test_owners_come_from_the_table_not_the_source(run, frontend, tmp_path):
    """SPEC §5: the table, not the frontend or the bundle, decides owners: a key owned by another
    account on the source is carried, and installed, as root:root, and bundle-frontend says so."""
    import pwd

    try:
        daemon = pwd.getpwnam("daemon")
    except KeyError:
        pytest.skip("no 'daemon' user on this system")
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    a = frontend("A")
    os.chown(a.path("webui_priv"), daemon.pw_uid, daemon.pw_gid)
    out = tmp_path / "b.tgz"
    res = bundle(run, a.root, out)
    assert "webui_priv.pem is owned by daemon" in res.stderr and "root:root" in res.stderr, h.describe(res)
    entry = next(f for f in json.loads(fh.tar_read(out, "MANIFEST.json"))["files"] if f["path"] == a.paths["webui_priv"])
    assert (entry["owner"], entry["group"], entry["mode"]) == ("root", "root", "0600")
    assert fh.tar_members(out)[a.paths["webui_priv"]].uname == "root"
    b = tmp_path / "B"
    b.mkdir()
    res = run("install-frontend", out, "--root", b)
    h.assert_ok(res)
    st = os.stat(b / a.paths["webui_priv"])
    assert (st.st_uid, st.st_gid) == (0, 0)
    assert h.mode_of(b / a.paths["webui_priv"]) == 0o600
    assert res.stderr == "", "running as root: nothing to say"


def test_install_by_a_non_root_user_keeps_going_and_says_so_once(chpki, run, frontend, tmp_path):
    """Without root, owners cannot be set: the files are written anyway, and one note says so."""
    import pwd
    import shutil
    import tempfile

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run chpki as another user")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no 'nobody' user")
    a = frontend("A")
    out = tmp_path / "b.tgz"
    bundle(run, a.root, out)
    # pytest's tmp_path is private to root: work in a directory that user can reach.
    d = Path(tempfile.mkdtemp(prefix="chpki-nonroot-"))
    try:
        os.chmod(d, 0o755)
        shutil.copy(out, d / "b.tgz")
        (d / "root").mkdir()
        for p in (d, d / "b.tgz", d / "root"):
            os.chown(p, nobody.pw_uid, nobody.pw_gid)
        from conftest import clean_env

        res = subprocess.run(
            ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups",
             str(chpki.path), "install-frontend", str(d / "b.tgz"), "--root", str(d / "root")],
            capture_output=True, text=True, env=clean_env(), stdin=subprocess.DEVNULL, cwd=d, timeout=120)
        h.assert_ok(res)
        notes = [line for line in res.stderr.splitlines() if line.strip()]
        assert len(notes) == 1 and "not running as root" in notes[0], h.describe(res)
        installed = fh.tree(d / "root")
        assert installed == fh.tree(a.root)
        assert os.stat(d / "root" / a.paths["secrets"]).st_uid == nobody.pw_uid
    finally:
        shutil.rmtree(d)
