"""Progress (SPEC §7): `issue` and `bundle` redraw one progress line in place on stderr when it is
a terminal (a real pty here), and print nothing of it when stderr is a pipe."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

import pytest

import helpers as h
from conftest import clean_env

HOSTS = 2000


def big_inventory(hosts: int) -> str:
    lines = ["domain: example.com", "hosts:"]
    for i in range(hosts):
        lines.append(f"  - name: node-{i}.example.com")
        lines.append(f"    ips: [10.{i // 250}.{i % 250}.1]")
        lines.append("    groups: [backend]")
    lines += ["services:", "  etcd: { hosts: backend, server_cert_mode: both, enable_client: false }"]
    return "\n".join(lines) + "\n"


def run_on_pty(argv: list[str], cwd: Path, env: dict) -> tuple[int, str, str, float]:
    """Runs argv with stderr on a pty (stdout to a pipe); returns (status, stdout, pty text, seconds)."""
    master, slave = pty.openpty()
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=str(cwd), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=slave, start_new_session=True)
    os.close(slave)
    chunks: list[bytes] = []
    stdout_chunks: list[bytes] = []
    assert proc.stdout is not None
    open_fds = {master, proc.stdout.fileno()}
    deadline = started + 600
    while open_fds and time.monotonic() < deadline:
        ready, _, _ = select.select(list(open_fds), [], [], 1.0)
        for fd in ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the pty's other side closed
                data = b""
            if not data:
                open_fds.discard(fd)
            elif fd == master:
                chunks.append(data)
            else:
                stdout_chunks.append(data)
    status = proc.wait(timeout=60)
    elapsed = time.monotonic() - started
    os.close(master)
    return status, b"".join(stdout_chunks).decode(), b"".join(chunks).decode(errors="replace"), elapsed


@pytest.fixture(scope="module")
def big_ca(chpki_bin, tmp_path_factory):
    work = tmp_path_factory.mktemp("progress")
    (work / "cluster.yml").write_text(big_inventory(HOSTS))
    (work / "pass").write_text(h.PASSPHRASE + "\n")
    res = subprocess.run([str(chpki_bin), "init-ca", "--name-constraints", "none", "--passphrase-file", "pass"],
                         cwd=work, env=clean_env(), capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stderr
    return work


def frames(text: str, label: str) -> list[str]:
    return [f for f in text.split("\r") if label in f]


def test_issue_shows_progress_on_a_tty_and_nothing_when_piped(chpki_bin, big_ca, tmp_path):
    # Piped first (a dry run changes nothing): no progress at all.
    res = subprocess.run([str(chpki_bin), "issue", "--dry-run"], cwd=big_ca, env=clean_env(), capture_output=True, text=True,
                         stdin=subprocess.DEVNULL)
    assert res.returncode == 0 and "\r" not in res.stderr and "signing" not in res.stderr, res.stderr
    status, stdout, tty, elapsed = run_on_pty([str(chpki_bin), "issue", "--passphrase-file", "pass"], big_ca, clean_env())
    assert status == 0, tty
    updates = frames(tty, "signing certificates")
    assert len(updates) >= 2, f"expected progress redrawn in place during {elapsed:.1f}s, got {tty!r}"
    # count/total, a rate, and time left while running; the final frame says how long it took.
    assert any(re.search(r"\d[\d,]*/2,000\s+[\d,]+/s\s+\S+ left", f) for f in updates[:-1]), updates[:3]
    # The last frame is the final count and the time taken, then a newline (the pty makes it \r\n).
    assert re.search(r"2,000/2,000\s+[\d,]+/s\s+in \S+\r?\n", tty), updates[-1]
    # At most ~10 redraws a second (plus the final one).
    assert len(updates) <= elapsed * 10 + 2, (len(updates), elapsed)
    counts = [int(m.group(1).replace(",", "")) for f in updates if (m := re.search(r"([\d,]+)/2,000 ", f))]
    assert counts == sorted(counts), "the count never goes back"
    assert f"{HOSTS} issued" in stdout and "next: chpki bundle" in stdout
    # The plan table stays on stdout, free of progress.
    assert "\r" not in stdout


BUNDLE_HOSTS = 60


@pytest.fixture(scope="module")
def small_ca(chpki_bin, tmp_path_factory):
    """A smaller cluster for bundle: a debug build lays out hosts far slower than it signs."""
    work = tmp_path_factory.mktemp("progress-bundle")
    (work / "cluster.yml").write_text(big_inventory(BUNDLE_HOSTS))
    (work / "pass").write_text(h.PASSPHRASE + "\n")
    for args in (["init-ca", "--name-constraints", "none"], ["issue"]):
        res = subprocess.run([str(chpki_bin), *args, "--passphrase-file", "pass"], cwd=work, env=clean_env(),
                             capture_output=True, text=True, stdin=subprocess.DEVNULL)
        assert res.returncode == 0, res.stderr
    return work


def test_bundle_shows_progress_on_a_tty_and_nothing_when_piped(chpki_bin, small_ca, tmp_path):
    # CHPKI_PROGRESS_FIRST_MS=0: draw from the first host, so a small cluster shows its progress.
    env = clean_env({"CHPKI_PROGRESS_FIRST_MS": "0"})
    piped = subprocess.run([str(chpki_bin), "bundle", "--passphrase-file", "pass", "--out", str(tmp_path / "piped")], cwd=small_ca, env=env,
                           capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert piped.returncode == 0, piped.stderr
    assert "\r" not in piped.stderr and "hosts" not in piped.stderr, piped.stderr
    status, stdout, tty, elapsed = run_on_pty([str(chpki_bin), "bundle", "--passphrase-file", "pass", "--out", str(tmp_path / "tty")], small_ca, env)
    assert status == 0, tty
    updates = frames(tty, "laying out hosts")
    assert len(updates) >= 1, tty[:2000]
    assert len(updates) <= elapsed * 10 + 2, (len(updates), elapsed)
    assert re.search(rf"{BUNDLE_HOSTS}/{BUNDLE_HOSTS}\s+[\d,]+/s\s+in \S+\r?\n", tty), updates[-1:]
    assert "next: " in stdout and "\r" not in stdout


def test_quiet_shows_no_progress_even_on_a_tty(chpki_bin, small_ca, tmp_path):
    env = clean_env({"CHPKI_PROGRESS_FIRST_MS": "0"})
    status, stdout, tty, _ = run_on_pty([str(chpki_bin), "bundle", "-q", "--passphrase-file", "pass", "--out", str(tmp_path / "q")], small_ca, env)
    assert status == 0, tty
    assert tty == "" and stdout == "", (tty[:500], stdout[:500])
