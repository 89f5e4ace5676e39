"""install-frontend and install-backend against a hostile host and a kill (SPEC §8, issue 16).

1. A planted directory: an existing directory on the way to a target (`--root` itself, `etc`,
   `etc/cinc-project`, `var`, `etc/chef-backend`) that is not root's or that group or others can
   write (0777, 0775, a sticky 1777 like /tmp) is refused: exit 2, one line naming it and what is
   wrong, the root tree unchanged (mode, uid, gid, mtime, sha256 of every entry).
2. A kill: SIGKILL (strace `-e inject=SYSCALL:signal=KILL:when=N`) at every renameat, linkat,
   unlinkat and fsync of `install-frontend --force` and `install-backend --force`, N over every
   call counted in an unkilled run. After each kill, a re-run without --force finds all-old (and
   refuses, the files differ) or all-new (and succeeds); a re-run with --force then ends with
   exactly the new bundle's files, one backup per replaced file holding the old bytes, and no
   temporary file or journal.

The trees are made by Python (frontend_helpers), the kill by strace; only the bundle is chpki's.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

import frontend_helpers as fh
from frontend_helpers import keys  # noqa: F401  (shared fixture)
import helpers as h
from conftest import clean_env
from test_backend_bundle import SECRETS as BACKEND_SECRETS, make_backend
from test_frontend_hostile import state

CINC = fh.paths("cinc")
NOBODY = 65534
KILL_CALLS = ("renameat", "renameat2", "linkat", "unlinkat", "fsync")
TEMPORARY = re.compile(r"^\..+\.chpki-[0-9a-f]{16}$")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="planting a directory owned by nobody needs root")


@pytest.fixture(scope="module")
def new_bundle(chpki_bin, tmp_path_factory, keys):
    """A plain bundle of frontend A (keys 0 and 1), and A's files."""
    d = tmp_path_factory.mktemp("new")
    a = fh.make_frontend(d / "A", pivotal_key=keys[0], webui_key=keys[1])
    out = d / "new.tgz"
    res = subprocess.run([str(chpki_bin), "bundle-frontend", "--from", str(a.root), "--out", str(out)],
                         capture_output=True, text=True, env=clean_env(), stdin=subprocess.DEVNULL, timeout=120)
    assert res.returncode == 0, h.describe(res)
    return out, files(a.root)


@pytest.fixture(scope="module")
def backend_bundle(chpki_bin, tmp_path_factory):
    d = tmp_path_factory.mktemp("backend")
    make_backend(d / "be1")
    out = d / "backend.tgz"
    res = subprocess.run([str(chpki_bin), "bundle-backend", "--from", str(d / "be1"), "--out", str(out)],
                         capture_output=True, text=True, env=clean_env(), stdin=subprocess.DEVNULL, timeout=120)
    assert res.returncode == 0, h.describe(res)
    return out, files(d / "be1")


def files(root: Path) -> dict[str, tuple[int, str]]:
    """Every regular file under `root`: relative path -> (mode, sha256)."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            p = Path(dirpath) / name
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                out[str(p.relative_to(root))] = (stat.S_IMODE(st.st_mode), hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def old_frontend(root: Path, keys) -> dict:
    """A bootstrapped frontend with other keys and secrets than the bundle's, a longer server .rb,
    a pivotal.rb whose mode needs fixing and no migration-level: the install replaces six files,
    sets one mode, creates one, leaves two. Returns its files."""
    fe = fh.make_frontend(root, pivotal_key=keys[2], webui_key=keys[3])
    with open(fe.path("rb"), "a") as f:
        f.write("# this frontend's own line\n")
    os.chmod(fe.path("pivotal_rb"), 0o600)
    os.unlink(fe.path("migration_level"))
    return files(root)


def backups(tree: dict) -> dict[str, str]:
    """Backup name -> the target it backs up."""
    return {p: p.split(".chpki-backup-")[0] for p in tree if ".chpki-backup-" in p}


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if TEMPORARY.match(p.name) or p.name == ".chpki-install-journal")


# ---------------------------------------------------------------------------------------------
# 1. planted directories


def planted(run, command, bundle, root, *mentions):
    before = state(root)
    res = run(command, bundle, "--root", root)
    line = h.assert_refused(res, *mentions, error="install.unsafe-path")
    assert state(root) == before, "a refused install changed the root"
    assert res.stdout == ""
    return line


@pytest.mark.parametrize("directory, mode, owner, why", [
    ("etc/cinc-project", 0o777, NOBODY, "owned by"),  # issue 16: the nobody-owned 0777 config directory
    ("etc/cinc-project", 0o755, NOBODY, "owned by"),
    ("etc/cinc-project", 0o777, 0, "0777"),
    ("etc/cinc-project", 0o770, 0, "group or others"),
    ("etc", 0o775, 0, "0775"),  # a group-writable etc/
    ("var", 0o1777, 0, "sticky"),  # a /tmp-like directory on the way
    ("var/opt/cinc-project/upgrades", 0o755, NOBODY, "owned by"),
])
def test_frontend_planted_directory_refused(run, new_bundle, tmp_path, directory, mode, owner, why):
    root = tmp_path / "root"
    for d in ("etc/cinc-project", "var/opt/cinc-project/upgrades"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "etc" / "hostname").write_text("frontend-2\n")
    os.chown(root / directory, owner, owner)
    os.chmod(root / directory, mode)
    line = planted(run, "install-frontend", new_bundle[0], root, f"{root}/{directory}:", why)
    if owner == NOBODY:
        assert "nobody" in line
    assert "cinc-server.rb" not in line, "one line for the directory, not one per file below it"


def test_frontend_existing_config_directory_with_secrets_refused(run, new_bundle, tmp_path, keys):
    """The issue-16 case exactly: a bootstrapped frontend whose config directory someone else owns."""
    root = tmp_path / "root"
    old_frontend(root, keys)
    os.chown(root / "etc/cinc-project", NOBODY, NOBODY)
    os.chmod(root / "etc/cinc-project", 0o777)
    for args in ((), ("--force",)):
        before = state(root)
        h.assert_refused(run("install-frontend", new_bundle[0], "--root", root, *args), "etc/cinc-project", "nobody", error="install.unsafe-path")
        assert state(root) == before


@pytest.mark.parametrize("mode, owner, why", [(0o755, NOBODY, "owned by"), (0o777, 0, "0777"), (0o1777, 0, "sticky")])
def test_frontend_root_itself_refused(run, new_bundle, tmp_path, mode, owner, why):
    root = tmp_path / "root"
    root.mkdir()
    os.chown(root, owner, owner)
    os.chmod(root, mode)
    planted(run, "install-frontend", new_bundle[0], root, f"{root}:", why)


def test_frontend_dry_run_refuses_too(run, new_bundle, tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.chmod(root / "etc", 0o777)
    before = state(root)
    h.assert_refused(run("install-frontend", new_bundle[0], "--root", root, "--dry-run"), f"{root}/etc:", "0777", error="install.unsafe-path")
    assert state(root) == before


@pytest.mark.parametrize("directory, mode, owner, why", [
    ("etc/chef-backend", 0o777, NOBODY, "owned by"),
    ("etc/chef-backend", 0o757, 0, "0757"),
    ("etc", 0o775, 0, "0775"),
])
def test_backend_planted_directory_refused(run, backend_bundle, tmp_path, directory, mode, owner, why):
    root = tmp_path / "root"
    (root / "etc/chef-backend").mkdir(parents=True)
    os.chown(root / directory, owner, owner)
    os.chmod(root / directory, mode)
    line = planted(run, "install-backend", backend_bundle[0], root, f"{root}/{directory}:", why)
    if owner == NOBODY:
        assert "nobody" in line


def test_good_directories_still_install(run, new_bundle, tmp_path, keys):
    """root-owned 0755 and 0700 directories (a restrictive umask) are fine."""
    root = tmp_path / "root"
    old_frontend(root, keys)
    os.chmod(root / "var", 0o700)
    res = h.assert_ok(run("install-frontend", new_bundle[0], "--root", root, "--force"))
    assert "temporary" not in res.stderr and "interrupted" not in res.stderr
    assert {p: v for p, v in files(root).items() if p in CINC.values()} == new_bundle[1]
    assert leftovers(root) == []


# ---------------------------------------------------------------------------------------------
# 2. a kill at every rename, link, unlink and fsync


def traced_counts(chpki_bin, args, tmp: Path, calls=KILL_CALLS) -> dict[str, int]:
    """How many times an unkilled run makes each of `calls` (all in one thread: the most of any)."""
    logs = tmp / "count"
    logs.mkdir()
    res = subprocess.run(["strace", "-ff", "-qq", "-o", str(logs / "t"), "-e", "trace=" + ",".join(calls),
                          str(chpki_bin), *map(str, args)],
                         capture_output=True, text=True, env=clean_env(), stdin=subprocess.DEVNULL, timeout=300)
    assert res.returncode == 0, h.describe(res)
    counts = {}
    for call in calls:
        per_thread = [sum(1 for line in log.read_text().splitlines() if line.startswith(call + "("))
                      for log in logs.iterdir()]
        counts[call] = max(per_thread, default=0)
    return counts


def kill_at(chpki_bin, args, call: str, n: int) -> subprocess.CompletedProcess:
    return subprocess.run(["strace", "-qq", "-o", "/dev/null", "-e", f"trace={call}", "-e", f"inject={call}:signal=KILL:when={n}",
                           str(chpki_bin), *map(str, args)],
                          capture_output=True, text=True, env=clean_env(), stdin=subprocess.DEVNULL, timeout=300)


def check_after_kill(run, command, bundle, root: Path, old: dict, new: dict, where: str) -> tuple[list[str], str]:
    """The re-runs after a kill: without --force all-old (refused) or all-new; with --force exactly
    the new files, one backup per replaced file with its old bytes, nothing left over."""
    problems = []
    replaced = {p for p in new if p in old and old[p][1] != new[p][1]}
    plain = run(command, bundle, "--root", root)
    now = files(root)
    targets = {p: v for p, v in now.items() if p in new}
    if plain.returncode == 2:
        outcome = "old"
        if "--force" not in plain.stderr:
            problems.append(f"{where}: the re-run refused for another reason: {h.describe(plain)}")
        if targets != {p: v for p, v in old.items() if p in new}:
            problems.append(f"{where}: refused re-run, but the files are not all old: {sorted(p for p in set(targets) | set(old) if p in new and targets.get(p) != old.get(p))}")
    elif plain.returncode == 0:
        outcome = "new"
        if targets != new:
            problems.append(f"{where}: the re-run succeeded, but these are not the new files: {sorted(p for p in new if targets.get(p) != new[p])}")
    else:
        return [f"{where}: the re-run without --force failed: {h.describe(plain)}"], "?"
    if leftovers(root):
        problems.append(f"{where}: left after the first re-run: {leftovers(root)}")
    forced = run(command, bundle, "--root", root, "--force")
    if forced.returncode != 0:
        return problems + [f"{where}: the --force re-run failed: {h.describe(forced)}"], outcome
    now = files(root)
    if {p: v for p, v in now.items() if p in new} != new:
        problems.append(f"{where}: after --force, not the new files: {sorted(p for p in new if now.get(p) != new[p])}")
    kept = backups(now)
    if sorted(kept.values()) != sorted(replaced):
        problems.append(f"{where}: backups {sorted(kept)} are not one per replaced file {sorted(replaced)}")
    for name, target in kept.items():
        if now[name][1] != old[target][1]:
            problems.append(f"{where}: {name} does not hold the old {target}")
    extra = set(now) - set(new) - set(kept) - set(old)
    if extra or leftovers(root):
        problems.append(f"{where}: left behind: {sorted(extra) + leftovers(root)}")
    for path in new:
        directory = Path(path).parent
        while str(directory) != ".":
            st = os.lstat(root / directory)
            if (stat.S_IMODE(st.st_mode), st.st_uid) != (0o755, 0):
                problems.append(f"{where}: {directory} is {oct(st.st_mode)} uid {st.st_uid}, not 0755 root")
            directory = directory.parent
    return problems, outcome


def kill_everywhere(run, chpki_bin, tmp_path, command, bundle, make_old, new, calls=KILL_CALLS):
    """Returns (points, outcomes, problems)."""
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    template = tmp_path / "template"
    old = make_old(template)
    counted = tmp_path / "counted"
    shutil.copytree(template, counted, symlinks=True)
    counts = traced_counts(chpki_bin, [command, bundle, "--root", counted, "--force"], tmp_path, calls)
    assert counts.get("renameat", 0) + counts.get("renameat2", 0) >= 1 and counts["fsync"] >= 1, "the count saw no call: the test would prove nothing"
    problems, outcomes, points = [], {"old": 0, "new": 0, "completed": 0}, 0
    for call, total in counts.items():
        for n in range(1, total + 1):
            root = tmp_path / f"{call}-{n}"
            shutil.copytree(template, root, symlinks=True)
            killed = kill_at(chpki_bin, [command, bundle, "--root", root, "--force"], call, n)
            points += 1
            where = f"{command} --force killed at {call} #{n} of {total}"
            if killed.returncode == 0:
                outcomes["completed"] += 1
            elif killed.returncode not in (-9, 137):
                problems.append(f"{where}: neither killed nor completed: {h.describe(killed)}")
                continue
            found, outcome = check_after_kill(run, command, bundle, root, old, new, where)
            problems += found
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            shutil.rmtree(root)
    return points, counts, outcomes, problems


def test_kill_at_every_rename_link_unlink_fsync_of_install_frontend_force(run, chpki_bin, new_bundle, tmp_path, keys):
    bundle, new = new_bundle
    points, counts, outcomes, problems = kill_everywhere(run, chpki_bin, tmp_path, "install-frontend", bundle,
                                                         lambda root: old_frontend(root, keys), new)
    print(f"install-frontend --force: {points} kill points {counts}; re-runs found {outcomes}")
    assert problems == [], "\n".join(problems)
    assert points >= 20 and outcomes["old"] > 0 and outcomes["new"] > 0, (points, counts, outcomes)


def test_kill_at_every_rename_link_unlink_fsync_of_install_backend_force(run, chpki_bin, backend_bundle, tmp_path):
    bundle, new = backend_bundle

    def make_old(root):
        make_backend(root)  # another cluster's secrets
        return files(root)

    points, counts, outcomes, problems = kill_everywhere(run, chpki_bin, tmp_path, "install-backend", bundle, make_old, new)
    print(f"install-backend --force: {points} kill points {counts}; re-runs found {outcomes}")
    assert problems == [], "\n".join(problems)
    assert outcomes["old"] > 0 and outcomes["new"] > 0, (points, counts, outcomes)


def test_kill_at_every_call_of_install_frontend_into_an_empty_root(run, chpki_bin, new_bundle, tmp_path):
    """Five new directories too: each is made under a temporary name and renamed, so a kill leaves
    none or a finished 0755 one, never a 0700 one the re-run would keep."""
    bundle, new = new_bundle

    def make_old(root):
        root.mkdir()
        return {}

    # fchown and fchmod too: between mkdirat and fchmod a new directory is still 0700.
    points, counts, outcomes, problems = kill_everywhere(run, chpki_bin, tmp_path, "install-frontend", bundle, make_old, new,
                                                         calls=KILL_CALLS + ("fchown", "fchmod"))
    print(f"install-frontend into an empty root: {points} kill points {counts}; re-runs found {outcomes}")
    assert problems == [], "\n".join(problems)
    assert counts["renameat"] >= 16, counts  # 5 directories, 10 files, the journal


# ---------------------------------------------------------------------------------------------
# recovery details


def test_leftover_temporaries_removed_and_other_names_kept(run, new_bundle, tmp_path, keys):
    """What an older chpki (or a kill before the commit) left: its temporaries, holding a secret,
    go; names that only look alike stay."""
    root = tmp_path / "root"
    old_frontend(root, keys)
    etc = root / "etc/cinc-project"
    secret = (etc / "pivotal.pem").read_bytes()
    for name in (".pivotal.pem.chpki-0123456789abcdef", ".private-cinc-secrets.json.chpki-fedcba9876543210"):
        (etc / name).write_bytes(secret)
    (root / "var/opt/cinc-project/.bootstrapped.chpki-00000000000000aa").write_text("x")
    keep = [".pivotal.pem.chpki-0123", ".notes.chpki-0123456789abcdef", "pivotal.pem.chpki-0123456789abcdef",
            ".pivotal.pem.chpki-0123456789ABCDEF"]
    for name in keep:
        (etc / name).write_text("operator's\n")
    res = h.assert_ok(run("install-frontend", new_bundle[0], "--root", root, "--force"))
    assert "removed 3 temporary files" in res.stderr, h.describe(res)
    assert sorted(p.name for p in etc.iterdir() if ".chpki-" in p.name and "backup" not in p.name) == sorted(keep)
    assert not (root / "var/opt/cinc-project/.bootstrapped.chpki-00000000000000aa").exists()


def test_refused_leftovers_stay_with_a_dry_run(run, new_bundle, tmp_path, keys):
    root = tmp_path / "root"
    old_frontend(root, keys)
    (root / "etc/cinc-project/.pivotal.pem.chpki-0123456789abcdef").write_text("x")
    before = state(root)
    h.assert_ok(run("install-frontend", new_bundle[0], "--root", root, "--force", "--dry-run"))
    assert state(root) == before, "a dry run wrote (recovery included)"


@pytest.mark.parametrize("journal, why", [
    ({"format": "chpki-install-journal-1", "entries": [{"path": "etc/passwd", "temporary": ".passwd.chpki-0123456789abcdef"}]}, "outside the bundle"),
    ({"format": "chpki-install-journal-1", "entries": [{"path": CINC["pivotal_pem"], "temporary": "../../x"}]}, "temporary"),
    ({"format": "chpki-install-journal-1", "entries": [{"path": CINC["pivotal_pem"], "temporary": ".pivotal.pem.chpki-0123456789abcdef",
                                                        "backup": "../../../etc/shadow"}]}, "backup"),
    ({"format": "other", "entries": []}, "format"),
    ("not json", "JSON"),
])
def test_crafted_journal_refused(run, new_bundle, tmp_path, keys, journal, why):
    root = tmp_path / "root"
    old_frontend(root, keys)
    path = root / "etc/cinc-project/.chpki-install-journal"
    path.write_text(journal if isinstance(journal, str) else json.dumps(journal))
    os.chmod(path, 0o600)
    before = state(root)
    h.assert_refused(run("install-frontend", new_bundle[0], "--root", root, "--force"), str(path), why, error="install.unsafe-path")
    assert state(root) == before


def test_two_forced_installs_in_one_second_both_keep_their_backup(run, new_bundle, chpki_bin, tmp_path, keys):
    """No "try again in a second": the second backup of a name in the same second gets -2."""
    root = tmp_path / "root"
    old = old_frontend(root, keys)
    c = fh.make_frontend(tmp_path / "C", pivotal_key=keys[2], webui_key=keys[3])
    other = tmp_path / "other.tgz"
    h.assert_ok(run("bundle-frontend", "--from", c.root, "--out", other))
    when = {"CHPKI_NOW": "2027-03-04T05:06:07Z"}
    h.assert_ok(run("install-frontend", new_bundle[0], "--root", root, "--force", env=when))
    h.assert_ok(run("install-frontend", other, "--root", root, "--force", env=when))
    now = files(root)
    pem = CINC["pivotal_pem"]
    assert now[pem + ".chpki-backup-20270304T050607Z"][1] == old[pem][1]
    assert now[pem + ".chpki-backup-20270304T050607Z-2"][1] == new_bundle[1][pem][1]
    assert now[pem][1] == old[pem][1]


def test_journal_is_rolled_forward_and_a_dry_run_only_says_so(run, new_bundle, tmp_path, keys):
    """A journal as a kill after the commit leaves it: pivotal.pem's temporary not yet renamed. A dry
    run says it is there and changes nothing; the real run renames it (keeping the old file) first."""
    root = tmp_path / "root"
    old = old_frontend(root, keys)
    pem = CINC["pivotal_pem"]
    etc = root / "etc/cinc-project"
    staged = etc / ".pivotal.pem.chpki-0123456789abcdef"
    staged.write_text(fh.pkcs1_pem(keys[0]))
    os.chmod(staged, 0o600)
    journal = etc / ".chpki-install-journal"
    journal.write_text(json.dumps({"format": "chpki-install-journal-1", "entries": [
        {"path": pem, "temporary": staged.name, "backup": "pivotal.pem.chpki-backup-20270101T000000Z"}]}))
    os.chmod(journal, 0o600)
    before = state(root)
    res = h.assert_ok(run("install-frontend", new_bundle[0], "--root", root, "--force", "--dry-run"))
    assert "interrupted install is journaled" in res.stderr and str(journal) in res.stderr, h.describe(res)
    assert state(root) == before
    res = h.assert_ok(run("install-frontend", new_bundle[0], "--root", root, "--force"))
    assert "finished an interrupted install (1 file" in res.stderr, h.describe(res)
    now = files(root)
    assert now[pem + ".chpki-backup-20270101T000000Z"] == old[pem]
    assert {p: v for p, v in now.items() if p in new_bundle[1]} == new_bundle[1]
    assert leftovers(root) == []
