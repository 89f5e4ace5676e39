"""The manual's promises that the debug binary can show, without building the package (the pages
themselves are checked in test_package.py): the example commands work against real tools, and the
pages' sources name every variable chpki and chpki-rotate read."""

from __future__ import annotations

import re
import shlex
import subprocess
import tarfile
from pathlib import Path

import frontend_helpers as fh
from frontend_helpers import frontend, keys  # noqa: F401  (shared fixtures)
import helpers as h

REPO = Path(__file__).resolve().parents[2]
SECTIONS = REPO / "packaging/man/chpki.sections.mdoc"
ROTATE_PAGE = REPO / "packaging/man/chpki-rotate.1.in"


def test_bundle_frontend_help_opens_the_encrypted_bundle_with_stock_openssl(run, frontend, tmp_path):
    """`chpki help bundle-frontend` once showed `-pwri_password pass:...`, which OpenSSL 3.0 reads
    as the literal password "pass:..." ("unwrap failure"). The command it shows now is run as
    printed, with the passphrase and the file names filled in."""
    text = " ".join(h.assert_ok(run("help", "bundle-frontend")).stdout.split())
    shown = re.search(r"'(openssl cms -decrypt [^']*)'", text)
    assert shown, text
    command = shown.group(1)
    assert "pass:" not in command
    a = frontend("A")
    passphrase = h.write_secret(tmp_path / "bundle-pass", fh.BUNDLE_PASSPHRASE + "\n")
    h.assert_ok(run("bundle-frontend", "--from", a.root, "--out", tmp_path / "plain.tgz"))
    h.assert_ok(run("bundle-frontend", "--from", a.root, "--out", tmp_path / "frontend.cms", "--encrypt",
                    "--passphrase-file", passphrase))
    runnable = command.replace("PASSPHRASE", shlex.quote(fh.BUNDLE_PASSPHRASE))
    res = subprocess.run(["sh", "-c", runnable], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, f"{runnable}: {res.stderr}"
    assert (tmp_path / "frontend.tar.gz").read_bytes() == (tmp_path / "plain.tgz").read_bytes()


def installed_host(run, tmp_path) -> Path:
    """The demo's backend-1 archive unpacked into a scratch root, as a host would install it."""
    h.assert_ok(run("demo", "--out", tmp_path / "demo"))
    root = tmp_path / "host-root"
    root.mkdir()
    with tarfile.open(tmp_path / "demo/bundles/backend-1.example.com.tar.gz") as archive:
        archive.extractall(root, filter="fully_trusted")
    return root


def readme_host_check() -> str:
    """The README's chpki-less host check, exactly as printed there."""
    lines = [line for line in (REPO / "README.md").read_text().splitlines()
             if "sha256sum -c" in line and line.startswith("cd / && jq")]
    assert len(lines) == 1, lines
    return lines[0]


def test_the_documented_host_check_needs_only_jq_and_coreutils(run, tmp_path):
    command = readme_host_check()
    assert command in (REPO / "docs/deployment.md").read_text()
    root = installed_host(run, tmp_path)
    # From the host root instead of /: the manifest's paths are relative to it.
    at_root = command.replace("cd / &&", f"cd {shlex.quote(str(root))} &&", 1)
    env = {"PATH": "/usr/bin:/bin", "LANG": "C"}
    res = subprocess.run(["sh", "-c", at_root], capture_output=True, text=True, env=env)
    assert res.returncode == 0 and res.stdout == "" and res.stderr == "", res.stdout + res.stderr
    key = next(p for p in root.rglob("*.key") if p.is_file())
    key.write_bytes(key.read_bytes() + b"\n")
    res = subprocess.run(["sh", "-c", at_root], capture_output=True, text=True, env=env)
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"{key.relative_to(root)}: FAILED" in res.stdout, res.stdout


def test_the_man_pages_name_every_variable_read(tmp_path):
    """Every CHPKI_* the Swift sources read is in chpki(1)'s ENVIRONMENT; every one chpki-rotate
    and the systemd units read is in chpki-rotate(1)'s."""
    swift = set()
    for source in (REPO / "Sources").rglob("*.swift"):
        swift |= set(re.findall(r'"(CHPKI_[A-Z_]+)"', source.read_text()))
    environment = SECTIONS.read_text().split(".Sh ENVIRONMENT")[1].split(".Sh ")[0]
    missing = sorted(v for v in swift if v != "CHPKI_" and f".It Ev {v}\n" not in environment)
    assert not missing, f"chpki.sections.mdoc ENVIRONMENT lacks {missing}"
    # A name, or a prefix ending in "_" (CHPKI_RELOAD_<SERVICE>).
    variable = re.compile(r"\b(CHPKI(?:_[A-Z0-9]+)*_?)(?![A-Za-z0-9])")
    rotate = set(variable.findall((REPO / "scripts/chpki-rotate").read_text()))
    for unit in (REPO / "scripts/systemd").iterdir():
        rotate |= set(variable.findall(unit.read_text()))
    page = ROTATE_PAGE.read_text().split(".Sh ENVIRONMENT")[1].split(".Sh ")[0]
    missing = sorted(v for v in rotate if not re.search(rf"^\.It Ev {v}( |$)", page, re.M))
    assert not missing, f"chpki-rotate.1.in ENVIRONMENT lacks {missing}"


def man_examples(page: Path) -> list[str]:
    """The literal displays of the page's EXAMPLES section, as the reader sees them."""
    examples = page.read_text().split(".Sh EXAMPLES")[1].split(".Sh ")[0]
    blocks = re.findall(r"^\.Bd -literal[^\n]*\n(.*?)^\.Ed$", examples, re.S | re.M)
    return [block.replace("\\e", "\\") for block in blocks]


def test_chpki_man_page_first_cluster_example_runs(chpki_bin, tmp_path):
    """chpki(1)'s first example, run as printed (the package's paths pointing into the checkout)
    by a chpki of this tree, in an empty directory."""
    first = man_examples(SECTIONS)[0]
    assert "chpki init-ca" in first and "chpki verify" in first
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/chpki").symlink_to(chpki_bin)
    passphrase = h.write_secret(tmp_path / "ca.pass", h.PASSPHRASE + "\n")
    root_passphrase = h.write_secret(tmp_path / "root.pass", "a root passphrase of its own\n")
    script = (first.replace("/usr/share/chpki/examples/", f"{REPO}/examples/").replace("/root/ca.pass", str(passphrase))
              .replace("/root/root.pass", str(root_passphrase)))
    work = tmp_path / "ca-machine"
    work.mkdir()
    res = subprocess.run(["bash", "-euc", script], cwd=work, capture_output=True, text=True, timeout=600,
                         env={"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"})
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert sorted(p.name for p in (work / "bundles").glob("*.tar.gz")), "no archives"
