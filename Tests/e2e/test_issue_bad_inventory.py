"""`chpki issue` refuses a broken inventory (SPEC §1, §2): exit 2, one stderr line naming the
file and the line of the mistake, and the CA directory byte-for-byte as it was.

Each case edits one line of a valid inventory; the edited line carries the marker `# ERR`, and the
error must name exactly that line (`<file>:<line>:`).
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

import conftest
import helpers as h

BASE = """\
domain: example.com
subject:
  O: MyCompany
  C: US
ca:
  common_name: Test Root CA
defaults:
  key: ec-p256
  validity: 397d
  renew_before: 30d
hosts:
  - name: backend-1.example.com
    ips: [10.0.0.1]
    groups: [backend]
  - name: backend-2.example.com
    ips: [10.0.0.2]
    groups: [backend]
  - name: frontend-1.example.com
    ips: [10.0.0.11, "2001:db8::11"]
    groups: [frontend]
vips:
  - name: cinc-server-cluster
    ips: [10.0.0.101]
services:
  opensearch:
    hosts: backend
    key: rsa-2048
    server_cert_mode: both
    enable_client: false
  etcd:
    hosts: backend
    server_cert_mode: both
  nginx:
    hosts: frontend
    extra_san: [cinc-server-cluster]
admin:
  name: admin
"""

# (id, line to replace, replacement carrying "# ERR", words of which the error names at least one
# per tuple: the field or the offending value; what went wrong is checked by the code, CODES)
CASES = [
    ("unknown-top-level-key", "admin:\n", "clusters: 3  # ERR\nadmin:\n", [("clusters",)]),
    ("unknown-service-key", "    extra_san: [cinc-server-cluster]\n",
     "    extra_sans: [cinc-server-cluster]  # ERR\n", [("extra_sans",)]),
    ("bad-host-name", "  - name: backend-2.example.com\n", "  - name: backend_2.example.com  # ERR\n",
     [("backend_2", "hosts[1].name")]),
    ("bad-ipv4", "    ips: [10.0.0.2]\n", "    ips: [10.0.0.300]  # ERR\n", [("10.0.0.300", "hosts[1].ips")]),
    ("bad-ipv6", '    ips: [10.0.0.11, "2001:db8::11"]\n', '    ips: [10.0.0.11, "2001:db8::g1"]  # ERR\n',
     [("2001:db8::g1", "hosts[2].ips")]),
    ("duplicate-host", "  - name: frontend-1.example.com\n", "  - name: backend-1.example.com  # ERR\n",
     [("backend-1.example.com",)]),
    ("duplicate-ip", '    ips: [10.0.0.11, "2001:db8::11"]\n', '    ips: [10.0.0.1, "2001:db8::11"]  # ERR\n',
     [("10.0.0.1",)]),
    ("country-not-two-letters", "  C: US\n", "  C: USA  # ERR\n", [("USA", "subject.C")]),
    ("service-names-unknown-group", "    hosts: frontend\n", "    hosts: database  # ERR\n",
     [("database", "services.nginx.hosts")]),
    ("service-names-unknown-host", "    hosts: frontend\n", "    hosts: [frontend-1, frontend-9]  # ERR\n",
     [("frontend-9",)]),
    ("opensearch-ed25519", "    key: rsa-2048\n", "    key: ed25519  # ERR\n",
     [("ed25519",), ("opensearch",)]),
    ("unknown-key-type", "  key: ec-p256\n", "  key: ec-p999  # ERR\n", [("ec-p999", "defaults.key")]),
    ("bad-validity", "  validity: 397d\n", "  validity: 10x  # ERR\n", [("10x", "defaults.validity")]),
    ("renew-before-not-shorter", "  renew_before: 30d\n", "  renew_before: 400d  # ERR\n",
     [("renew_before",)]),
    ("host-not-fqdn", "  - name: backend-2.example.com\n", "  - name: backend-2  # ERR\n",
     [("backend-2", "hosts[1].name")]),
    ("host-outside-domain", "  - name: backend-2.example.com\n", "  - name: backend-2.example.net  # ERR\n",
     [("backend-2.example.net", "hosts[1].name")]),
    ("yaml-syntax-error", "  O: MyCompany\n", "  O: MyCompany: Inc  # ERR\n", []),
    ("bad-cert-mode", "    server_cert_mode: both\n    enable_client", "    server_cert_mode: mutual  # ERR\n    enable_client",
     [("mutual", "server_cert_mode")]),
    ("bad-extra-san", "    extra_san: [cinc-server-cluster]\n", "    extra_san: [cinc_server_cluster]  # ERR\n",
     [("cinc_server_cluster", "extra_san")]),
    ("vip-with-host-ip", "    ips: [10.0.0.101]\n", "    ips: [10.0.0.11]  # ERR\n", [("10.0.0.11", "vips[0].ips")]),
    ("cn-in-subject", "  O: MyCompany\n", "  O: MyCompany\n  CN: node  # ERR\n", [("CN",)]),
    ("duplicate-service-key", "  nginx:\n", "  etcd:  # ERR\n", [("etcd",)]),
]

# The code each case is refused with (docs/errors.md): what a script would act on.
CODES = {
    "unknown-top-level-key": "inventory.unknown-field",
    "unknown-service-key": "inventory.unknown-field",
    "bad-host-name": "inventory.invalid-name",
    "bad-ipv4": "inventory.invalid-address",
    "bad-ipv6": "inventory.invalid-address",
    "duplicate-host": "inventory.duplicate",
    "duplicate-ip": "inventory.duplicate",
    "country-not-two-letters": "inventory.invalid-value",
    "service-names-unknown-group": "inventory.unknown-group",
    "service-names-unknown-host": "inventory.unknown-host",
    "opensearch-ed25519": "inventory.invalid-value",
    "unknown-key-type": "inventory.invalid-value",
    "bad-validity": "inventory.invalid-value",
    "renew-before-not-shorter": "inventory.invalid-value",
    "host-not-fqdn": "inventory.invalid-name",
    "host-outside-domain": "inventory.invalid-name",
    "yaml-syntax-error": "inventory.syntax",
    "bad-cert-mode": "inventory.invalid-value",
    "bad-extra-san": "inventory.invalid-name",
    "vip-with-host-ip": "inventory.conflict",
    "cn-in-subject": "inventory.unknown-field",
    "duplicate-service-key": "inventory.duplicate",
}


def broken(case) -> tuple[str, int]:
    _, old, new, _ = case
    assert BASE.count(old) == 1, f"test bug: {old!r} is not unique in BASE"
    text = BASE.replace(old, new)
    lines = [n for n, line in enumerate(text.splitlines(), 1) if "# ERR" in line]
    assert len(lines) == 1
    return text, lines[0]


@pytest.fixture(scope="module")
def good_ca(chpki_bin, tmp_path_factory):
    """One valid CA made from BASE, its ROOT name-constrained (--no-intermediate: a default CA would
    grow through a new intermediate instead, test_growth.py); the refused runs must leave it untouched."""
    base = tmp_path_factory.mktemp("bad-inventory")
    work = base / "work"
    work.mkdir()
    inv = work / "cluster.yml"
    inv.write_text(BASE)
    pf = h.write_secret(base / "pass", h.PASSPHRASE + "\n")
    wrong = h.write_secret(base / "wrong", "not the passphrase at all\n")
    tool = conftest.Chpki(chpki_bin, work)
    ca_dir = base / "ca"
    h.assert_ok(tool.run("init-ca", "--ca-dir", ca_dir, "--inventory", inv, "--passphrase-file", pf, "--no-intermediate"))
    return SimpleNamespace(base=base, work=work, inv=inv, pf=pf, wrong=wrong, tool=tool, ca_dir=ca_dir)


def test_base_inventory_is_valid(good_ca):
    """The starting point of every case issues fine (checked on a copy of the CA)."""
    import shutil

    copy = good_ca.base / "ca-copy"
    shutil.copytree(good_ca.ca_dir, copy)
    res = good_ca.tool.run("issue", "--ca-dir", copy, "--inventory", good_ca.inv, "--passphrase-file", good_ca.pf)
    h.assert_ok(res)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dry_run", [False, True], ids=["issue", "dry-run"])
def test_broken_inventory_refused_with_its_line(good_ca, case, dry_run):
    name, _, _, mentions = case
    text, line_no = broken(case)
    bad = good_ca.work / f"bad-{name}.yml"
    bad.write_text(text)
    before = h.snapshot(good_ca.ca_dir)
    res = good_ca.tool.run("issue", *(["--dry-run"] if dry_run else []), "--ca-dir", good_ca.ca_dir,
                           "--inventory", bad, "--passphrase-file", good_ca.pf)
    line = h.assert_refused(res, bad.name, *mentions, error=CODES[name])
    assert re.search(rf"{re.escape(bad.name)}:{line_no}(:|\b)", line), (
        f"the error should point at {bad.name}:{line_no}: {line!r}")
    assert res.stdout.strip() == "", "a refused run printed a plan" + h.describe(res)
    assert h.snapshot(good_ca.ca_dir) == before, "the CA directory changed"


def test_wrong_passphrase_refused_ca_unchanged(good_ca):
    before = h.snapshot(good_ca.ca_dir)
    res = good_ca.tool.run("issue", "--ca-dir", good_ca.ca_dir, "--inventory", good_ca.inv,
                           "--passphrase-file", good_ca.wrong)
    h.assert_refused(res, ("passphrase", "decrypt", "root.key"), error="passphrase.wrong")
    assert h.snapshot(good_ca.ca_dir) == before
    res = good_ca.tool.run("issue", "--ca-dir", good_ca.ca_dir, "--inventory", good_ca.inv,
                           env={"CHPKI_CA_PASSPHRASE": "not the passphrase at all"})
    h.assert_refused(res, ("passphrase", "decrypt", "root.key"), error="passphrase.wrong")
    assert h.snapshot(good_ca.ca_dir) == before


def test_no_passphrase_and_no_terminal_refused(good_ca):
    before = h.snapshot(good_ca.ca_dir)
    res = good_ca.tool.run("issue", "--ca-dir", good_ca.ca_dir, "--inventory", good_ca.inv)
    h.assert_refused(res, ("passphrase",), error="passphrase.missing")
    assert h.snapshot(good_ca.ca_dir) == before


def test_missing_ca_dir_refused(good_ca):
    missing = good_ca.base / "no-such-ca"
    res = good_ca.tool.run("issue", "--ca-dir", missing, "--inventory", good_ca.inv, "--passphrase-file", good_ca.pf)
    h.assert_refused(res, ("no-such-ca",), error="ca.not-found")
    assert not missing.exists(), "issue created the missing CA directory"


def test_missing_inventory_refused(good_ca):
    before = h.snapshot(good_ca.ca_dir)
    res = good_ca.tool.run("issue", "--ca-dir", good_ca.ca_dir, "--inventory", good_ca.work / "absent.yml",
                           "--passphrase-file", good_ca.pf)
    h.assert_refused(res, ("absent.yml",), error="file.missing")
    assert h.snapshot(good_ca.ca_dir) == before


def test_inventory_outside_the_name_constraints_refused(good_ca):
    """A host whose network the name-constrained root does not cover: issuing would produce a
    certificate that every verifier rejects, so chpki refuses rather than writing it."""
    text = BASE.replace("    ips: [10.0.0.2]\n", "    ips: [10.9.0.2]\n")
    bad = good_ca.work / "outside.yml"
    bad.write_text(text)
    before = h.snapshot(good_ca.ca_dir)
    res = good_ca.tool.run("issue", "--ca-dir", good_ca.ca_dir, "--inventory", bad, "--passphrase-file", good_ca.pf)
    h.assert_refused(res, ("10.9.0.2",), "rotate-ca", error="ca.name-constraints")
    assert h.snapshot(good_ca.ca_dir) == before
