"""Hostile frontend bundles (SPEC §5, §8; issue 9): whatever a bundle says, install-frontend
writes only SPEC §5's files with SPEC §5's modes and owners, never outside --root, never through a
symlink, and never crashes. Every crafted bundle here is refused with exit 2 and exactly one
stderr line, with --root byte-identical (paths, bytes, modes, owners, mtimes, symlink targets) and
a sibling directory untouched.

The archives are written byte by byte (tar_craft), gzip by Python's gzip, envelopes by the openssl
CLI (`openssl cms -encrypt -pwri_password`): nothing here is made by chpki except the good bundle
the variants start from.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

import frontend_helpers as fh
from frontend_helpers import frontend, keys  # noqa: F401  (shared fixtures)
import helpers as h
import tar_craft as tc
from conftest import clean_env

CINC = fh.paths("cinc")
RB, SH, PEM, RBP, SECRETS = CINC["rb"], CINC["private_chef_sh"], CINC["pivotal_pem"], CINC["pivotal_rb"], CINC["secrets"]
WEBUI_PUB = CINC["webui_pub"]


def state(path: Path) -> dict | None:
    """Everything a write could change under `path` (not following symlinks)."""
    path = Path(path)
    if not os.path.lexists(path):
        return None
    out = {}
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        for name in [".", *dirnames, *filenames]:
            p = Path(dirpath) / name if name != "." else Path(dirpath)
            st = os.lstat(p)
            rel = str(p.relative_to(path))
            if stat.S_ISLNK(st.st_mode):
                content = "-> " + os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                content = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                content = None
            out[rel] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, content)
    return out


@pytest.fixture(scope="module")
def good(chpki_bin, tmp_path_factory) -> tc.Bundle:
    """One plain bundle of a realistic frontend, taken apart."""
    d = tmp_path_factory.mktemp("good")
    fe = fh.make_frontend(d / "A")
    out = d / "good.tgz"
    res = subprocess.run([str(chpki_bin), "bundle-frontend", "--from", str(fe.root), "--out", str(out)],
                         capture_output=True, text=True, env=clean_env(), stdin=subprocess.DEVNULL, timeout=120)
    assert res.returncode == 0, h.describe(res)
    bundle = tc.Bundle.parse(out.read_bytes())
    # The good bundle itself installs: the variants below fail for their one defect.
    return bundle


@pytest.fixture
def place(tmp_path):
    """A --root with something in it already, and a sibling that nothing may touch."""
    base = tmp_path / "host"
    root = base / "root"
    outside = base / "outside"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").write_text("frontend-2\n")
    outside.mkdir()
    (outside / "keep").write_text("untouched\n")
    return root, outside


def refused(run, data: bytes, place, tmp_path, *mentions, name="hostile.tgz", encrypt=False, error=None):
    """install-frontend of `data` exits 2 with one line naming `mentions`; --root and the sibling
    are exactly as before."""
    root, outside = place
    f = tmp_path / name
    f.write_bytes(data)
    env = None
    if encrypt:
        sealed = tmp_path / (name + ".cms")
        h.openssl("cms", "-encrypt", "-binary", "-aes256", "-in", f, "-outform", "PEM", "-out", sealed,
                  "-pwri_password", fh.BUNDLE_PASSPHRASE, check=True)
        f = sealed
        env = {"CHPKI_BUNDLE_PASSPHRASE": fh.BUNDLE_PASSPHRASE}
    before, before_outside = state(root), state(outside)
    res = run("install-frontend", f, "--root", root, env=env)
    line = h.assert_refused(res, *mentions, error=error)
    assert "Tar.swift" not in res.stderr and "Fatal error" not in res.stderr
    assert state(root) == before, "a refused install changed --root"
    assert state(outside) == before_outside, "a refused install wrote outside --root"
    assert res.stdout == ""
    return line


# ---------------------------------------------------------------------------------------------
# the good bundle, as a baseline: SPEC §5's modes and owners exactly


def test_good_bundle_installs_spec_modes_and_owners(run, good, place, tmp_path):
    root, outside = place
    f = tmp_path / "good.tgz"
    f.write_bytes(good.tgz())
    before_outside = state(outside)
    h.assert_ok(run("install-frontend", f, "--root", root))
    expected = {"rb": 0o640, "dark_launch": 0o644, "pivotal_pem": 0o600, "pivotal_rb": 0o644, "private_chef_sh": 0o644,
                "secrets": 0o600, "webui_priv": 0o600, "webui_pub": 0o644, "bootstrapped": 0o600,
                "migration_level": 0o644}
    for role, mode in expected.items():
        st = os.lstat(root / CINC[role])
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == mode, (role, oct(st.st_mode))
        if os.geteuid() == 0:
            assert (st.st_uid, st.st_gid) == (0, 0), role
    for d in ("etc/cinc-project", "var", "var/opt", "var/opt/cinc-project", "var/opt/cinc-project/upgrades"):
        st = os.lstat(root / d)
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755, d
        if os.geteuid() == 0:
            assert (st.st_uid, st.st_gid) == (0, 0), d
    assert state(outside) == before_outside
    # Nothing but the ten files, the directories and what was there.
    files = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert files == set(CINC.values()) | {"etc/hostname"}


# ---------------------------------------------------------------------------------------------
# modes and owners the table does not allow (issue 9: 4755 root:root, 6770, nobody:nogroup, 777 dir)


@pytest.mark.parametrize("path, mode, why", [
    (SH, 0o4755, "setuid"),
    (RB, 0o6770, "setuid"),
    (PEM, 0o2600, "setgid"),
    (RBP, 0o1644, "sticky"),
    (WEBUI_PUB, 0o666, "write"),
    (SECRETS, 0o620, "write"),
    (PEM, 0o644, "0600"),
    (SECRETS, 0o400, "0600"),
    ("etc/cinc-project", 0o777, "write"),
    ("var/opt/cinc-project/upgrades", 0o1755, "sticky"),
])
def test_mode_not_in_the_table(run, good, place, tmp_path, path, mode, why):
    b = good.copy()
    b.set_mode(path, mode)
    refused(run, b.tgz(), place, tmp_path, path, f"{mode:04o}", why, error="secrets.invalid")


@pytest.mark.parametrize("path, owner, group, named", [
    (RB, "nobody", "nogroup", "nobody"),
    (SH, "root", "nogroup", "nogroup"),
    ("etc/cinc-project", "nobody", "nogroup", "nobody"),
    (PEM, "daemon", "root", "daemon"),
])
def test_owner_not_root_or_the_service_account(run, good, place, tmp_path, path, owner, group, named):
    b = good.copy()
    b.set_owner(path, owner, group)
    refused(run, b.tgz(), place, tmp_path, path, named, error="secrets.invalid")


def test_service_account_in_the_manifest_still_installs_root(run, good, place, tmp_path):
    """`opscode` is the flavour's account: accepted in a manifest, but the table's root is written."""
    root, _ = place
    b = good.copy()
    b.set_owner(PEM, "opscode", "opscode")
    f = tmp_path / "svc.tgz"
    f.write_bytes(b.tgz())
    h.assert_ok(run("install-frontend", f, "--root", root))
    st = os.lstat(root / PEM)
    assert stat.S_IMODE(st.st_mode) == 0o600
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (0, 0)


def test_member_header_disagrees_with_the_manifest(run, good, place, tmp_path):
    b = good.copy()
    b.member(SECRETS).mode = 0o644  # manifest still says 0600
    refused(run, b.tgz(), place, tmp_path, SECRETS, "0644", error="secrets.invalid")


@pytest.mark.parametrize("path", ["etc/cinc-project/evil.rb", "etc/passwd", "root/.ssh/authorized_keys"])
def test_unknown_path(run, good, place, tmp_path, path):
    b = good.copy()
    data = b"ssh-ed25519 AAAA attacker\n"
    b.members.append(tc.Member(name=path, data=data, mode=0o644))
    b.manifest["files"].append({"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                                "owner": "root", "group": "root", "mode": "0644"})
    refused(run, b.tgz(), place, tmp_path, path, "not a file of", error="secrets.invalid")


def test_unknown_directory(run, good, place, tmp_path):
    b = good.copy()
    b.members.insert(0, tc.Member(name="etc/sudoers.d/", type=b"5", mode=0o755))
    b.manifest["directories"].append({"path": "etc/sudoers.d", "owner": "root", "group": "root", "mode": "0755"})
    refused(run, b.tgz(), place, tmp_path, "etc/sudoers.d", "not a directory of", error="secrets.invalid")


# ---------------------------------------------------------------------------------------------
# symlinks and files already in --root


def test_symlinked_config_directory_absolute(run, good, place, tmp_path):
    root, outside = place
    os.symlink(outside, root / "etc" / "cinc-project")
    refused(run, good.tgz(), place, tmp_path, "etc/cinc-project", "symlink", error="install.unsafe-path")
    assert sorted(os.listdir(outside)) == ["keep"]


def test_symlinked_var_relative(run, good, place, tmp_path):
    """`var -> ../outside`: the files under var would land in the sibling; the etc files are not
    written either (everything is checked before anything is written)."""
    root, outside = place
    os.symlink("../outside", root / "var")
    refused(run, good.tgz(), place, tmp_path, "var", "symlink", error="install.unsafe-path")
    assert not (root / "etc" / "cinc-project").exists()


def test_symlinked_deeper_parent(run, good, place, tmp_path):
    root, outside = place
    (root / "var" / "opt" / "cinc-project").mkdir(parents=True)
    os.symlink("../../../../outside", root / "var" / "opt" / "cinc-project" / "upgrades")
    refused(run, good.tgz(), place, tmp_path, "upgrades", "symlink", error="install.unsafe-path")


def test_symlink_as_the_target_file(run, good, place, tmp_path):
    root, outside = place
    (root / "etc" / "cinc-project").mkdir()
    os.symlink("../../../outside/keep", root / PEM)
    refused(run, good.tgz(), place, tmp_path, "pivotal.pem", "symlink", error="install.conflict")
    assert (outside / "keep").read_text() == "untouched\n"


def test_dangling_symlink_as_the_target_file(run, good, place, tmp_path):
    root, outside = place
    (root / "etc" / "cinc-project").mkdir()
    os.symlink(str(outside / "new-file"), root / SECRETS)
    refused(run, good.tgz(), place, tmp_path, SECRETS, "symlink", error="install.conflict")
    assert not (outside / "new-file").exists()


def test_hard_link_in_the_root_is_not_modified_through(run, good, place, tmp_path):
    """A name in --root that is a hard link to a file outside, with the bundle's content but
    another mode: install fixes the mode by writing a new file, never by chmod of the shared inode."""
    root, outside = place
    (root / "etc" / "cinc-project").mkdir()
    victim = outside / "victim"
    victim.write_bytes(good.member(RBP).data)
    os.chmod(victim, 0o600)
    os.link(victim, root / RBP)
    before_victim = state(outside)
    f = tmp_path / "good.tgz"
    f.write_bytes(good.tgz())
    res = run("install-frontend", f, "--root", root)
    h.assert_ok(res)
    assert "set-mode" in res.stdout
    assert state(outside) == before_victim, "the install changed a file outside --root through a hard link"
    st = os.lstat(root / RBP)
    assert stat.S_IMODE(st.st_mode) == 0o644 and st.st_ino != os.lstat(victim).st_ino


def test_file_where_a_directory_goes(run, good, place, tmp_path):
    root, _ = place
    (root / "var").write_text("not a directory\n")
    refused(run, good.tgz(), place, tmp_path, "var", "not a directory", error="install.unsafe-path")


# ---------------------------------------------------------------------------------------------
# tar members that are not regular files or directories


@pytest.mark.parametrize("typeflag, linkname", [
    (b"2", b"/etc/shadow"),      # symlink
    (b"1", b"etc/hostname"),     # hard link
    (b"3", b""),                 # character device
    (b"4", b""),                 # block device
    (b"6", b""),                 # fifo
    (b"x", b""),                 # pax extended header
    (b"L", b""),                 # GNU long name
])
def test_member_type_refused(run, good, place, tmp_path, typeflag, linkname):
    b = good.copy()
    m = b.member(PEM)
    m.type, m.linkname, m.data = typeflag, linkname, b""
    refused(run, b.tgz(), place, tmp_path, "type", "only regular files and directories", error="archive.unsafe-member")


def test_duplicate_member(run, good, place, tmp_path):
    b = good.copy()
    second = tc.Member(name=RBP, data=b'node_name "mallory"\n', mode=0o644)
    b.members.append(second)
    refused(run, b.tgz(), place, tmp_path, RBP, "twice", error="archive.duplicate-member")


# ---------------------------------------------------------------------------------------------
# numeric fields, checksums, paths, names


@pytest.mark.parametrize("size_field, why", [
    (b"-0000000001", "octal"),                          # the SIGILL of issue 9
    (b"77777777777\0", "more than"),                    # 8 GiB
    (b"\x80" + b"\0" * 3 + (1 << 33).to_bytes(8, "big"), "base-256"),
    (b"\xff" * 12, "base-256"),                         # base-256 -1
    (b"0000000009\0\0", "octal"),
    (b"00000001 x\0\0", "octal"),
])
def test_bad_size_field(run, good, place, tmp_path, size_field, why):
    b = good.copy()
    b.member(RBP).size_field = size_field
    refused(run, b.tgz(), place, tmp_path, why, error="archive.too-large" if why == "more than" else "archive.corrupt")


def test_mode_field_not_octal(run, good, place, tmp_path):
    b = good.copy()
    b.member(RBP).mode_field = b"-000644\0"
    refused(run, b.tgz(), place, tmp_path, "mode", "octal", error="archive.corrupt")


def test_bad_checksum(run, good, place, tmp_path):
    b = good.copy()
    b.member(PEM).checksum_delta = 1
    refused(run, b.tgz(), place, tmp_path, "checksum", error="archive.corrupt")


def test_not_ustar(run, good, place, tmp_path):
    b = good.copy()
    b.member(PEM).magic_field = b"\0" * 8
    refused(run, b.tgz(), place, tmp_path, "ustar", error="archive.corrupt")


@pytest.mark.parametrize("name", [
    "/etc/cinc-project/pivotal.rb",
    "etc/cinc-project/../../../outside/pivotal.rb",
    "etc/cinc-project/./pivotal.rb",
    "etc//cinc-project/pivotal.rb",
])
def test_unsafe_member_path(run, good, place, tmp_path, name):
    b = good.copy()
    b.member(RBP).name = name
    b.entry(RBP)["path"] = name
    refused(run, b.tgz(), place, tmp_path, "unsafe member path", error="archive.unsafe-member")


def test_nul_inside_a_name(run, good, place, tmp_path):
    b = good.copy()
    b.member(RBP).name_field = RBP.encode() + b"\0/../../evil"
    refused(run, b.tgz(), place, tmp_path, "NUL", error="archive.corrupt")


def test_prefix_field_path_traversal(run, good, place, tmp_path):
    """ustar's 155-byte prefix is joined to the name: `..` there is refused as well."""
    b = good.copy()
    m = b.member(RBP)
    m.prefix_field, m.name_field = b"..", b"outside/pivotal.rb"
    refused(run, b.tgz(), place, tmp_path, "unsafe member path", error="archive.unsafe-member")


# ---------------------------------------------------------------------------------------------
# truncation, garbage, bombs


def test_trailing_garbage_after_the_tar(run, good, place, tmp_path):
    b = good.copy()
    refused(run, tc.gz(b.tar() + b"MALLORY" + b"\0" * 505), place, tmp_path, "after the end-of-archive", error="archive.corrupt")


def test_trailing_garbage_after_the_gzip(run, good, place, tmp_path):
    refused(run, good.tgz() + b"garbage after the gzip member", place, tmp_path, "after the end", error="archive.corrupt")


def test_second_gzip_member(run, good, place, tmp_path):
    refused(run, good.tgz() + tc.gz(b"\0" * 1024), place, tmp_path, "after the end", error="archive.corrupt")


@pytest.mark.parametrize("keep", [10, 0.3, 0.97])
def test_truncated_gzip(run, good, place, tmp_path, keep):
    data = good.tgz()
    n = keep if isinstance(keep, int) else int(len(data) * keep)
    refused(run, data[:n], place, tmp_path, "truncated", error="archive.truncated")


def test_corrupt_gzip(run, good, place, tmp_path):
    data = bytearray(good.tgz())
    for i in range(len(data) // 2, len(data) // 2 + 16):
        data[i] ^= 0x5A
    refused(run, bytes(data), place, tmp_path, ("corrupt", "truncated"), error=("archive.corrupt", "archive.truncated"))


def test_tar_without_end_blocks(run, good, place, tmp_path):
    refused(run, tc.gz(good.copy().tar(end=b"")), place, tmp_path, "truncated", error="archive.truncated")


def test_tar_with_one_end_block(run, good, place, tmp_path):
    refused(run, tc.gz(good.copy().tar(end=b"\0" * 512)), place, tmp_path, "truncated", error="archive.truncated")


def test_member_cut_short(run, good, place, tmp_path):
    """The last member's header says more bytes than follow."""
    b = good.copy()
    b.member("bootstrapped").size_field = tc.octal(4096, 12)
    refused(run, tc.gz(b.tar(end=b"")), place, tmp_path, "truncated", error="archive.truncated")


def test_decompression_bomb(run, place, tmp_path):
    """100 MiB of zeros in ~100 KiB of gzip: refused at the limit, not after filling memory."""
    bomb = gzip.compress(b"\0" * (100 << 20), 9)
    assert len(bomb) < 200_000
    refused(run, bomb, place, tmp_path, "expands past", error="archive.too-large")


def test_member_over_the_size_limit(run, good, place, tmp_path):
    b = good.copy()
    b.set_data(RBP, b"#" * ((1 << 20) + 1))
    refused(run, b.tgz(), place, tmp_path, "more than", error="archive.too-large")


# ---------------------------------------------------------------------------------------------
# the secrets inside (item 4): install-frontend validates what it unpacks


def secrets_bundle(good: tc.Bundle, doc) -> bytes:
    b = good.copy()
    b.set_data(SECRETS, (json.dumps(doc, indent=2) + "\n").encode())
    return b.tgz()


@pytest.mark.parametrize("doc, mentions", [
    ({"vail": {"version": 2}}, ("private-cinc-secrets.json", "chef-server")),
    ({"veil": {"type": "Veil::CredentialCollection::ChefSecretsFile", "version": 9, "credentials": "AAAA"}},
     ("private-cinc-secrets.json", "veil.version", "9")),
    ({"veil": {"type": "Veil::CredentialCollection::ChefSecretsFile", "version": True, "credentials": {}}},
     ("veil.version", "true")),
    ({"postgresql": {"db_superuser_password": "x" * 40}}, ("chef-server",)),
    ({"chef-server": {"superuser_key": 1, "webui_key": 2, "webui_pub_key": 3}}, ("chef-server.superuser_key", "not a string")),
    (["chef-server"], ("not a JSON object",)),
])
def test_secrets_a_frontend_cannot_use(run, good, place, tmp_path, doc, mentions):
    refused(run, secrets_bundle(good, doc), place, tmp_path, *mentions, error="secrets.invalid")


# ---------------------------------------------------------------------------------------------
# the same hostile bundles inside a CMS envelope made by the openssl CLI


def test_encrypted_setuid_bundle(run, good, place, tmp_path):
    b = good.copy()
    b.set_mode(SH, 0o4755)
    refused(run, b.tgz(), place, tmp_path, SH, "setuid", encrypt=True, error="secrets.invalid")


def test_encrypted_negative_size(run, good, place, tmp_path):
    """Issue 9: the decrypted pivotal.pem was in the core of the SIGILL; now a clean refusal."""
    b = good.copy()
    b.member(PEM).size_field = b"-0000000001"
    refused(run, b.tgz(), place, tmp_path, "octal", encrypt=True, error="archive.corrupt")


def test_encrypted_symlink_member(run, good, place, tmp_path):
    b = good.copy()
    m = b.member(PEM)
    m.type, m.linkname, m.data = b"2", b"/etc/shadow", b""
    refused(run, b.tgz(), place, tmp_path, "only regular files and directories", encrypt=True, error="archive.unsafe-member")


def test_encrypted_symlinked_parent(run, good, place, tmp_path):
    root, outside = place
    os.symlink(outside, root / "etc" / "cinc-project")
    refused(run, good.tgz(), place, tmp_path, "symlink", encrypt=True, error="install.unsafe-path")


def test_encrypted_garbage(run, place, tmp_path):
    refused(run, b"this is not gzip " * 20, place, tmp_path, "decrypted, but", encrypt=True, error="secrets.not-a-bundle")


def test_encrypted_truncated_gzip(run, good, place, tmp_path):
    data = good.tgz()
    refused(run, data[: len(data) // 2], place, tmp_path, "truncated", encrypt=True, error="archive.truncated")


# ---------------------------------------------------------------------------------------------
# bundle-frontend: the same rules on the way out


def refused_bundle_frontend(run, fe, tmp_path, *mentions, error=None):
    out = tmp_path / "out" / "b.tgz"
    out.parent.mkdir(exist_ok=True)
    res = run("bundle-frontend", "--from", fe.root, "--out", out)
    line = h.assert_refused(res, *mentions, error=error)
    assert list(out.parent.iterdir()) == []
    return line


@pytest.mark.parametrize("doc, mentions", [
    ({"vail": {"version": 2}}, ("private-cinc-secrets.json", "no chef-server group")),
    ({"postgresql": {"db_superuser_password": "x" * 40}}, ("no chef-server group",)),
])
def test_bundle_frontend_refuses_useless_secrets(run, frontend, tmp_path, doc, mentions):
    fe = frontend()
    fe.write_secrets(doc=doc)
    refused_bundle_frontend(run, fe, tmp_path, *mentions, error="frontend.invalid")


def test_bundle_frontend_refuses_an_unknown_veil_version(run, frontend, tmp_path):
    fe = frontend()
    doc = json.loads(json.dumps(fe.secrets_doc))
    doc["veil"]["version"] = 9
    fe.write_secrets(doc=doc)
    refused_bundle_frontend(run, fe, tmp_path, "private-cinc-secrets.json", "veil.version", "9", error="frontend.invalid")


def test_bundle_frontend_refuses_a_file_over_the_limit(run, frontend, tmp_path):
    """The writer's limit is the reader's: a bundle install-frontend would refuse is never written."""
    fe = frontend()
    fh.write(fe.path("rb"), "#" * ((1 << 20) + 1), 0o640)
    refused_bundle_frontend(run, fe, tmp_path, "cinc-server.rb", "more than", error="frontend.invalid")


def test_bundle_frontend_normalises_modes(run, frontend, tmp_path):
    """A source with a setuid private-chef.sh and a world-writable key: the bundle carries the
    table's modes (and says so), so the archive itself holds nothing install would refuse."""
    fe = frontend()
    os.chmod(fe.path("private_chef_sh"), 0o4755)
    os.chmod(fe.path("webui_pub"), 0o666)
    out = tmp_path / "b.tgz"
    res = run("bundle-frontend", "--from", fe.root, "--out", out)
    h.assert_ok(res)
    assert "private-chef.sh is 4755" in res.stderr and "webui_pub.pem is 0666" in res.stderr
    members = fh.tar_members(out)
    assert members[SH].mode == 0o644 and members[WEBUI_PUB].mode == 0o644
    manifest = json.loads(fh.tar_read(out, "MANIFEST.json"))
    assert {f["path"]: f["mode"] for f in manifest["files"]}[SH] == "0644"


# ---------------------------------------------------------------------------------------------
# the system calls themselves (strace): a refusal changes nothing; an install goes through
# directory descriptors only, never a path that could be redirected


MODIFYING = "openat,open,creat,mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat,link,linkat,symlink,symlinkat,chmod,fchmodat,chown,fchownat,lchown,truncate"


def traced(chpki_bin, tmp_path, *args, env=None):
    import shutil

    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    # -ff: one log per thread. With a single -f log, strace prefixes each line with a
    # space-padded pid and splits a call that another thread interrupts into
    # "<unfinished ...>" and "<... resumed>" lines: both once broke this parse (CI, stop 14).
    logs = tmp_path / "strace"
    logs.mkdir()
    res = subprocess.run(["strace", "-ff", "-qq", "-e", f"trace={MODIFYING}", "-o", str(logs / "t"), str(chpki_bin), *map(str, args)],
                         capture_output=True, text=True, env=clean_env(env), stdin=subprocess.DEVNULL, timeout=300)
    calls = [line for log in sorted(logs.iterdir()) for line in log.read_text().splitlines()]
    assert calls, "strace wrote no log: the test would prove nothing"
    unparsed = [c for c in calls if not re.match(r"^[a-z0-9_]+\(", c) and not c.startswith(("+++", "---"))]
    assert not unparsed, f"trace lines this test can't read: {unparsed[:3]}"
    return res, [c for c in calls if not c.startswith(("+++", "---"))]


def writes(calls):
    """The calls that can change a filesystem (opens for reading are not)."""
    out = []
    for c in calls:
        name = c.split("(", 1)[0]
        if name in ("openat", "open", "creat"):
            if any(flag in c for flag in ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC")):
                out.append(c)
        else:
            out.append(c)
    return out


def test_strace_refused_install_makes_no_modifying_call(chpki_bin, good, place, tmp_path):
    root, outside = place
    os.symlink("../outside", root / "var")
    f = tmp_path / "good.tgz"
    f.write_bytes(good.tgz())
    res, calls = traced(chpki_bin, tmp_path, "install-frontend", f, "--root", root)
    assert res.returncode == 2, h.describe(res)
    assert writes(calls) == [], "a refused install made a modifying system call"


def test_strace_install_writes_only_through_directory_descriptors(chpki_bin, good, place, tmp_path):
    root, _ = place
    f = tmp_path / "good.tgz"
    f.write_bytes(good.tgz())
    res, calls = traced(chpki_bin, tmp_path, "install-frontend", f, "--root", root)
    assert res.returncode == 0, h.describe(res)
    changed = writes(calls)
    assert changed, "the trace saw no write at all: the test would prove nothing"
    for c in changed:
        name = c.split("(", 1)[0]
        # Relative to a directory descriptor, never AT_FDCWD or an absolute path.
        assert name in ("openat", "mkdirat", "renameat", "renameat2", "unlinkat", "linkat"), c
        assert not c.split("(", 1)[1].startswith(("AT_FDCWD", '"/')), c
        if name == "openat":
            assert "O_CREAT" in c and "O_EXCL" in c and "O_NOFOLLOW" in c, c


def test_compare_reads_the_same_table(run, frontend, tmp_path):
    """--compare notes a mode the table does not allow, even when both frontends share it."""
    import shutil

    a = frontend("A")
    os.chmod(a.path("secrets"), 0o644)
    b = tmp_path / "B"
    shutil.copytree(a.root, b, symlinks=True)
    res = run("bundle-frontend", "--compare", a.root, b)
    h.assert_ok(res)
    notes = [line for line in res.stderr.splitlines() if "private-cinc-secrets.json: mode 0644" in line]
    assert len(notes) == 2 and all("0600" in line for line in notes), h.describe(res)
