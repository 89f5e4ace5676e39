"""Template overrides are trusted only when no other user could have written them (SPEC §8).

An override renders into the config of every host of its service (pg_hba.conf on every Patroni
host, cinc-server.rb that cinc-server-ctl runs as root), so an override directory or file that is
group/other-writable, or owned by anyone but root or the user chpki runs as, is refused (exit 2,
one line naming the path, owner, mode and why) before anything is written; a root-owned 0644
template in a 0755 directory is used. And a hostile override that is trusted (root wrote it) is
still caught afterwards by `verify --bundle`'s snippet rules.
"""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import helpers as h
from conftest import REPO, clean_env, run_with_private_etc_chpki

NOBODY = pwd.getpwnam("nobody")
BACKEND = "backend-1.example.com"
HOSTILE_HBA = "host all all 0.0.0.0/0 trust\n"


@pytest.fixture
def cluster(workdir, write_inventory, init_ca, run, passphrase_file):
    write_inventory(h.FULL_INVENTORY)
    init_ca()
    h.assert_ok(run("issue", "--passphrase-file", passphrase_file))
    return workdir


def override_dir(tmp_path, text: str, *, dir_mode=0o755, file_mode=0o644, file_owner=0, name="pg_hba.conf"):
    directory = tmp_path / "site-templates"
    directory.mkdir()
    template = directory / f"{name}.mustache"
    template.write_text(text)
    os.chown(template, file_owner, file_owner and NOBODY.pw_gid)
    template.chmod(file_mode)
    directory.chmod(dir_mode)
    return directory, template


def assert_nothing_bundled(cluster):
    assert not (cluster / "out").exists(), "a refused bundle wrote output"


def test_world_writable_directory_holding_a_nobody_template_is_refused(cluster, run, tmp_path, passphrase_file):
    assert os.geteuid() == 0, "needs root to chown to nobody"
    directory, _ = override_dir(tmp_path, HOSTILE_HBA, dir_mode=0o777, file_owner=NOBODY.pw_uid)
    line = h.assert_refused(run("bundle", "--out", "out", "--templates", directory, "--passphrase-file", passphrase_file),
                            str(directory), "--templates", "0777", error="template.untrusted")
    assert "another user could change" in line
    assert_nothing_bundled(cluster)
    # The same directory through the environment, and for the read-only template commands.
    h.assert_refused(run("templates", "list", env={"CHPKI_TEMPLATES": directory}), str(directory), "CHPKI_TEMPLATES", "0777", error="template.untrusted")
    h.assert_refused(run("templates", "show", "pg_hba.conf", "--templates", directory), str(directory), "0777", error="template.untrusted")


def test_a_nobody_owned_template_in_a_good_directory_is_refused(cluster, run, tmp_path, passphrase_file):
    directory, template = override_dir(tmp_path, HOSTILE_HBA, file_owner=NOBODY.pw_uid)
    h.assert_refused(run("bundle", "--out", "out", "--templates", directory, "--passphrase-file", passphrase_file),
                     str(template), "owner nobody", "0644", error="template.untrusted")
    assert_nothing_bundled(cluster)


@pytest.mark.parametrize("dir_mode,file_mode,refused", [
    (0o775, 0o644, "site-templates:"),           # group-writable directory
    (0o755, 0o664, "pg_hba.conf.mustache:"),     # group-writable template
    (0o755, 0o646, "pg_hba.conf.mustache:"),     # other-writable template
])
def test_group_or_other_writable_is_refused_even_when_root_owns_it(cluster, run, tmp_path, passphrase_file, dir_mode, file_mode, refused):
    directory, _ = override_dir(tmp_path, "# site\n", dir_mode=dir_mode, file_mode=file_mode)
    line = h.assert_refused(run("bundle", "--out", "out", "--templates", directory, "--passphrase-file", passphrase_file),
                            "owner root", error="template.untrusted")
    assert refused in line, line
    assert_nothing_bundled(cluster)


def test_root_owned_0644_template_in_a_0755_directory_is_used(cluster, run, tmp_path, passphrase_file):
    directory, template = override_dir(tmp_path, "# site pg_hba\nhostssl all all 10.0.0.0/8 cert map=chpki\n"
                                       "hostssl replication {{{replication_user}}} 10.0.0.0/8 cert map=chpki\n")
    res = h.assert_ok(run("bundle", "--out", "out", "--templates", directory, "--passphrase-file", passphrase_file))
    assert "warning" not in res.stderr, res.stderr
    assert (cluster / "out" / BACKEND / "etc/patroni/pg_hba.conf").read_text().startswith("# site pg_hba\n")
    h.assert_ok(run("verify", "--bundle", "out"))


@pytest.fixture
def reachable_tmp():
    """A scratch directory other users can reach (pytest's own tmp tree is root's 0700)."""
    path = Path(tempfile.mkdtemp(prefix="chpki-templates-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_the_invoking_users_own_override_is_used(reachable_tmp, chpki_bin):
    """Not root: a template directory of the user chpki runs as is trusted."""
    directory, template = override_dir(reachable_tmp, "# mine\n", file_owner=NOBODY.pw_uid, name="pg_ident.conf")
    os.chown(directory, NOBODY.pw_uid, NOBODY.pw_gid)
    res = subprocess.run(["runuser", "-u", "nobody", "--", str(chpki_bin), "templates", "show", "pg_ident.conf",
                          "--templates", str(directory)], capture_output=True, text=True, env=clean_env(), cwd="/")
    assert res.returncode == 0 and res.stdout == "# mine\n", h.describe(res)
    # ... but root, running the same command, refuses nobody's directory.
    res = subprocess.run([str(chpki_bin), "templates", "show", "pg_ident.conf", "--templates", str(directory), "--json"],
                         capture_output=True, text=True, env=clean_env(), cwd="/")
    h.assert_refused(res, str(directory), "owner nobody", error="template.untrusted")


def test_symlinked_template_or_directory_is_refused(cluster, run, tmp_path, passphrase_file):
    directory, template = override_dir(tmp_path, "# site\n")
    real = tmp_path / "elsewhere.mustache"
    real.write_text("# elsewhere\n")
    template.unlink()
    template.symlink_to(real)
    h.assert_refused(run("templates", "list", "--templates", directory), str(template), "symlink", error="template.untrusted")
    link = tmp_path / "link-to-templates"
    template.unlink()
    link.symlink_to(directory)
    h.assert_refused(run("templates", "list", "--templates", link), str(link), "symlink", error="template.untrusted")


def test_system_directory_writable_by_others_is_refused(chpki_bin, tmp_path):
    """/etc/chpki/templates is picked up whenever it exists: a world-writable one is refused too
    (in a private mount namespace, so the real /etc is untouched)."""
    res = run_with_private_etc_chpki(
        "mkdir -m 0777 /etc/chpki/templates && "
        "printf 'host all all 0.0.0.0/0 trust\\n' > /etc/chpki/templates/pg_hba.conf.mustache && "
        f"chown nobody /etc/chpki/templates/pg_hba.conf.mustache && {chpki_bin} templates list --json", tmp_path)
    h.assert_refused(res, "/etc/chpki/templates", "0777", error="template.untrusted")


def test_oversized_template_is_refused(cluster, run, tmp_path, passphrase_file):
    directory, template = override_dir(tmp_path, "")
    os.truncate(template, 3 << 30)
    h.assert_refused(run("bundle", "--out", "out", "--templates", directory, "--passphrase-file", passphrase_file),
                     str(template), "3 GiB", "1 MiB", error="file.too-large")
    assert_nothing_bundled(cluster)


def test_trusted_but_hostile_override_is_caught_by_verify(cluster, run, tmp_path, passphrase_file):
    """root wrote it, so it renders; verify --bundle then names every host, file, line and rule."""
    directory, _ = override_dir(tmp_path, HOSTILE_HBA + (REPO / "templates/pg_hba.conf.mustache").read_text())
    res = h.assert_ok(run("bundle", "--out", "out", "--templates", directory, "--passphrase-file", passphrase_file))
    # bundle says so at once (a warning: the operator's own template), verify fails on it.
    assert f"chpki: warning: {BACKEND}/etc/patroni/pg_hba.conf:1: 'trust'" in res.stderr, res.stderr
    res = run("verify", "--bundle", "out")
    assert res.returncode == 1, h.describe(res)
    lines = [line for line in res.stdout.splitlines() if "pg_hba.conf" in line]
    backends = sorted({line.split("/")[0] for line in lines})
    assert backends == [BACKEND], res.stdout
    for line in lines:
        assert line.split(": ", 1)[0].endswith("/etc/patroni/pg_hba.conf:1"), line
        assert "'trust'" in line and "0.0.0.0/0" in line, line
