"""Process hygiene (SPEC §8): a Ctrl-C or SIGTERM at the passphrase prompt restores the terminal
(the termios ECHO flag, read from the pty by Python, not by chpki) and exits 130/143; a chpki that
is aborted while it may hold a secret leaves no core dump even under `ulimit -c unlimited`, which
a control process in the same conditions shows would otherwise be written."""

from __future__ import annotations

import os
import pty
import resource
import select
import signal
import subprocess
import termios
import time
from pathlib import Path

import pytest

import helpers as h
from conftest import Chpki, clean_env


@pytest.fixture
def ca(chpki_bin, tmp_path, passphrase_file):
    base = tmp_path / "site"
    base.mkdir()
    h.assert_ok(Chpki(chpki_bin, base).run("init-ca", "--passphrase-file", passphrase_file))
    return base


def spawn_at_prompt(chpki_bin: Path, cwd: Path, *args, core_unlimited=False):
    """chpki on a new pty, stopped at its passphrase prompt: (pid, master fd)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its own session, the pty as controlling terminal
        try:
            os.chdir(cwd)
            if core_unlimited:
                resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            os.execve(str(chpki_bin), [str(chpki_bin), *args], clean_env())
        finally:
            os._exit(127)
    seen = b""
    deadline = time.monotonic() + 60
    while b"Passphrase" not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if ready:
            try:
                seen += os.read(fd, 1024)
            except OSError:
                break
    assert b"Passphrase" in seen, f"no prompt: {seen!r}"
    # the prompt is written before echo goes off: wait for the flag
    while termios.tcgetattr(fd)[3] & termios.ECHO and time.monotonic() < deadline:
        time.sleep(0.02)
    return pid, fd


def wait(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return status


@pytest.mark.parametrize("how,code", [("ctrl-c", 130), ("sigterm", 143)])
def test_interrupted_prompt_restores_echo(chpki_bin, ca, how, code):
    pid, fd = spawn_at_prompt(chpki_bin, ca, "crl")
    try:
        assert not termios.tcgetattr(fd)[3] & termios.ECHO, "echo should be off at the prompt"
        if how == "ctrl-c":
            os.write(fd, b"\x03")  # the line discipline turns it into SIGINT for the foreground group
        else:
            os.kill(pid, signal.SIGTERM)
        status = wait(pid)
        assert os.waitstatus_to_exitcode(status) == code
        assert termios.tcgetattr(fd)[3] & termios.ECHO, "echo is still off after the interrupted prompt"
        assert termios.tcgetattr(fd)[3] & termios.ICANON
    finally:
        os.close(fd)


def test_no_core_dump_and_core_limit_zero(chpki_bin, ca, tmp_path):
    cores = tmp_path / "cores"
    cores.mkdir()
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    # Control: any process aborted with these limits in this directory leaves a core (or the
    # kernel reports one); without that, the check below could not fail.
    control = subprocess.Popen(["sleep", "60"], cwd=cores,
                               preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE,
                                                                     (resource.RLIM_INFINITY, resource.RLIM_INFINITY)))
    time.sleep(0.2)
    control.send_signal(signal.SIGABRT)
    control_status = wait(control.pid)
    control_dumped = os.WCOREDUMP(control_status)
    for p in cores.iterdir():
        p.unlink()

    pid, fd = spawn_at_prompt(chpki_bin, cores, "crl", "--ca-dir", str(ca / "ca"), core_unlimited=True)
    try:
        limits = Path(f"/proc/{pid}/limits").read_text()
        core_line = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
        assert core_line.split()[4:6] == ["0", "0"], core_line
        os.kill(pid, signal.SIGABRT)
        status = wait(pid)
        # Killed by the signal, or ended by the Swift runtime's crash reporter: either way, no core.
        assert os.WIFSIGNALED(status) or os.WIFEXITED(status), status
        assert not (os.WIFSIGNALED(status) and os.WCOREDUMP(status)), "chpki dumped core"
        assert list(cores.iterdir()) == [], f"core files: {list(cores.iterdir())}"
    finally:
        os.close(fd)
    # Where the control dumped core, "no core" above was a real check; elsewhere (a core_pattern
    # that discards cores) the limit of 0 is what proves the fix.
    print(f"control process dumped core: {control_dumped} (core_pattern {pattern!r})")
