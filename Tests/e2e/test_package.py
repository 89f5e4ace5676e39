"""The installed tool (SPEC §7): the .deb of `scripts/package`, extracted into a scratch root, run
from /tmp with the Swift toolchain hidden, checked with dpkg, ldd, man, bash-completion and
systemd-analyze rather than with chpki itself."""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

import package_support as ps



@pytest.fixture(scope="module", autouse=True)
def as_root():
    assert os.geteuid() == 0, "needs root: unshare -m and mount hide the toolchain"


@pytest.fixture(scope="module")
def deb() -> Path:
    return ps.built_package()


@pytest.fixture(scope="module")
def root(deb, tmp_path_factory) -> Path:
    return ps.extract(deb, tmp_path_factory.mktemp("installed"))


def test_package_name_version_and_depends(deb, root):
    control = (root / "DEBIAN" / "control").read_text()
    fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", control, re.M))
    assert fields["Package"] == "chpki"
    arch = subprocess.run(["dpkg", "--print-architecture"], check=True, capture_output=True, text=True).stdout.strip()
    assert deb.name == f"chpki_{fields['Version']}_{arch}.deb"
    count = subprocess.run(["git", "-C", str(ps.REPO), "rev-list", "--count", "HEAD"], check=True, capture_output=True,
                           text=True).stdout.strip()
    assert re.fullmatch(rf"\d+\.\d+\.\d+\+{count}\.g[0-9a-f]{{10}}(\.dirty)?", fields["Version"]), fields["Version"]
    depends = {d.split()[0] for d in fields["Depends"].split(",")}
    assert {"libc6", "libssl3", "libsqlite3-0", "zlib1g"} <= depends, fields["Depends"]
    # Only the C runtime and the three libraries (libgcc/libstdc++ come with the C runtime).
    assert depends <= {"libc6", "libssl3", "libsqlite3-0", "zlib1g", "libgcc-s1", "libstdc++6"}, fields["Depends"]
    assert "swift" not in fields["Depends"].lower()
    # dpkg itself accepts the package (control syntax, md5sums match).
    res = subprocess.run(["dpkg-deb", "--info", str(deb)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_package_holds_every_installed_file(root):
    expected = [
        "usr/bin/chpki", "usr/bin/chpki-rotate", "usr/share/man/man1/chpki.1.gz", "usr/share/man/man1/chpki-rotate.1.gz",
        "usr/share/bash-completion/completions/chpki", "usr/share/zsh/vendor-completions/_chpki",
        "usr/share/fish/vendor_completions.d/chpki.fish",
        "usr/lib/systemd/system/chpki-expiring.service", "usr/lib/systemd/system/chpki-expiring.timer",
        "usr/lib/systemd/system/chpki-renew.service", "usr/lib/systemd/system/chpki-renew.timer",
        "usr/share/doc/chpki/README.md", "usr/share/doc/chpki/copyright", "usr/share/doc/chpki/docs/operations.md",
        "usr/share/doc/chpki/docs/spec.md", "usr/share/doc/chpki/docs/reference/README.md",
        "usr/share/chpki/examples/reference-000.yml", "usr/share/chpki/examples/chpki.env",
        "usr/share/chpki/templates/opensearch-security.yml.mustache",
    ]
    missing = [p for p in expected if not (root / p).is_file()]
    assert not missing, missing
    assert os.access(root / "usr/bin/chpki", os.X_OK) and os.access(root / "usr/bin/chpki-rotate", os.X_OK)
    assert (root / "usr/bin/chpki-rotate").read_bytes() == (ps.REPO / "scripts/chpki-rotate").read_bytes()
    shipped = {p.name for p in (root / "usr/share/chpki/templates").glob("*.mustache")}
    assert shipped == {p.name for p in (ps.REPO / "templates").glob("*.mustache")}


def test_binary_links_no_swift_runtime(root):
    binary = root / "usr/bin/chpki"
    ldd = subprocess.run(["ldd", str(binary)], check=True, capture_output=True, text=True).stdout
    assert "libswift" not in ldd and "/opt/swift" not in ldd and "libFoundation" not in ldd, ldd
    for lib in ("libssl.so.3", "libcrypto.so.3", "libsqlite3.so.0", "libz.so.1"):
        assert lib in ldd, f"{lib} not linked:\n{ldd}"
    # Stripped: no symbol table, no debug sections.
    sections = subprocess.run(["readelf", "-S", "-W", str(binary)], check=True, capture_output=True, text=True).stdout
    assert ".symtab" not in sections and ".debug_info" not in sections


def test_installed_demo_runs_anywhere_without_the_toolchain(root, tmp_path):
    chpki = shlex.quote(str(root / "usr/bin/chpki"))
    work = tmp_path / "cwd"
    work.mkdir()
    script = (f"test -z \"$(ls -A /opt/swift)\" && ! command -v swift && {chpki} --version && {chpki} templates list && "
              f"{chpki} demo --out demo && {chpki} demo --out demo2 --json > demo.json")
    res = ps.without_toolchain(script, work)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "built-in" in res.stdout and "opensearch-security.yml" in res.stdout
    # The snippets were rendered from the built-in templates (no templates/ anywhere near /tmp).
    snippet = (work / "demo/bundles/backend-1.example.com/etc/opensearch/opensearch-security.yml").read_text()
    # nodes_dn: one pattern per naming rule (a node added by the rule needs no restart of the others)
    assert "plugins.security.nodes_dn" in snippet and "/CN=backend-[0-9]+\\\\.example\\\\.com," in snippet, snippet
    assert (work / "demo/bundles/backend-1.example.com/etc/patroni/pg_hba.conf").read_text().strip()
    assert (work / "demo/bundles/backend-1.example.com.tar.gz").is_file()
    document = json.loads((work / "demo.json").read_text())
    assert [s["command"] for s in document["steps"]] == ["init-ca", "inspect", "issue", "nodes-dn", "bundle", "verify"]
    # The same binary with the toolchain visible fails nothing either, from another directory.
    res = ps.without_toolchain(f"{chpki} templates show pg_ident.conf", Path("/"), hide_toolchain=False)
    assert res.returncode == 0 and res.stdout == (ps.REPO / "templates/pg_ident.conf.mustache").read_text()


def test_version_is_the_package_version(deb, root):
    """`chpki --version` prints the package's full version (scripts/package compiles it in)."""
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True,
                             text=True).stdout.strip()
    res = subprocess.run([str(root / "usr/bin/chpki"), "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == version, (res.stdout, version)
    assert re.fullmatch(r"\d+\.\d+\.\d+\+\d+\.g[0-9a-f]{10}(\.dirty)?", version), version


MAN_SECTIONS = ("NAME", "SYNOPSIS", "DESCRIPTION", "ENVIRONMENT", "FILES", "EXIT STATUS", "EXAMPLES", "SEE ALSO")


def rendered(page: Path) -> tuple[str, str]:
    """(text, warnings) of `man --warnings -l PAGE`, rendered to a pipe."""
    res = subprocess.run(["man", "--warnings", "-l", "-P", "cat", str(page)], capture_output=True, text=True,
                         env={**os.environ, "MANWIDTH": "100", "LANG": "C.UTF-8"})
    assert res.returncode == 0, res.stderr
    return re.sub(r".\x08", "", res.stdout), res.stderr


def test_every_installed_command_has_a_warning_free_man_page_with_every_section(root):
    pages = root / "usr/share/man/man1"
    commands = sorted(p.name for p in (root / "usr/bin").iterdir())
    assert commands == ["chpki", "chpki-rotate"]
    for command in commands:
        text, warnings = rendered(pages / f"{command}.1.gz")
        assert warnings == "", f"man --warnings {command}.1: {warnings}"
        headings = re.findall(r"^([A-Z][A-Z ]+)$", text, re.M)
        missing = [s for s in MAN_SECTIONS if s not in headings]
        assert not missing, f"{command}.1 lacks {missing}; has {headings}"
        assert "chpki-rotate(1)" in text if command == "chpki" else "chpki(1)" in text


def test_chpki_man_page_has_every_subcommand_and_option(root):
    """From the binary's own description of itself: every subcommand path and option name."""
    dump = json.loads(subprocess.run([str(root / "usr/bin/chpki"), "--experimental-dump-help"], check=True,
                                     capture_output=True, text=True).stdout)
    text, _ = rendered(root / "usr/share/man/man1/chpki.1.gz")
    text = " ".join(text.split())
    missing = []

    def walk(command: dict, path: list[str]) -> None:
        if path and " ".join(path) not in text:
            missing.append(" ".join(path))
        for argument in command.get("arguments", []):
            if not argument.get("shouldDisplay", True):
                continue  # hidden from help on purpose (a compatibility spelling)
            for name in argument.get("names", []):
                flag = ("--" if name["kind"] == "long" else "-") + name["name"]
                if flag not in text and flag not in ("--help", "-h", "--version"):
                    missing.append(f"{' '.join(path)} {flag}")
        for sub in command.get("subcommands", []):
            walk(sub, path + [sub["commandName"]])

    walk(dump["command"], [])
    assert not missing, missing


def test_rotate_man_page_describes_every_option(root):
    help_text = subprocess.run([str(root / "usr/bin/chpki-rotate"), "--help"], check=True, capture_output=True,
                               text=True).stdout
    text, _ = rendered(root / "usr/share/man/man1/chpki-rotate.1.gz")
    options = set(re.findall(r"^\s+(--[a-z-]+)", help_text, re.M))
    assert {"--ca-dir", "--copy", "--run", "--operations", "--dry-run", "--state"} <= options
    missing = sorted(o for o in options if o not in text)
    assert not missing, missing


def test_man_page_renders(root):
    page = root / "usr/share/man/man1/chpki.1.gz"
    gzip.decompress(page.read_bytes())  # a valid gzip stream
    res = subprocess.run(["man", "-l", "-P", "cat", str(page)], capture_output=True, text=True,
                         env={**os.environ, "MANWIDTH": "100", "LANG": "C.UTF-8"})
    assert res.returncode == 0, res.stderr
    text = re.sub(r".\x08", "", res.stdout)
    assert "chpki" in text and "init-ca" in text and "bundle-frontend" in text
    assert "--dry-run" in text and "--passphrase-file" in text and "templates" in text


def test_bash_completion_completes_issue_dry_run(root):
    completion = root / "usr/share/bash-completion/completions/chpki"
    bin_dir = root / "usr/bin"
    script = f"""
        source {shlex.quote(str(completion))}
        complete -p chpki
        COMP_WORDS=(chpki issue --dr); COMP_CWORD=2; COMP_LINE='chpki issue --dr'; COMP_POINT=${{#COMP_LINE}}
        _chpki chpki --dr issue
        printf 'reply:%s\\n' "${{COMPREPLY[@]}}"
        COMP_WORDS=(chpki templates ''); COMP_CWORD=2; COMP_LINE='chpki templates '; COMP_POINT=${{#COMP_LINE}}; COMPREPLY=()
        _chpki chpki '' templates
        printf 'reply:%s\\n' "${{COMPREPLY[@]}}"
        COMP_WORDS=(chpki templates show pg_i); COMP_CWORD=3; COMP_LINE='chpki templates show pg_i'; COMP_POINT=${{#COMP_LINE}}; COMPREPLY=()
        _chpki chpki pg_i show
        printf 'reply:%s\\n' "${{COMPREPLY[@]}}"
    """
    res = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True, text=True,
                         env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert res.returncode == 0, res.stderr
    assert "complete -o filenames -F _chpki chpki" in res.stdout
    replies = [line[len("reply:"):] for line in res.stdout.splitlines() if line.startswith("reply:")]
    assert "--dry-run" in replies, res.stdout
    assert "list" in replies and "show" in replies, res.stdout
    assert "pg_ident.conf" in replies, res.stdout  # a template name (test_completion.py: paths, hosts)


def test_systemd_units_verify_with_installed_paths(root, tmp_path):
    units = root / "usr/lib/systemd/system"
    for unit in units.glob("chpki-*.service"):
        text = unit.read_text()
        assert "/usr/local/bin" not in text, unit.name
        assert re.search(r"^ExecStart=/usr/bin/chpki(-rotate)?\b", text, re.M), unit.name
    # systemd-analyze checks that ExecStart= exists: point it at the extracted binaries.
    verify_dir = tmp_path / "units"
    verify_dir.mkdir()
    for unit in units.iterdir():
        (verify_dir / unit.name).write_text(unit.read_text().replace("/usr/bin/chpki", str(root / "usr/bin/chpki")))
    res = subprocess.run(["systemd-analyze", "verify", *sorted(str(p) for p in verify_dir.iterdir())],
                         capture_output=True, text=True, env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    problems = [line for line in (res.stdout + res.stderr).splitlines() if "chpki" in line]
    assert res.returncode == 0 and not problems, res.stdout + res.stderr


def test_two_builds_of_one_commit_give_the_same_package(deb, tmp_path):
    """The cached build against a second run of scripts/package on the same build tree: every file,
    mode, owner and mtime must match (the binary itself is compared by the script's --clean run,
    see README "Build and install")."""
    second = ps.run_package_script(tmp_path / "again")
    assert second.name == deb.name
    first_contents, second_contents = ps.contents(deb), ps.contents(second)
    differing = sorted(p for p in first_contents.keys() | second_contents.keys()
                       if first_contents.get(p) != second_contents.get(p))
    assert not differing, differing
    assert second.read_bytes() == deb.read_bytes(), "same contents but the .deb bytes differ"


def test_no_path_of_the_checkout_is_compiled_in(root):
    """Two clones of one commit in different places give the same binary only if neither's path is
    in it. scripts/package builds from a copy at one fixed place (swiftc compiles the length of each
    source's path into closure-escape checks) and maps that place out of C's __FILE__ (libyaml's
    asserts, inside Yams), which carried the checkout's path before."""
    binary = (root / "usr/bin/chpki").read_bytes()
    build_root = os.environ.get("CHPKI_PACKAGE_BUILD_ROOT") or f"/var/tmp/chpki-package-{os.getuid()}"
    for path in {str(ps.REPO), os.path.realpath(ps.REPO), build_root}:
        at = binary.find(path.encode())
        assert at < 0, f"{path} is compiled into usr/bin/chpki: ...{binary[max(0, at - 40):at + 120]!r}..."
