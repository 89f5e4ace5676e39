"""Shell completion (issue 20): the scripts chpki generates complete file and directory paths where
an argument is one, template names for `templates show`, and the inventory's hosts and services
where an argument names them. Checked in a real bash with bash-completion, and in zsh and fish
when they are installed (scripts/test installs them), by calling the scripts the way the shells do
at TAB, with chpki on PATH (custom completions run `chpki ---completion`)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

import helpers as h


@pytest.fixture
def shell_dir(chpki_bin, tmp_path) -> Path:
    """A working directory with files to complete, and a bin/ with chpki and its scripts."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "chpki").symlink_to(chpki_bin)
    for shell in ("bash", "zsh", "fish"):
        script = subprocess.run([str(chpki_bin), "--generate-completion-script", shell], check=True, capture_output=True,
                                text=True).stdout
        (tmp_path / f"completion.{shell}").write_text(script)
    work = tmp_path / "work"
    (work / "inventories").mkdir(parents=True)
    (work / "inventories" / "cluster-a.yml").write_text(h.FULL_INVENTORY)
    (work / "pass-dir").mkdir()
    (work / "pass-dir" / "ca.pass").write_text("x\n")
    return tmp_path


def bash_complete(base: Path, line: str) -> list[str]:
    """COMPREPLY of the chpki bash completion for the command line `line` (cursor at its end)."""
    words = line.split(" ")
    script = f"""
        source /usr/share/bash-completion/bash_completion
        source {shlex.quote(str(base / "completion.bash"))}
        COMP_LINE={shlex.quote(line)}; COMP_POINT=${{#COMP_LINE}}
        COMP_WORDS=({" ".join(shlex.quote(w) for w in words)}); COMP_CWORD={len(words) - 1}
        _chpki chpki {shlex.quote(words[-1])} {shlex.quote(words[-2])}
        printf 'reply:%s\\n' "${{COMPREPLY[@]}}"
    """
    res = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], cwd=base / "work", capture_output=True, text=True,
                         env={"PATH": f"{base / 'bin'}:/usr/bin:/bin", "HOME": str(base), "LANG": "C.UTF-8"}, timeout=60)
    assert res.returncode == 0, res.stderr
    return sorted(line[len("reply:"):] for line in res.stdout.splitlines() if line.startswith("reply:") and line != "reply:")


def test_bash_completes_paths_for_file_and_directory_options(shell_dir):
    assert bash_complete(shell_dir, "chpki issue --inventory inventories/cl") == ["inventories/cluster-a.yml"]
    assert bash_complete(shell_dir, "chpki issue --passphrase-file pass-dir/") == ["pass-dir/ca.pass"]
    assert bash_complete(shell_dir, "chpki inspect inv") == ["inventories"]
    assert bash_complete(shell_dir, "chpki install-frontend pass-dir/c") == ["pass-dir/ca.pass"]
    # A directory option offers directories only.
    assert bash_complete(shell_dir, "chpki bundle --out pass") == ["pass-dir"]
    assert bash_complete(shell_dir, "chpki list --ca-dir inv") == ["inventories"]


def test_bash_completes_template_names(shell_dir):
    assert bash_complete(shell_dir, "chpki templates show pg_") == ["pg_hba.conf", "pg_ident.conf"]


def test_bash_completes_hosts_and_services_from_the_inventory(shell_dir):
    inventory = "--inventory inventories/cluster-a.yml"
    assert bash_complete(shell_dir, f"chpki bundle {inventory} --host backend-1") == ["backend-1", "backend-1.example.com"]
    assert bash_complete(shell_dir, f"chpki bundle {inventory} et") == ["etcd"]
    assert bash_complete(shell_dir, f"chpki revoke {inventory} haproxy-1/") == ["haproxy-1/haproxy"]
    assert bash_complete(shell_dir, f"chpki issue server {inventory} --host fr") == ["frontend-1", "frontend-1.example.com"]
    # No inventory (none named, no ./cluster.yml): nothing offered, and no error in the prompt.
    assert bash_complete(shell_dir, "chpki bundle --host b") == []


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (scripts/test installs it)")
def test_zsh_completes_inventory_path_and_template_name(shell_dir):
    """An interactive zsh on a pseudo-terminal (zpty) with the script on fpath and compinit, as a
    user's shell: the line after TAB, where a single candidate is inserted."""
    functions = shell_dir / "zsh-functions"
    functions.mkdir()
    (functions / "_chpki").write_text((shell_dir / "completion.zsh").read_text())

    def complete(line: str) -> str:
        setup = (f"PS1='PROMPT> '; PATH={shlex.quote(str(shell_dir / 'bin'))}:$PATH; cd {shlex.quote(str(shell_dir / 'work'))}; "
                 f"fpath=({shlex.quote(str(functions))} $fpath); autoload -Uz compinit; compinit -u -D; echo READY")
        script = f"""
            zmodload zsh/zpty
            zpty -b z 'zsh -f -i'
            zpty -w z {shlex.quote(setup)}
            zpty -r z out '*READY*'
            zpty -r z out '*PROMPT> '
            zpty -w -n z {shlex.quote(line)}$'\\t'
            sleep 3
            zpty -r -t z out
            print -r -- "$out"
            zpty -d z
        """
        res = subprocess.run(["zsh", "-f", "-c", script], capture_output=True, text=True, timeout=60,
                             env={"PATH": "/usr/bin:/bin", "HOME": str(shell_dir), "LANG": "C.UTF-8", "TERM": "xterm"})
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|.\x08", "", res.stdout)

    assert "chpki issue --inventory inventories/cluster-a.yml" in complete("chpki issue --inventory inventories/cl")
    assert "chpki templates show pg_ident.conf" in complete("chpki templates show pg_i")


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed (scripts/test installs it)")
def test_fish_completes_inventory_path_and_template_name(shell_dir):
    # Interactive (-i): the script reads the command line with `commandline`, which a
    # non-interactive fish refuses. (fish 3 does not give `complete --do-complete` the cursor's
    # token, so the inventory's hosts, a custom completion, are checked in bash.)
    def complete(line: str) -> list[str]:
        script = f"source {shlex.quote(str(shell_dir / 'completion.fish'))}; complete --do-complete {shlex.quote(line)}"
        res = subprocess.run(["fish", "--no-config", "-i", "-c", script], cwd=shell_dir / "work", capture_output=True, text=True,
                             timeout=60, env={"PATH": f"{shell_dir / 'bin'}:/usr/bin:/bin", "HOME": str(shell_dir),
                                              "LANG": "C.UTF-8"})
        assert res.returncode == 0, res.stderr
        return [line.split("\t")[0] for line in res.stdout.splitlines()]

    assert "inventories/cluster-a.yml" in complete("chpki issue --inventory inventories/cl")
    assert complete("chpki templates show pg_") == ["pg_hba.conf", "pg_ident.conf"]
