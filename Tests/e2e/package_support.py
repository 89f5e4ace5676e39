"""The Debian package under test: built once per commit by `scripts/package`, then reused.

The static release build takes minutes on two cores, so every test that needs the package shares
one build: the .deb is cached under `.build-package/debs/<key>/` where the key is the commit (plus
a hash of the uncommitted diff when the work tree is dirty). A second pytest run on the same commit
reuses it; CI, on a fresh clone, builds it once.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".build-package" / "debs"


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True).stdout


def cache_key() -> str:
    key = _git("rev-parse", "HEAD").strip()
    diff = _git("diff", "HEAD")
    if diff:
        key += "-dirty-" + hashlib.sha256(diff.encode()).hexdigest()[:12]
    return key


def run_package_script(out: Path, *extra: str) -> Path:
    """Runs scripts/package --out OUT; returns the one .deb it wrote."""
    out.mkdir(parents=True, exist_ok=True)
    res = subprocess.run([str(REPO / "scripts" / "package"), "--out", str(out), *extra], cwd=str(REPO),
                         capture_output=True, text=True, timeout=3600)
    assert res.returncode == 0, f"scripts/package failed ({res.returncode}):\n{res.stdout}\n{res.stderr[-6000:]}"
    # Warning-free: whatever this run compiled or linked (a fresh build: everything) said nothing
    # to get used to, such as the linker's "the use of `mktemp' is dangerous" once did.
    warnings = [line for line in res.stderr.splitlines() if re.search(r"\bwarning\b", line, re.I)]
    assert not warnings, "scripts/package printed warnings:\n" + "\n".join(warnings[:40])
    debs = sorted(out.glob("chpki_*.deb"))
    assert len(debs) == 1, f"expected one .deb in {out}, found {debs}"
    assert res.stdout.strip() == str(debs[0]), f"scripts/package should print the .deb's path, printed {res.stdout!r}"
    return debs[0]


@functools.cache
def built_package() -> Path:
    """The package of the current commit, built at most once per commit."""
    directory = CACHE / cache_key()
    debs = sorted(directory.glob("chpki_*.deb"))
    if len(debs) == 1:
        return debs[0]
    shutil.rmtree(directory, ignore_errors=True)
    return run_package_script(directory)


def extract(deb: Path, root: Path) -> Path:
    """`dpkg-deb -x` into ROOT (and the control files into ROOT/DEBIAN); returns ROOT."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    subprocess.run(["dpkg-deb", "-e", str(deb), str(root / "DEBIAN")], check=True)
    return root


def contents(deb: Path) -> dict[str, tuple[str, str]]:
    """path -> (mode/owner line of `dpkg-deb -c`, sha256 of the file's bytes) for every entry."""
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], check=True, capture_output=True, text=True).stdout
    scratch = deb.parent / f".{deb.name}.x"
    shutil.rmtree(scratch, ignore_errors=True)
    extract(deb, scratch)
    result: dict[str, tuple[str, str]] = {}
    try:
        for line in listing.splitlines():
            fields = line.split(None, 5)
            path = fields[5].split(" -> ")[0]
            local = scratch / path
            digest = hashlib.sha256(local.read_bytes()).hexdigest() if local.is_file() and not local.is_symlink() else "-"
            result[path] = (" ".join(fields[:5]), digest)
        for control in sorted((scratch / "DEBIAN").iterdir()):
            result["DEBIAN/" + control.name] = ("control", hashlib.sha256(control.read_bytes()).hexdigest())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return result


# What an installed chpki on this machine would add to a test's view: its settings and template
# overrides. Hidden (an empty tmpfs over each that exists) wherever the package under test runs, so
# the suite gives the same result whether or not an operator installed and configured chpki here.
MACHINE_STATE = ("/etc/chpki",)


def without_toolchain(script: str, cwd: Path, env: dict | None = None, hide_toolchain: bool = True) -> subprocess.CompletedProcess:
    """Runs `script` with sh in a private mount namespace where /opt/swift is an empty tmpfs, so
    nothing of the Swift toolchain can be loaded (when `hide_toolchain`), and so is each of
    MACHINE_STATE that exists."""
    hidden = [*(["/opt/swift"] if hide_toolchain else []), *(d for d in MACHINE_STATE if os.path.isdir(d))]
    steps = [f"mount -t tmpfs none {shlex_quote(d)}" for d in hidden] + [f"cd {shlex_quote(str(cwd))}", script]
    inner = " && ".join(steps)
    base = {k: v for k, v in os.environ.items() if not k.startswith("CHPKI_") and k != "LD_LIBRARY_PATH"}
    base["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
    base.update(env or {})
    return subprocess.run(["unshare", "-m", "sh", "-c", inner], env=base, capture_output=True, text=True, timeout=900)


def dpkg_status_without_chpki(directory: Path, source: str = "/var/lib/dpkg/status") -> Path:
    """A copy of dpkg's status file with no chpki stanza: `apt-get -o Dir::State::status=` that copy
    resolves the package as on a machine that never had it, whatever this one has installed."""
    stanzas = Path(source).read_text().split("\n\n")
    kept = [s for s in stanzas if not re.match(r"Package: chpki\n", s.lstrip("\n"))]
    status = directory / "dpkg-status"
    status.write_text("\n\n".join(kept))
    return status


def shlex_quote(text: str) -> str:
    import shlex
    return shlex.quote(text)
