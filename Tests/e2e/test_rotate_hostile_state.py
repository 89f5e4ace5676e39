"""A crafted record in chpki-rotate's --state directory runs nothing and deletes nothing (SPEC §8:
"Nothing read from outside is ever run through a shell", issue 16).

The hosts are reached through an `ssh` stand-in on PATH that does what OpenSSH does with its
arguments — joins them with spaces into one string for the remote shell — and runs that string
with `sh -c` inside a scratch root per host (a chroot in a user and mount namespace, the system's
/usr bound read-only), so a payload that escapes does its damage there, where the test sees it.
The default run template is used as shipped (a removal is `rm -f -- PATH` quoted for the remote shell). The records are crafted as an attacker with write
access to the state directory would: a valid record of the host plus one hostile entry.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import subprocess
from pathlib import Path

import pytest

import helpers as h
from conftest import clean_env
from test_rotate_changes import ROTATE, Rig

HOST = "haproxy-1.chpki.test"
SHORT = "haproxy-1"

SSH_STANDIN = r'''#!/bin/bash
# ssh stand-in: options dropped, [user@]host, then the rest joined with spaces (as OpenSSH sends
# it) and run by sh -c in $SSH_ROOTS/<host> as its / (the system's /usr read-only, /usr/local
# the scratch root's .usr-local), stdin passed through.
while [ $# -gt 0 ]; do case $1 in -o|-p|-i|-l) shift 2 ;; -*) shift ;; *) break ;; esac; done
host=${1#*@}; shift
cmd="$*"
root=$SSH_ROOTS/$host
mkdir -p "$root"
printf '%s\t%s\n' "$host" "$cmd" >> "$SSH_LOG"
exec unshare -Urm /bin/sh -c '
for d in usr bin lib lib64 sbin; do
    [ -e "/$d" ] || continue
    if [ -L "/$d" ]; then [ -L "$1/$d" ] || ln -s "$(readlink "/$d")" "$1/$d"
    else mkdir -p "$1/$d" && mount --rbind "/$d" "$1/$d" && mount -o remount,bind,ro "$1/$d"; fi
done
# the host /usr/local (trust anchors land there), inside the scratch root
mkdir -p "$1/.usr-local" && mount --bind "$1/.usr-local" "$1/usr/local"
exec chroot "$1" /bin/sh -c "$2"' sh "$root" "$cmd"
'''


def namespaces_work() -> bool:
    res = subprocess.run(["unshare", "-Urm", "true"], capture_output=True, timeout=30)
    return res.returncode == 0


pytestmark = pytest.mark.skipif(not namespaces_work(), reason="needs unprivileged user and mount namespaces (unshare -Urm)")


class HostileRig(Rig):
    """The Rig of test_rotate_changes, but every command goes through the ssh stand-in: the
    shipped default run template, a copy that untars without owners (a user namespace maps only
    root) and operations that echo their service on the host."""

    def __init__(self, chpki_bin, tmp_path: Path):
        super().__init__(chpki_bin, tmp_path)
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        ssh = self.bin / "ssh"
        ssh.write_text(SSH_STANDIN)
        ssh.chmod(0o755)
        self.roots = tmp_path / "hosts"
        self.ssh_log = tmp_path / "ssh.log"
        self.copy = "ssh -o BatchMode=yes root@{host} tar -xzf - --no-same-owner -C /"
        self.run_template = None  # the default: ssh -o BatchMode=yes root@{host} {command_sh}
        self.operations.write_text("".join(f"{s}: {{on_leaf: [[echo, reloaded, {s}]], on_trust: [[echo, reloaded, {s}]], health: []}}\n"
                                           for s in ("haproxy", "trust")))

    def run(self, *args, env=None, state: bool = True) -> subprocess.CompletedProcess:
        extra = {"PATH": f"{self.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}", "SSH_ROOTS": str(self.roots),
                 "SSH_LOG": str(self.ssh_log), **(env or {})}
        return subprocess.run(self.argv("--hosts", SHORT, *args, state=state), cwd=str(self.ca.base), env=clean_env(extra),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)

    def commands(self) -> list[str]:
        return self.ssh_log.read_text().splitlines() if self.ssh_log.exists() else []


@pytest.fixture
def rig(chpki_bin, tmp_path):
    rig = HostileRig(chpki_bin, tmp_path)
    rig.ok("--no-renew")
    root = rig.roots / HOST
    assert (root / "etc/ssl/haproxy").is_dir(), "scenario: the first run installed the host through the stand-in"
    # what a payload would destroy: files the host has that chpki never wrote
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "etc/keep").write_text("keep\n")
    (root / "top-level-file").write_text("keep\n")
    rig.ssh_log.unlink()
    return rig


def record_path(rig) -> Path:
    return rig.state / f"{HOST}.json"


def plant(rig, path: str, service: str = "haproxy") -> dict:
    """The host's real record plus one file entry the new bundle does not have (so a plan would
    remove it and reload its service)."""
    record = json.loads(record_path(rig).read_text())
    record["files"].append({"path": path, "sha256": "0" * 64, "owner": "root", "group": "root", "mode": "0600",
                            "service": service, "role": "leaf"})
    record_path(rig).write_text(json.dumps(record, indent=2))
    return record


PAYLOADS = [
    pytest.param("etc/ /*", "haproxy", "files[", id="space-glob"),
    pytest.param("etc/x;touch X", "haproxy", "files[", id="semicolon"),
    pytest.param("etc/passwd", "haproxy", "files[", id="not-chpkis-path"),
    pytest.param("etc/ssl/haproxy/old-vip.example.com.pem", "x[$(touch {marker})]", ".service", id="service-subscript"),
]


@pytest.mark.parametrize("path,service,field", PAYLOADS)
def test_a_crafted_record_runs_nothing_and_deletes_nothing(rig, tmp_path, path, service, field):
    marker = tmp_path / "controller-pwned"
    service = service.replace("{marker}", str(marker))
    plant(rig, path, service)
    state_before = h.snapshot(rig.state)
    host_before = h.snapshot(rig.roots / HOST)

    res = rig.run("--no-renew")

    assert res.returncode == 2, h.describe(res)
    errors = [l for l in res.stderr.splitlines() if "error" in l]
    assert errors and str(record_path(rig)) in errors[0] and field in errors[0], h.describe(res)
    assert rig.commands() == [], f"commands reached the host: {rig.commands()}"
    assert not [l for l in res.stdout.splitlines() if l.startswith("+ ")], "refused, yet a step ran: " + res.stdout
    assert h.snapshot(rig.roots / HOST) == host_before, "the host's files changed"
    assert h.snapshot(rig.state) == state_before, "the record was touched"
    assert not marker.exists(), "the service name was evaluated on the controller"
    assert not (rig.roots / HOST / "X").exists() and not (Path(rig.ca.base) / "X").exists()

    # the same record through the whole --dry-run path: refused too, nothing shown to run
    dry = rig.run("--no-renew", "--dry-run")
    assert dry.returncode == 2 and not marker.exists() and rig.commands() == [], h.describe(dry)


def test_a_dropped_file_is_removed_on_the_host(rig):
    """A real dropped path still goes: on the host, by `rm -f -- PATH` through the shipped run
    template (the path is a checked one, quoted for the remote shell as one word)."""
    root = rig.roots / HOST
    stale = "etc/ssl/haproxy/old-vip.chpki.test.pem"
    (root / stale).write_text("stale key\n")
    plant(rig, stale)
    res = rig.ok("--no-renew")
    assert not (root / stale).exists(), h.describe(res)
    removes = [c for c in rig.commands() if "rm" in c]
    assert removes == [f"{HOST}\trm -f -- /{stale}"], rig.commands()
    for keep in ("etc/passwd", "etc/keep", "top-level-file"):
        assert (root / keep).exists(), keep


def mutations(base: bytes, rng: random.Random, count: int):
    """Byte flips, cuts, splices and JSON-level edits of a valid manifest."""
    doc = json.loads(base)
    tokens = [b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b"\x00", b"\n", b"1e999999", b"-1", b'"\\ud800"',
              b"null", b"true", b"../", b"/", b"$(touch x)", b"\xff\xfe", b"9" * 40]
    for i in range(count):
        kind = i % 4
        if kind == 0:
            data = bytearray(base)
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            yield bytes(data)
        elif kind == 1:
            a = rng.randrange(len(base))
            yield base[:a] + rng.choice(tokens) + base[a + rng.randint(0, 30):]
        elif kind == 2:
            yield base[:rng.randrange(len(base))]
        else:
            d = json.loads(json.dumps(doc))
            section = rng.choice(["files", "directories"])
            entries = d[section]
            value = rng.choice(["", ".", "..", "a/../b", "/etc/passwd", "etc//x", "x" * 5000, 7, None, [], {}, "é",
                                "etc/ssl/haproxy/" + "a" * 300 + ".pem", "UPPER", "a\nb", "-rf"])
            if entries:
                entry = rng.choice(entries)
                entry[rng.choice(["path", "sha256", "owner", "group", "mode", "service"])] = value
            else:
                d[rng.choice(["host", "format", "generator", "services", "ca_sha256"])] = value
            if rng.random() < 0.2:
                d = [d] * rng.randint(0, 3) if rng.random() < 0.5 else {"a": d}
            yield json.dumps(d).encode()


def test_mutated_records_are_refused_or_read_never_crash(rig, tmp_path):
    new = rig.out / HOST / "var/lib/chpki/MANIFEST.json"
    base = new.read_bytes()
    rng = random.Random(16)
    outcomes = {0: 0, 2: 0}
    mutated = tmp_path / "mutated.json"
    for data in mutations(base, rng, 300):
        mutated.write_bytes(data)
        res = subprocess.run([str(rig.ca.tool.path), "rollout-plan", "--recorded", str(mutated), "--new", str(new), "--tsv"],
                             capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        assert res.returncode in (0, 2), f"exit {res.returncode} for {data[:300]!r}: {res.stderr[-2000:]!r}"
        outcomes[res.returncode] += 1
        if res.returncode == 2:
            assert res.stdout == b"", "a refused record still printed a plan"
            assert len(res.stderr.decode(errors="replace").strip().splitlines()) == 1, res.stderr
        else:
            # a record that passed holds only what chpki lays out: the plan's paths and names are plain
            for line in res.stdout.decode().splitlines():
                fields = line.split("\t")
                assert fields[0] in ("host", "remove", "reload", "left"), line
                if fields[0] == "remove":
                    assert all(c.isalnum() or c in "/._-" for c in fields[2]) and "/../" not in fields[2] + "/", line
    assert outcomes[2] > 200, outcomes
