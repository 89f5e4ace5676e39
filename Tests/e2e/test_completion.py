"""Shell completion (issue 20): the scripts chpki generates complete file and directory paths where
an argument is one, template names for `templates show`, and the inventory's hosts and services
where an argument names them. Checked in a real bash with bash-completion, and in zsh and fish
when they are installed (scripts/test installs them), by calling the scripts the way the shells do
at TAB, with chpki on PATH (custom completions run `chpki ---completion`)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

INVENTORY = """\
domain: example.com
hosts:
  - name: backend-1.example.com
    ips: [10.0.0.11]
    groups: [backend]
  - name: backend-2.example.com
    ips: [10.0.0.12]
    groups: [backend]
services:
  etcd:
    hosts: backend
"""


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
    (work / "inventories" / "cluster-a.yml").write_text(INVENTORY)
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
    assert bash_complete(shell_dir, "chpki --ca-dir inv") == ["inventories"]


def test_bash_completes_template_names(shell_dir):
    assert bash_complete(shell_dir, "chpki templates show pg_") == ["pg_hba.conf", "pg_ident.conf"]


def test_bash_completes_hosts_and_services_from_the_inventory(shell_dir):
    inventory = "--inventory inventories/cluster-a.yml"
    assert bash_complete(shell_dir, f"chpki bundle {inventory} --host backend-1") == ["backend-1", "backend-1.example.com"]
    assert bash_complete(shell_dir, f"chpki bundle {inventory} et") == ["etcd"]
    assert bash_complete(shell_dir, f"chpki revoke {inventory} backend-2/") == ["backend-2/etcd"]
    assert bash_complete(shell_dir, f"chpki issue server {inventory} --host backend-2") == ["backend-2", "backend-2.example.com"]
    # No inventory (none named, no ./cluster.yml): nothing offered, and no error in the prompt.
    assert bash_complete(shell_dir, "chpki bundle --host b") == []


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (scripts/test installs it)")
def test_zsh_completes_inventory_path_and_template_name(shell_dir):
    # zsh's completion widgets need a terminal; zpty gives one, as in an interactive shell.
    def complete(line: str) -> str:
        script = f"""
            autoload -Uz compinit && compinit -u -D
            fpath=({shlex.quote(str(shell_dir))} $fpath)
            source {shlex.quote(str(shell_dir / "completion.zsh"))}
            zmodload zsh/zpty
            zpty -b z 'zsh -f -i'
            zpty -w z 'PS1=; PATH={shell_dir / "bin"}:$PATH; cd {shell_dir / "work"}'
            zpty -w z 'autoload -Uz compinit && compinit -u -D; source {shell_dir / "completion.zsh"}'
            zpty -w z 'zstyle ":completion:*" list-lines 1000; setopt nolistambiguous'
            zpty -w -n z {shlex.quote(line)}$'\\t'
            sleep 2
            zpty -r z out '*' ; print -r -- "$out"
            zpty -d z
        """
        res = subprocess.run(["zsh", "-f", "-c", script], capture_output=True, text=True, timeout=60,
                             env={"PATH": "/usr/bin:/bin", "HOME": str(shell_dir), "LANG": "C.UTF-8", "TERM": "dumb"})
        return res.stdout + res.stderr

    assert "inventories/cluster-a.yml" in complete("chpki issue --inventory inventories/cl")
    assert "pg_ident.conf" in complete("chpki templates show pg_i")


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed (scripts/test installs it)")
def test_fish_completes_inventory_path_and_template_name(shell_dir):
    def complete(line: str) -> list[str]:
        script = f"source {shlex.quote(str(shell_dir / 'completion.fish'))}; complete --do-complete {shlex.quote(line)}"
        res = subprocess.run(["fish", "--no-config", "-c", script], cwd=shell_dir / "work", capture_output=True, text=True,
                             timeout=60, env={"PATH": f"{shell_dir / 'bin'}:/usr/bin:/bin", "HOME": str(shell_dir),
                                              "LANG": "C.UTF-8"})
        assert res.returncode == 0, res.stderr
        return [line.split("\t")[0] for line in res.stdout.splitlines()]

    assert "inventories/cluster-a.yml" in complete("chpki issue --inventory inventories/cl")
    assert complete("chpki templates show pg_") == ["pg_hba.conf", "pg_ident.conf"]
    assert "backend-1.example.com" in complete("chpki bundle --inventory inventories/cluster-a.yml --host backend-1")
