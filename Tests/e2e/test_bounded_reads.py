"""Every read of a file chpki didn't write is bounded (SPEC §8): a 3 GiB sparse file where chpki
expects an inventory, a passphrase file, an `inspect` input, a CA certificate view or a frontend
secret gives one clear line (exit 2), fast, and never "Fatal error: unable to allocate memory".
The limits live in one place (Sources/ChpkiPlatform/FileSystem/ReadLimits.swift)."""
from __future__ import annotations

import os
import time

import helpers as h
from conftest import REPO

HUGE = 3 << 30


def sparse(path, size=HUGE):
    path.write_bytes(b"")
    os.truncate(path, size)
    return path


def assert_one_line(res, *mentions, error=None):
    line = h.assert_refused(res, *mentions, error=error)
    assert "Fatal error" not in res.stderr and "allocate" not in res.stderr
    return line


def test_sparse_inventory(run, workdir, passphrase_file, init_ca):
    init_ca()
    inventory = sparse(workdir / "cluster.yml")
    started = time.monotonic()
    line = assert_one_line(run("issue", "--dry-run", "--passphrase-file", passphrase_file), inventory.name, "3 GiB", "32 MiB", error="file.too-large")
    assert time.monotonic() - started < 30, "the file was read instead of refused by its size"
    assert "more than" in line


def test_sparse_passphrase_file(run, workdir, write_inventory, tmp_path):
    write_inventory(h.FULL_INVENTORY)
    huge = sparse(tmp_path / "passphrase")
    assert_one_line(run("init-ca", "--passphrase-file", huge), str(huge), "--passphrase-file", "3 GiB", "64 KiB", error="file.too-large")
    assert not (workdir / "ca").exists() or not any((workdir / "ca").iterdir()), "a refused init-ca left files"


def test_sparse_inspect_input(run, tmp_path):
    huge = sparse(tmp_path / "cert.pem")
    assert_one_line(run("inspect", huge), str(huge), "3 GiB", "64 MiB", error="file.too-large")


def test_a_file_just_over_a_limit_is_refused_and_one_under_is_read(run, workdir, write_inventory, init_ca, passphrase_file, tmp_path):
    """The limit is the limit: 64 KiB + 1 byte of passphrase file is refused, a short one works."""
    write_inventory(h.FULL_INVENTORY)
    over = sparse(tmp_path / "over", (64 << 10) + 1)
    assert_one_line(run("init-ca", "--passphrase-file", over), str(over), "64 KiB", error="file.too-large")
    init_ca()
    h.assert_ok(run("issue", "--dry-run", "--passphrase-file", passphrase_file))


def test_sparse_file_in_a_frontend_root(run, tmp_path):
    """bundle-frontend collects files from a frontend's root that other programs wrote."""
    import frontend_helpers as fh
    root = tmp_path / "fe"
    fh.make_frontend(root)
    huge = sparse(root / fh.paths()["pivotal_pem"])
    res = run("bundle-frontend", "--from", root, "--out", tmp_path / "fe.tgz")
    assert res.returncode == 2, h.describe(res)
    assert "Fatal error" not in res.stderr and "allocate" not in res.stderr
    assert any(str(huge) in line and "3 GiB" in line for line in res.stderr.splitlines()), res.stderr
    assert not (tmp_path / "fe.tgz").exists()


def test_endless_ansible_inventory_output_is_cut_off(run, workdir, tmp_path):
    """ansible-inventory (here a stand-in on PATH) printing without end: chpki stops it at the
    inventory limit, with one line, instead of collecting output until memory runs out."""
    import yaml
    inventory = yaml.safe_load((REPO / "examples/loopback.yml").read_text())
    inventory.pop("hosts")
    inventory["ansible_inventory"] = "hosts.ini"
    (workdir / "cluster.yml").write_text(yaml.safe_dump(inventory))
    (workdir / "hosts.ini").write_text("[backend]\nb1\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ansible-inventory"
    fake.write_text("#!/bin/sh\nexec yes '{\"_meta\": {\"hostvars\": {}}, \"padding\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}'\n")
    fake.chmod(0o755)
    started = time.monotonic()
    res = run("issue", "--dry-run", env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert_one_line(res, "ansible-inventory", "32 MiB", "stdout", error="inventory.ansible-failed")
    assert time.monotonic() - started < 60
