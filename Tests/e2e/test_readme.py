"""The README's install and first-cluster steps, run as written from a fresh clone.

The README marks them: `<!-- readme-test: install -->` before the install command, and between
`<!-- first-cluster:start -->` and `<!-- first-cluster:end -->` each block preceded by
`<!-- readme-test: run -->` is run, in order, in one empty directory, by the installed chpki with
the Swift toolchain hidden. The other blocks there need the cluster's hosts or systemd as PID 1:
they are checked for shell syntax and for options the installed tools really have.

Two stand-ins, because this machine must not be changed by a test: `scripts/package` in the
fresh clone is checked to compute the same version, and the package the suite built from this
same commit is used (test_package.py proves two builds of a commit give the same package);
`apt install ./chpki_*.deb` is run as `apt-get install --simulate` (dependencies resolve) and the
package is then unpacked with `dpkg-deb -x` into a scratch root whose usr/bin goes first on PATH.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

import helpers as h
import package_support as ps

README = ps.REPO / "README.md"


@pytest.fixture(scope="module", autouse=True)
def as_root():
    assert os.geteuid() == 0, "needs root: unshare -m hides the toolchain"


def fenced_blocks(text: str) -> list[tuple[str | None, str]]:
    """(marker, code) for each ```sh block; marker is the readme-test comment right before it."""
    blocks = []
    for match in re.finditer(r"(?:<!-- readme-test: (\w+) -->\s*\n)?```(?:sh|bash)\n(.*?)```", text, re.S):
        blocks.append((match.group(1), match.group(2)))
    return blocks


def first_cluster_section() -> str:
    text = README.read_text()
    start, end = text.index("<!-- first-cluster:start -->"), text.index("<!-- first-cluster:end -->")
    assert start < end
    return text[start:end]


def test_readme_names_the_build_prerequisites_and_the_two_line_install():
    text = README.read_text()
    for package in ("libssl-dev", "zlib1g-dev", "libsqlite3-dev", "pkg-config"):
        assert package in text.split("## From an empty box")[0], f"README does not name {package} before the install"
    installs = [code for marker, code in fenced_blocks(text) if marker == "install"]
    assert installs == ["scripts/package && apt install ./chpki_*.deb\n"], installs
    assert "../shared" not in text


def test_readme_says_where_swift_comes_from_and_how_the_package_reaches_an_offline_ca():
    install = README.read_text().split("## From an empty box")[0]
    # Debian has no Swift package: the README names swift.org's toolchain and the version the
    # checkout pins for swiftly (.swift-version).
    version = (ps.REPO / ".swift-version").read_text().strip()
    assert re.fullmatch(r"6\.\d+\.\d+", version), version
    assert "swift.org" in install and "swiftly" in install and f"Swift {version}" in install
    # Build box to offline CA: build there, carry the .deb, apt install it offline.
    assert "build box" in install and "offline" in install
    assert "scripts/package" in install and "apt install ./chpki_*.deb" in install


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh clone, the README's install step (with the stand-ins above), the unpacked root."""
    scratch = tmp_path_factory.mktemp("readme")
    clone = scratch / "chpki"
    subprocess.run(["git", "clone", "--quiet", str(ps.REPO), str(clone)], check=True)
    deb = ps.built_package()
    version = subprocess.run([str(clone / "scripts/package"), "--version-only"], cwd=clone, check=True,
                             capture_output=True, text=True).stdout.strip()
    # The clone computes the version of the package built from this commit (".dirty" when the
    # suite's checkout has uncommitted changes).
    assert re.match(rf"chpki_{re.escape(version)}(\.dirty)?_", deb.name), (version, deb.name)
    shutil.copy(deb, clone / deb.name)
    # Against a dpkg status without chpki: an installed chpki here ("already the newest version")
    # must not change what the test sees.
    status = ps.dpkg_status_without_chpki(scratch)
    simulated = subprocess.run(["bash", "-c", f"apt-get -o Dir::State::status={shlex.quote(str(status))} "
                                "install --simulate ./chpki_*.deb"], cwd=clone, capture_output=True,
                               text=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    assert simulated.returncode == 0 and re.search(r"^Inst chpki ", simulated.stdout, re.M), simulated.stdout + simulated.stderr
    root = ps.extract(deb, scratch / "root")
    return clone, root


def localised(code: str, root: Path) -> str:
    """The block with the package's absolute paths pointing into the scratch root."""
    return code.replace("/usr/share/chpki/", f"{root}/usr/share/chpki/")


def test_first_cluster_steps_run_as_written(installed, tmp_path):
    clone, root = installed
    blocks = fenced_blocks(first_cluster_section())
    runnable = [code for marker, code in blocks if marker == "run"]
    assert len(runnable) >= 3, "the first-cluster section should mark its runnable blocks"
    text = " ".join(runnable)
    for step in ("chpki init-ca", "chpki issue", "chpki bundle", "chpki verify --bundle"):
        assert step in text, f"the first-cluster steps should include {step}"
    work = tmp_path / "ca-machine"
    work.mkdir()
    script = "set -eu\n" + "\n".join(localised(code, root) for code in runnable)
    (tmp_path / "steps.sh").write_text(script)
    env = {"PATH": f"{root}/usr/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "TZ": "UTC", "HOME": str(tmp_path)}
    res = ps.without_toolchain(f"bash {shlex.quote(str(tmp_path / 'steps.sh'))}", work, env=env)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    inventory = h.load_yaml(work / "cluster.yml")
    for host in inventory["hosts"]:
        assert (work / "bundles" / f"{host['name']}.tar.gz").is_file(), host["name"]
    assert "no violation" in res.stdout
    assert "next: chpki issue" in res.stdout and "next: chpki verify --bundle bundles" in res.stdout
    assert "then copy bundles/HOST.tar.gz" in res.stdout


def test_first_cluster_steps_that_need_hosts_are_valid(installed):
    clone, root = installed
    others = [code for marker, code in fenced_blocks(first_cluster_section()) if marker != "run"]
    assert others, "the host install and timer steps should be in the section"
    rotate_help = subprocess.run([str(root / "usr/bin/chpki-rotate"), "--help"], capture_output=True, text=True).stdout
    for code in others:
        syntax = subprocess.run(["bash", "-n"], input=code, capture_output=True, text=True)
        assert syntax.returncode == 0, code + syntax.stderr
        for line in code.splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["chpki-rotate"]:
                for option in (w for w in words if w.startswith("--")):
                    assert option in rotate_help, f"chpki-rotate has no {option}: {line}"
            for unit in re.findall(r"chpki-[a-z]+\.(?:timer|service)", line):
                assert (root / "usr/lib/systemd/system" / unit).is_file(), unit
            for path in re.findall(r"/usr/share/chpki/\S+", line):
                assert (root / path.lstrip("/")).exists(), path
