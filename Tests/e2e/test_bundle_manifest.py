"""Deterministic archives, the manifest inside them, and `chpki verify --installed` on a host root.

- Two `bundle --tar` runs of the same CA state give byte-identical archives (and trees); the gzip
  header carries no time and no name; every member's time comes from the CA (the newest notBefore
  of the host's own certificates), not from the clock.
- Every archive's `var/lib/chpki/MANIFEST.json` lists exactly its members, files AND directories,
  with sha256, owner, group and mode as GNU tar and Python see them; no system directory is a member.
- Extracted as root with `tar -xzpf` (what a host does), `verify --installed` passes; a wrong mode,
  owner or content is one violation line each, exit 1; a service user missing on this host is one
  warning line naming the user, and its keys stay root-owned 0600, never world-readable.
"""
from __future__ import annotations

import grp
import hashlib
import io
import json
import os
import pwd
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import helpers as h
from conftest import Chpki

REPO = Path(__file__).resolve().parents[2]
MANIFEST = "var/lib/chpki/MANIFEST.json"
SYSTEM_DIRS = {"etc", "home", "usr", "var", "var/lib", "etc/ssl", "etc/pki", "usr/local", "usr/local/share", "etc/default",
               "etc/opensearch", "etc/haproxy", "home/minio-user", "etc/cinc-project", "etc/etcd"}


@pytest.fixture(scope="module")
def ca(tmp_path_factory, chpki_bin):
    base = tmp_path_factory.mktemp("manifest")
    tool = Chpki(chpki_bin, base)
    shutil.copy(REPO / "examples" / "reference-000.yml", base / "cluster.yml")
    pf = h.write_secret(base / "pass", h.PASSPHRASE)
    h.assert_ok(tool.run("init-ca", "--intermediate", "--passphrase-file", pf))
    h.assert_ok(tool.run("issue", "--passphrase-file", pf))
    pass_args = ["--passphrase-file", pf] if "--passphrase-file" in tool.run("bundle", "--help").stdout else []

    def bundle(out, *args):
        return h.assert_ok(tool.run("bundle", "--tar", "--out", out, *pass_args, *args))

    bundle(base / "out")
    return tool, base, bundle


def archives(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.tar.gz"))}


def tree_files(tree: Path) -> dict[str, tuple]:
    return {str(p.relative_to(tree)): (p.read_bytes() if p.is_file() else None, stat.S_IMODE(p.lstat().st_mode))
            for p in sorted(tree.rglob("*"))}


def test_two_tar_runs_give_byte_identical_archives_and_trees(ca):
    tool, base, bundle = ca
    first = archives(base / "out")
    assert len(first) == 8, sorted(first)
    bundle(base / "again")
    assert archives(base / "again") == first, "a second run into another directory wrote other bytes"
    manifest = base / "out" / "haproxy-1.example.com" / MANIFEST
    inode = manifest.stat().st_ino
    bundle(base / "out")  # and over the first run's output: nothing new, so every tree is kept as it is
    assert archives(base / "out") == first, "re-running over the output changed the archives"
    assert manifest.stat().st_ino == inode, "an identical tree was rewritten"
    # a tree edited by hand is not identical: it is replaced, and the edit is gone
    cfg = base / "out" / "haproxy-1.example.com" / "etc/haproxy/chpki-tls.cfg"
    original = cfg.read_bytes()
    cfg.write_bytes(original + b"# edited\n")
    res = bundle(base / "out", "--json")
    changed = {line["host"]: line["changed"] for line in json.loads(res.stdout)["hosts"]}
    assert changed["haproxy-1.example.com"] is True and not any(v for k, v in changed.items() if k != "haproxy-1.example.com"), changed
    assert cfg.read_bytes() == original and manifest.stat().st_ino != inode
    for host in (p.name for p in (base / "out").iterdir() if p.is_dir()):
        assert tree_files(base / "out" / host) == tree_files(base / "again" / host), f"{host}: trees differ"
    for name, data in first.items():
        # RFC 1952 header: no FNAME/FEXTRA/FCOMMENT flags, MTIME 0, OS 3 (Unix)
        assert data[:4] == b"\x1f\x8b\x08\x00", f"{name}: gzip flags {data[:4]!r}"
        assert data[4:8] == b"\0\0\0\0", f"{name}: gzip MTIME is set"
        assert data[9] == 3, f"{name}: gzip OS byte {data[9]}"


def own_certificates(members: dict) -> list[x509.Certificate]:
    """The leaf certificates a host's files carry for itself (not MinIO's copies of its peers)."""
    out = []
    for path, data in members.items():
        if data is None or "/CAs/" in path or b"BEGIN CERTIFICATE" not in data:
            continue
        for cert in x509.load_pem_x509_certificates(data):
            ca = h.ext(cert, x509.BasicConstraints)
            if not (ca and ca.value.ca):
                out.append(cert)
    return out


def read_archive(data: bytes):
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        infos = tar.getmembers()
        contents = {i.name.rstrip("/"): (tar.extractfile(i).read() if i.isfile() else None) for i in infos}
    return {i.name.rstrip("/"): i for i in infos}, contents


def files_of(manifest):
    return manifest["files"]


def test_manifest_lists_every_member_of_every_archive(ca, tmp_path):
    tool, base, bundle = ca
    bundle(tmp_path / "mini", "minicluster")
    for out in (base / "out", tmp_path / "mini"):
        for name, data in archives(out).items():
            host = name[: -len(".tar.gz")]
            infos, contents = read_archive(data)
            assert list(infos) == sorted(infos), f"{name}: members not sorted"
            manifest = json.loads(contents[MANIFEST])
            assert (out / host / MANIFEST).read_bytes() == contents[MANIFEST], f"{name}: the tree's manifest differs"
            assert set(manifest) == {"generator", "format", "host", "services", "ca_sha256", "directories", "files", "operations"}, manifest.keys()
            assert (manifest["generator"], manifest["format"], manifest["host"]) == ("chpki", 3, host)
            # every service of a file has its operations (argv lists), trust included
            assert {f["service"] for f in files_of(manifest)} <= set(manifest["operations"]), manifest["operations"].keys()
            assert all(isinstance(w, str) for ops in manifest["operations"].values() for argv in ops["on_leaf"] + ops["on_trust"] for w in argv)
            assert manifest["services"] == sorted(manifest["services"])
            root_der = h.load_cert(base / "ca" / "root.pem").public_bytes(Encoding.DER)
            assert manifest["ca_sha256"] == hashlib.sha256(root_der).hexdigest()
            files, dirs = manifest["files"], manifest["directories"]
            assert [f["path"] for f in files] == sorted(f["path"] for f in files)
            assert [d["path"] for d in dirs] == sorted(d["path"] for d in dirs)
            # the manifest and its directory travel in the archive without listing themselves
            assert infos[MANIFEST].mode == 0o644 and (infos[MANIFEST].uname, infos[MANIFEST].gname) == ("root", "root")
            assert infos["var/lib/chpki"].isdir()
            members = set(infos) - {MANIFEST, "var/lib/chpki"}
            assert members == {f["path"] for f in files} | {d["path"] for d in dirs}, (
                f"{name}: members and manifest differ: {sorted(members ^ ({f['path'] for f in files} | {d['path'] for d in dirs}))}")
            assert not (members & SYSTEM_DIRS), f"{name}: system directories in the archive: {members & SYSTEM_DIRS}"
            for f in files:
                info = infos[f["path"]]
                assert info.isfile() and not f["path"].startswith("/")
                assert hashlib.sha256(contents[f["path"]]).hexdigest() == f["sha256"], f"{name}:{f['path']}: sha256"
                assert (f"{info.mode:04o}", info.uname, info.gname) == (f["mode"], f["owner"], f["group"]), f"{name}:{f['path']}"
                assert (info.uid, info.gid) == (0, 0), f"{name}:{f['path']}: numeric ids"
                assert f["role"] in ("trust", "leaf", "key", "config", "bootstrap"), f
                if f["role"] == "leaf":
                    # the root the chain ends at: the CA's root (no rotation here)
                    assert f["root"] == manifest["ca_sha256"], f
                else:
                    assert "root" not in f, f
                if "ca-trust" in f["path"] or "ca-certificates" in f["path"]:
                    assert f["service"] == "trust" and f["role"] == "trust", f
                else:
                    assert f["service"] in manifest["services"] or f["service"] == "trust", f
            for d in dirs:
                info = infos[d["path"]]
                assert info.isdir() and (f"{info.mode:04o}", info.uname, info.gname) == (d["mode"], d["owner"], d["group"]), d
                assert d["service"] in manifest["services"], d
            # member times come from the CA state: the newest notBefore of the host's own certificates
            newest = max(int(c.not_valid_before_utc.timestamp()) for c in own_certificates(contents))
            assert {i.mtime for i in infos.values()} == {newest}, f"{name}: member times {sorted({i.mtime for i in infos.values()})}"


def extract(archive: Path, root: Path) -> Path:
    root.mkdir(parents=True)
    res = subprocess.run(["tar", "-xzpf", str(archive), "-C", str(root)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return root


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def verify_installed(tool, root):
    return tool.run("verify", "--installed", "--bundle", root)


@pytest.fixture
def installed(ca, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("extracting with owners (tar -xzpf) needs root (the tests run as root on CI)")
    tool, base, _ = ca

    def install(host: str) -> Path:
        return extract(base / "out" / f"{host}.tar.gz", tmp_path / host)

    return install


def test_installed_root_passes_and_missing_users_are_one_warning_each(ca, installed):
    tool, base, _ = ca
    root = installed("backend-1.example.com")
    manifest = json.loads((root / MANIFEST).read_text())
    res = verify_installed(tool, root)
    assert res.returncode == 0 and "no violation" in res.stdout, h.describe(res)
    missing = sorted({e["owner"] for e in manifest["files"] + manifest["directories"] if not user_exists(e["owner"])})
    warnings = [line for line in res.stderr.splitlines() if "warning" in line]
    assert len(warnings) == len(missing), h.describe(res)
    for user in missing:
        assert sum(f"user '{user}'" in line for line in warnings) == 1, h.describe(res)
        # its keys stayed root's and private: never world-readable
        for e in manifest["files"]:
            if e["owner"] == user and e["path"].endswith(("key", "key.pem")):
                st = (root / e["path"]).stat()
                assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600, f"{e['path']}: {st}"
    for e in manifest["files"] + manifest["directories"]:
        if user_exists(e["owner"]):
            assert (root / e["path"]).stat().st_uid == pwd.getpwnam(e["owner"]).pw_uid, e


def assert_violation(res, *fragments):
    assert res.returncode == 1, "expected exit 1" + h.describe(res)
    lines = [line for line in res.stdout.splitlines() if line.strip()]
    hits = [line for line in lines if all(f in line for f in fragments)]
    assert len(hits) == 1, f"expected one line with {fragments}:\n" + "\n".join(lines)


def test_installed_wrong_mode_owner_checksum(ca, installed):
    tool, _, _ = ca
    root = installed("haproxy-1.example.com")
    h.assert_ok(verify_installed(tool, root))
    pem = root / "etc/ssl/haproxy/cinc-server-cluster.example.com.pem"
    pem.chmod(0o644)
    assert_violation(verify_installed(tool, root), str(pem.relative_to(root)), "mode is 0644", "0600")
    pem.chmod(0o600)
    nobody = pwd.getpwnam("nobody")
    os.chown(pem, nobody.pw_uid, 0)
    assert_violation(verify_installed(tool, root), str(pem.relative_to(root)), "owned by nobody", "root")
    os.chown(pem, 0, 0)
    cfg = root / "etc/haproxy/chpki-tls.cfg"
    cfg.write_text(cfg.read_text() + "# edited by hand\n")
    assert_violation(verify_installed(tool, root), "etc/haproxy/chpki-tls.cfg", "sha256")
    (root / "etc/ssl/haproxy").chmod(0o755)
    res = verify_installed(tool, root)
    assert_violation(res, "etc/ssl/haproxy:", "mode is 0755")
    assert len([line for line in res.stdout.splitlines() if line.strip()]) == 2, h.describe(res)


def test_installed_group_and_missing_service_user(ca, installed):
    tool, _, _ = ca
    root = installed("backend-2.example.com")
    if not user_exists("postgres"):
        pytest.skip("no postgres user: install the Debian package postgresql")
    key = root / "etc/ssl/private.key"
    assert key.stat().st_uid == pwd.getpwnam("postgres").pw_uid
    os.chown(key, pwd.getpwnam("postgres").pw_uid, grp.getgrnam("root").gr_gid)
    assert_violation(verify_installed(tool, root), "etc/ssl/private.key", "group is root", "postgres")


def test_manifest_in_an_unsafe_or_old_shape_is_refused(ca, tmp_path):
    tool, base, _ = ca
    tree = tmp_path / "tree"
    shutil.copytree(base / "out" / "frontend-1.example.com", tree)
    manifest = json.loads((tree / MANIFEST).read_text())
    manifest["files"][0]["path"] = "../../etc/shadow"
    (tree / MANIFEST).write_text(json.dumps(manifest))
    res = tool.run("verify", "--bundle", tree)
    assert res.returncode == 1 and "not a relative path inside the root" in res.stdout, h.describe(res)
    old = tmp_path / "old" / "frontend-1.example.com"
    old.mkdir(parents=True)
    (old / "MANIFEST.json").write_text('{"generator": "chpki", "host": "frontend-1.example.com", "files": []}')
    h.assert_refused(tool.run("verify", "--bundle", tmp_path / "old"), "older chpki", error="bundle.old-layout")
