"""A cluster that grows and shrinks (SPEC §7 "Growth", §1 `issue --prune`), checked from outside.

- Growth on a default CA (offline root + name-constrained intermediate): a host with a new short
  name on new IPv4 and IPv6 networks, a VIP and a service are added; `issue` signs a new issuing
  intermediate with the root and exits 0; every existing host's trust files and certificates are
  byte-identical; every new certificate verifies for every SAN against an existing host's OLD
  trust file with `openssl verify -verify_hostname/-verify_ip` and Go's crypto/x509; an old and a
  new OpenSearch node complete a JSSE mutual-TLS handshake.
- Rogue certificates: every CA key in the CA directory but the root's (files and ca.db, decrypted
  with the passphrase by Python cryptography) signs a leaf for www.example.org and for 8.8.8.8:
  `openssl verify` and Go refuse both with a name-constraint error.
- Retirement: removing a host and changing another's IP shows `retire` lines; `--prune` revokes
  exactly those (cessationOfOperation, superseded), `openssl crl` shows the reasons, `openssl ocsp
  -index` answers revoked for them and good for the rest; a second run does nothing; one-offs stay.
- Refusals: a `--no-intermediate` CA and a CA of the first release (constrained root) refuse growth
  with one line naming rotate-ca, and change nothing.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import helpers as h

HERE = Path(__file__).resolve().parent
GO_VERIFY = HERE / "go" / "verify.go"
JAVA_SOURCES = [HERE / "java" / "OpenSearchTLS.java", HERE / "java" / "OpenSearchPrincipal.java"]
LEGACY_FIXTURE = HERE / "fixtures" / "legacy-issued"

INVENTORY = """\
domain: example.com
subject: {OU: Ops, O: MyCompany, C: US}
ca: {common_name: Growth Root CA, key: ec-p384, validity: 10y}
defaults: {key: ec-p256, validity: 397d, renew_before: 30d}
hosts:
  - {name: backend-1.example.com, ips: [10.0.0.1, "2001:db8:1::1"], groups: [backend]}
  - {name: backend-2.example.com, ips: [10.0.0.2, "2001:db8:1::2"], groups: [backend]}
  - {name: frontend-1.example.com, ips: [10.0.0.11], groups: [frontend]}
  - {name: haproxy-1.example.com, ips: [10.0.0.21, "2001:db8:1::21"], groups: [balancer]}
vips:
  - {name: cinc-opensearch-cluster, ips: [10.0.0.100, "2001:db8:1::100"]}
  - {name: cinc-server-cluster, ips: [10.0.0.101]}
services:
  opensearch: {hosts: backend, key: rsa-2048, server_cert_mode: both, enable_client: false, extra_san: [cinc-opensearch-cluster]}
  etcd: {hosts: backend, server_cert_mode: both}
  minio: {hosts: backend}
  nginx: {hosts: frontend, extra_san: [cinc-server-cluster]}
  haproxy: {hosts: balancer}
admin: {name: admin}
"""

# A new short name on new IPv4 and IPv6 networks, a VIP there, and a new service.
GROWN = INVENTORY.replace(
    "  - {name: frontend-1.example.com",
    '  - {name: storage-7.example.com, ips: [192.168.77.7, "2001:db8:77::7"], groups: [backend]}\n'
    "  - {name: frontend-1.example.com",
).replace(
    "  - {name: cinc-server-cluster, ips: [10.0.0.101]}",
    '  - {name: cinc-server-cluster, ips: [10.0.0.101]}\n  - {name: cinc-grafana-cluster, ips: [192.168.77.100, "2001:db8:77::100"]}',
).replace(
    "  haproxy: {hosts: balancer}",
    "  haproxy: {hosts: balancer}\n  grafana: {hosts: [frontend-1.example.com], extra_san: [cinc-grafana-cluster]}",
)
NEW_HOST = "storage-7.example.com"

TRUST_NAMES = {"root-ca.pem", "root-ca.crt", "ca.pem"}


def ok(res):
    return h.assert_ok(res)


def tree_files(tree: Path) -> dict[str, bytes]:
    return {str(p.relative_to(tree)): p.read_bytes() for p in sorted(tree.rglob("*")) if p.is_file()}


def is_trust_file(rel: str) -> bool:
    return Path(rel).name in TRUST_NAMES or "/anchors/" in rel or "/ca-certificates/" in rel


def leaf_files(files: dict[str, bytes]) -> dict[str, bytes]:
    """Files whose first certificate is a leaf (server/client chains, HAProxy crt files), not peers' copies in CAs/."""
    out = {}
    for rel, data in files.items():
        if b"-----BEGIN CERTIFICATE-----" not in data or "/CAs/" in rel or is_trust_file(rel):
            continue
        first = x509.load_pem_x509_certificates(data)[0]
        if not first.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            out[rel] = data
    return out


def sans_of(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return san.get_values_for_type(x509.DNSName), [str(i) for i in san.get_values_for_type(x509.IPAddress)]


@pytest.fixture(scope="module")
def go_verify(tmp_path_factory):
    go = shutil.which("go")
    if not go:
        pytest.skip("go not on PATH: install the Debian package golang-go (scripts/test does)")
    out = tmp_path_factory.mktemp("go-verify")
    env = dict(os.environ, GOCACHE=str(out / "cache"), GOPATH=str(out / "gopath"), GO111MODULE="off")
    res = subprocess.run([go, "build", "-o", str(out / "verify"), str(GO_VERIFY)], capture_output=True, text=True,
                         env=env, timeout=600)
    assert res.returncode == 0, "go build failed" + h.describe(res)

    def verify(roots: Path, chain: Path, *names: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(out / "verify"), str(roots), str(chain), *names], capture_output=True, text=True, timeout=60)

    return verify


@pytest.fixture(scope="module")
def java_tls(tmp_path_factory):
    javac, java = shutil.which("javac"), shutil.which("java")
    if not javac or not java:
        pytest.skip("javac/java not on PATH: install the Debian package openjdk-17-jdk-headless")
    out = tmp_path_factory.mktemp("java-classes")
    res = subprocess.run([javac, "-d", str(out), *map(str, JAVA_SOURCES)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, "javac failed" + h.describe(res)

    def handshake(server: Path, client: Path) -> subprocess.CompletedProcess:
        def node(tree):
            base = tree / "etc/opensearch"
            return [str(base / "full-chain.crt"), str(base / "private.key"), str(base / "root-ca.pem")]

        return subprocess.run([java, "-cp", str(out), "OpenSearchTLS", *node(server), *node(client)],
                              capture_output=True, text=True, timeout=120)

    return handshake


@pytest.fixture(scope="module")
def grown(chpki_bin, tmp_path_factory):
    """A default CA for INVENTORY, issued and bundled; then GROWN issued and bundled again."""
    from conftest import Chpki

    work = tmp_path_factory.mktemp("growth")
    tool = Chpki(chpki_bin, work)
    pf = h.write_secret(work / "pass", h.PASSPHRASE + "\n")
    inv = work / "cluster.yml"
    inv.write_text(INVENTORY)
    ok(tool.run("init-ca", "--passphrase-file", pf))
    ok(tool.run("issue", "--passphrase-file", pf))
    ok(tool.run("bundle", "--out", work / "before", "--passphrase-file", pf))
    authorities_before = intermediates(work / "ca", work / "db-before")
    inv.write_text(GROWN)
    dry = ok(tool.run("issue", "--dry-run"))
    issued = ok(tool.run("issue", "--passphrase-file", pf))
    again = ok(tool.run("issue", "--dry-run", "--json"))
    ok(tool.run("bundle", "--out", work / "after", "--passphrase-file", pf))
    return dict(work=work, tool=tool, pf=pf, dry=dry, issued=issued, again=again, before=work / "before",
                after=work / "after", authorities_before=authorities_before, ca=work / "ca")


def intermediates(ca_dir: Path, tmp: Path) -> list[dict]:
    """Every intermediate of the CA with its stored (encrypted) key, read from a copy of ca.db."""
    tmp.mkdir(parents=True, exist_ok=True)
    db = h.db_copy(ca_dir, tmp)
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute(
        "SELECT serial, authority_role, certificate_pem, authority_key_pem FROM certificates WHERE kind = 'intermediate' ORDER BY id")]
    con.close()
    return rows


def test_growth_plans_a_new_intermediate_and_issues(grown):
    dry = grown["dry"].stdout
    assert re.search(r"^intermediate\s+new\s+covers .*storage-7", dry, re.M), dry
    assert "192.168.77.0/24" in dry and "2001:db8:77::/64" in dry, dry
    assert "would be issued" in dry and NEW_HOST in dry, dry
    out = grown["issued"].stdout
    assert re.search(r"^intermediate\s+new\s+covers .*signed by the root", out, re.M), out
    # a second run: nothing to do, no new intermediate
    report = h.parse_json_output(grown["again"])
    assert report["intermediate"] is None, report
    assert report["summary"]["issued"] == report["summary"]["reissued"] == report["summary"]["renewed"] == 0, report
    # two intermediates, both current; the first is untouched
    now = intermediates(grown["ca"], grown["work"] / "db-now")
    assert len(grown["authorities_before"]) == 1 and len(now) == 2, now
    assert now[0]["certificate_pem"] == grown["authorities_before"][0]["certificate_pem"]
    assert [r["authority_role"] for r in now] == ["current", "current"], now
    new = x509.load_pem_x509_certificate(now[1]["certificate_pem"].encode())
    root = h.load_cert(grown["ca"] / "root.pem")
    assert new.issuer == root.subject and h.ext(new, x509.BasicConstraints).value.path_length == 0
    assert new.not_valid_after_utc <= root.not_valid_after_utc
    nc = h.ext(new, x509.NameConstraints).value
    assert nc is not None and x509.DNSName("storage-7") in nc.permitted_subtrees, nc
    assert x509.IPAddress(ipaddress.ip_network("2001:db8:77::/64")) in nc.permitted_subtrees, nc
    assert h.ext(root, x509.NameConstraints) is None, "the root of a default CA carries no constraints to widen"


def test_existing_hosts_keep_trust_files_and_certificates(grown):
    before, after = grown["before"], grown["after"]
    hosts = sorted(p.name for p in before.iterdir() if p.is_dir())
    assert hosts and NEW_HOST not in hosts
    assert (after / NEW_HOST).is_dir()
    trust_checked = 0
    for host in hosts:
        old, new = tree_files(before / host), tree_files(after / host)
        for rel, data in old.items():
            if is_trust_file(rel):
                trust_checked += 1
                assert new.get(rel) == data, f"{host}: trust file {rel} changed"
        for rel, data in leaf_files(old).items():
            assert new.get(rel) == data, f"{host}: certificate file {rel} changed"
        # a trust file added for a new service on an old host (grafana's ca.pem) holds the same
        # root bytes: the new intermediate travels in the chains, never in a trust file
        old_roots = {data for rel, data in old.items() if is_trust_file(rel) and rel.endswith((".pem", ".crt"))}
        for rel in set(new) - set(old):
            if is_trust_file(rel):
                assert new[rel] in old_roots, f"{host}: new trust file {rel} differs from the old roots"
    assert trust_checked >= len(hosts) * 2


def new_certificate_files(grown) -> list[tuple[str, Path]]:
    """(host, file) of every certificate file the growth added: the new host's and new ones on old hosts."""
    before, after = grown["before"], grown["after"]
    found = []
    for tree in sorted(p for p in after.iterdir() if p.is_dir()):
        old = tree_files(before / tree.name) if (before / tree.name).is_dir() else {}
        for rel in leaf_files(tree_files(tree)):
            if rel not in old:
                found.append((tree.name, tree / rel))
    return found


def test_new_certificates_verify_against_old_trust_file_openssl(grown):
    old_trust = grown["before"] / "backend-1.example.com" / "etc/opensearch/root-ca.pem"
    files = new_certificate_files(grown)
    hosts = {host for host, _ in files}
    assert NEW_HOST in hosts and "haproxy-1.example.com" in hosts and "frontend-1.example.com" in hosts, files
    jobs = []
    checked_names = set()
    for _, path in files:
        chain = x509.load_pem_x509_certificates(path.read_bytes())
        assert len(chain) >= 2, f"{path}: no intermediate after the leaf"
        dns, ips = sans_of(chain[0])
        base = ["-CAfile", str(old_trust), "-untrusted", str(path), "-x509_strict"]
        jobs.append(base + [str(path)])
        for name in dns:
            jobs.append(base + ["-verify_hostname", name, str(path)])
        for ip in ips:
            jobs.append(base + ["-verify_ip", ip, str(path)])
        checked_names.update(dns + ips)
    assert {"storage-7", "storage-7.example.com", "192.168.77.7", "2001:db8:77::7",
            "cinc-grafana-cluster.example.com", "192.168.77.100"} <= checked_names, checked_names
    failures = h.openssl_verify_jobs(jobs)
    assert not failures, "\n".join(failures)


def test_new_certificates_verify_against_old_trust_file_go(grown, go_verify):
    old_trust = grown["before"] / "backend-2.example.com" / "etc/ssl/root-ca.pem"
    if not old_trust.exists():
        old_trust = grown["before"] / "backend-2.example.com" / "etc/opensearch/root-ca.pem"
    for _, path in new_certificate_files(grown):
        leaf = x509.load_pem_x509_certificates(path.read_bytes())[0]
        dns, ips = sans_of(leaf)
        res = go_verify(old_trust, path, *dns, *ips)
        assert res.returncode == 0, f"Go x509.Verify refused {path}" + h.describe(res)


def test_old_and_new_opensearch_nodes_handshake(grown, java_tls):
    old, new = grown["after"] / "backend-1.example.com", grown["after"] / NEW_HOST
    for server, client in ((old, new), (new, old)):
        res = java_tls(server, client)
        assert res.returncode == 0, f"JSSE handshake {server.name} <- {client.name} failed" + h.describe(res)
        assert f"CN={client.name}," in res.stdout, res.stdout


# --------------------------------------------------------------------------------------------
# no key in the CA directory but the root's can sign for a name outside the inventory


def ca_keys_except_root(ca_dir: Path, tmp: Path) -> list[tuple[str, x509.Certificate, object]]:
    """(label, certificate, key) for every CA key the directory holds (files and ca.db) but the root's."""
    root = h.load_cert(ca_dir / "root.pem")
    found = []
    for key_file in sorted(ca_dir.rglob("*.key")):
        key = h.load_key(key_file, h.PASSPHRASE)
        if h.spki(key) == h.spki(root):
            continue
        cert_file = key_file.with_suffix(".pem")
        found.append((str(key_file.relative_to(ca_dir)), h.load_cert(cert_file), key))
    db = h.db_copy(ca_dir, tmp)
    con = sqlite3.connect(db)
    for serial, cert_pem, key_pem in con.execute(
            "SELECT serial, certificate_pem, authority_key_pem FROM certificates WHERE authority_key_pem IS NOT NULL"):
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        if h.spki(cert) == h.spki(root):
            continue
        key = serialization.load_pem_private_key(key_pem.encode(), h.PASSPHRASE.encode())
        found.append((f"ca.db {serial}", cert, key))
    con.close()
    return found


def test_rogue_leaves_fail_for_every_ca_key_but_the_root(grown, go_verify, tmp_path):
    ca = grown["ca"]
    keys = ca_keys_except_root(ca, tmp_path)
    assert len(keys) >= 3, [k[0] for k in keys]  # intermediate.key, and both intermediates in ca.db
    root = ca / "root.pem"
    for label, cert, key in keys:
        inter = tmp_path / "inter.pem"
        inter.write_bytes(h.pem(cert))
        # control: the same key signs a verifiable leaf for a name of the inventory
        good, _ = h.sign_leaf(cert, key, dns=["backend-1.example.com"], ips=["10.0.0.1"])
        (tmp_path / "good.pem").write_bytes(h.pem(good))
        r = h.openssl("verify", "-CAfile", root, "-untrusted", inter, tmp_path / "good.pem")
        assert r.returncode == 0, f"{label}: control leaf refused" + h.describe(r)
        for dns, ips in ((["www.example.org"], []), ([], ["8.8.8.8"])):
            rogue, _ = h.sign_leaf(cert, key, dns=dns, ips=ips, cn="rogue")
            path = tmp_path / "rogue.pem"
            path.write_bytes(h.pem(rogue))
            r = h.openssl("verify", "-CAfile", root, "-untrusted", inter, path)
            text = r.stdout + r.stderr
            assert r.returncode != 0, f"{label}: rogue leaf for {dns or ips} verified" + h.describe(r)
            assert re.search(r"subtree violation|name constraint", text, re.I), f"{label}: {text}"
            chain = tmp_path / "rogue-chain.pem"
            chain.write_bytes(h.pem(rogue) + h.pem(cert))
            g = go_verify(root, chain)
            assert g.returncode == 1 and re.search(r"constraint|not permitted", g.stdout), f"{label}: Go: {g.stdout}"


# --------------------------------------------------------------------------------------------
# retirement

SMALL = """\
domain: example.com
subject: {O: MyCompany, C: US}
ca: {common_name: Retire Root CA}
defaults: {key: ec-p256, validity: 397d}
hosts:
  - {name: node-1.example.com, ips: [10.0.0.1], groups: [backend]}
  - {name: node-2.example.com, ips: [10.0.0.2], groups: [backend]}
  - {name: node-3.example.com, ips: [10.0.0.3, "2001:db8::3"], groups: [backend]}
services:
  etcd: {hosts: backend, server_cert_mode: both}
"""


def leaves_by_identity(tool) -> dict[tuple, list[dict]]:
    data = h.parse_json_output(ok(tool.run("list", "--json")))
    items = data if isinstance(data, list) else data.get("certificates", data)
    out: dict[tuple, list[dict]] = {}
    for c in items:
        if c["kind"] != "ca":
            out.setdefault((c["kind"], c.get("service"), c.get("host")), []).append(c)
    return out


def test_remove_a_host_and_change_an_ip_retires_exactly_those(chpki, write_inventory, passphrase_file, ca_dir, tmp_path):
    tool = chpki
    inv = write_inventory(SMALL)
    pf = passphrase_file
    ok(tool.run("init-ca", "--passphrase-file", pf))
    ok(tool.run("issue", "--passphrase-file", pf))
    # a one-off outside the inventory (the README's example): it grows the CA and is never retired
    oneoff = ok(tool.run("issue", "server", "--service", "grafana", "--host", "tools.example.com", "--passphrase-file", pf))
    assert re.search(r"^intermediate\s+new\s+covers tools", oneoff.stdout, re.M), oneoff.stdout
    before = {c["serial"]: c for cs in leaves_by_identity(tool).values() for c in cs}
    node3 = {s for s, c in before.items() if c.get("host") == "node-3.example.com"}
    node2_server = {s for s, c in before.items() if c.get("host") == "node-2.example.com" and c["kind"] == "server"}
    assert len(node3) == 2 and len(node2_server) == 1, before

    inv.write_text(SMALL.replace("  - {name: node-3.example.com, ips: [10.0.0.3, \"2001:db8::3\"], groups: [backend]}\n", "")
                   .replace("ips: [10.0.0.2]", "ips: [10.0.0.42]"))
    snap = h.snapshot(ca_dir)
    dry = h.parse_json_output(ok(tool.run("issue", "--dry-run", "--json")))
    assert h.snapshot(ca_dir) == snap, "--dry-run changed the CA"
    assert all(c["action"] != "retire" for c in dry["certificates"]), "retire lines are listed apart"
    retire = {c["serial"]: c for c in dry["retire"] if c["action"] == "retire"}
    assert set(retire) == node3 | node2_server, retire
    assert {retire[s]["revocation_reason"] for s in node3} == {"cessationOfOperation"}
    assert {retire[s]["revocation_reason"] for s in node2_server} == {"superseded"}
    text = ok(tool.run("issue", "--dry-run")).stdout
    assert len(re.findall(r"^retire\s", text, re.M)) == 3 and "3 to retire (waiting for --prune)" in text, text

    # without --prune: reissued, nothing revoked, the retire lines still wait
    plain = h.parse_json_output(ok(tool.run("issue", "--json", "--passphrase-file", pf)))
    assert plain["summary"]["reissued"] == 1 and plain["summary"]["retire"] == 3 and plain["summary"]["retired"] == 0, plain
    assert not [l for l in (ca_dir / "index.txt").read_text().splitlines() if l.startswith("R")]

    pruned = h.parse_json_output(ok(tool.run("issue", "--prune", "--json", "--passphrase-file", pf)))
    assert {c["serial"] for c in pruned["retire"] if c["action"] == "retired"} == set(retire), pruned
    index = h.parse_index((ca_dir / "index.txt").read_text())
    revoked = {e["serial"]: e["revocation"].split(",")[1] for e in index if e["status"] == "R"}
    assert set(revoked) == set(retire), (revoked, set(retire))
    assert {revoked[s] for s in node3} == {"cessationOfOperation"} and {revoked[s] for s in node2_server} == {"superseded"}

    # the CRLs: each CA with leaves publishes one into crl.pem; openssl shows the reasons
    rows = h.db_rows(ca_dir, tmp_path / "db")
    first = [r for r in rows if r["kind"] == "intermediate"][0]
    inter_first = tmp_path / "inter-first.pem"
    inter_first.write_text(first["certificate_pem"])
    crl_pem = (ca_dir / "crl.pem").read_bytes()
    parts = [b"-----BEGIN X509 CRL-----" + part for part in crl_pem.split(b"-----BEGIN X509 CRL-----")[1:]]
    assert len(parts) == 2, "the first intermediate (the nodes' leaves) and the one grown for the one-off each sign a CRL"
    texts = []
    for n, part in enumerate(parts):
        (tmp_path / f"crl-{n}.pem").write_bytes(part)
        texts.append(h.openssl("crl", "-in", tmp_path / f"crl-{n}.pem", "-noout", "-text", check=True).stdout)
    first_text = next(t for t in texts if "Retire Root CA Intermediate," in t or "Retire Root CA Intermediate\n" in t)
    for serial in retire:
        m = re.search(rf"Serial Number: {serial}\n.*?CRL Reason Code:\s*\n\s*(.+?)\n", first_text, re.S)
        assert m, f"{serial} not in the first intermediate's CRL" + first_text
        assert m.group(1).strip() == ("Cessation Of Operation" if serial in node3 else "Superseded"), (serial, m.group(1))
    # verify -crl_check with crl.pem (several CRLs in one file): revoked fails, the others pass
    leaf_files = {}
    for row in rows:
        if row["kind"] in h.LEAF_KINDS and row["issuer_serial"] == first["serial"]:
            p = tmp_path / f"{row['serial']}.pem"
            p.write_text(row["certificate_pem"])
            leaf_files[row["serial"]] = p
    status = {r["serial"]: r["status"] for r in rows}
    for serial, path in leaf_files.items():
        r = h.openssl("verify", "-crl_check", "-CAfile", ca_dir / "root.pem", "-untrusted", inter_first,
                      "-CRLfile", ca_dir / "crl.pem", path)
        if serial in retire:
            assert r.returncode != 0 and "revoked" in (r.stdout + r.stderr), h.describe(r)
        elif status[serial] == "valid":
            assert r.returncode == 0, h.describe(r)

    # OCSP from index.txt: revoked for the retired, good for the rest of that issuer's leaves
    statuses = h.ocsp_statuses(ca_dir / "index.txt", inter_first, list(leaf_files.values()), tmp_path / "ocsp")
    for serial, path in leaf_files.items():
        expected = "revoked" if serial in retire else "good"
        assert statuses[str(path)] == expected, (serial, status[serial], statuses[str(path)])

    # a second run does nothing; the one-off is still valid
    second = h.parse_json_output(ok(tool.run("issue", "--prune", "--json", "--passphrase-file", pf)))
    assert all(c["action"] == "unchanged" for c in second["certificates"]) and second["retire"] == [], second
    assert second["intermediate"] is None
    assert any(c.get("service") == "grafana" and c["status"] == "valid" for cs in leaves_by_identity(tool).values() for c in cs)


# --------------------------------------------------------------------------------------------
# refusals: growth outside a ROOT's constraints


def test_no_intermediate_ca_refuses_growth_with_one_line(chpki, write_inventory, passphrase_file, ca_dir):
    tool = chpki
    inv = write_inventory(SMALL)
    ok(tool.run("init-ca", "--no-intermediate", "--passphrase-file", passphrase_file))
    assert not (ca_dir / "intermediate.pem").exists()
    assert h.ext(h.load_cert(ca_dir / "root.pem"), x509.NameConstraints) is not None
    ok(tool.run("issue", "--passphrase-file", passphrase_file))
    inv.write_text(SMALL.replace("services:", "  - {name: node-9.example.com, ips: [10.0.0.9], groups: [backend]}\nservices:"))
    snap = h.snapshot(ca_dir)
    for args in (["--dry-run"], ["--passphrase-file", passphrase_file]):
        res = tool.run("issue", *args)
        line = h.assert_refused(res, "node-9", "rotate-ca", "--no-intermediate", error="ca.name-constraints")
        assert "name constraints" in line
        assert h.snapshot(ca_dir) == snap, "a refused issue changed the CA"
    # the one-off follows the same rule
    res = tool.run("issue", "server", "--service", "grafana", "--host", "tools.example.com", "--passphrase-file", passphrase_file)
    h.assert_refused(res, "tools", "rotate-ca", error="ca.name-constraints")
    assert h.snapshot(ca_dir) == snap


def test_first_release_ca_keeps_working_and_refuses_growth(chpki, workdir):
    tool = chpki
    shutil.copytree(LEGACY_FIXTURE / "ca", workdir / "ca")
    inv = workdir / "cluster.yml"
    inv.write_text((LEGACY_FIXTURE / "cluster.yml").read_text())
    pf = h.write_secret(workdir / "pass", (LEGACY_FIXTURE / "passphrase.txt").read_text())
    ok(tool.run("issue", "--passphrase-file", pf))
    again = h.parse_json_output(ok(tool.run("issue", "--dry-run", "--json")))
    assert again["intermediate"] is None and again["summary"]["issued"] == 0, again
    inv.write_text(inv.read_text().replace(
        "services:", "  - {name: node-3.example.com, ips: [10.0.0.3], groups: [backend]}\nservices:"))
    snap = h.snapshot(workdir / "ca")
    res = tool.run("issue", "--passphrase-file", pf)
    line = h.assert_refused(res, "node-3", "rotate-ca", error="ca.name-constraints")
    assert "ROOT" in line or "root" in line
    assert h.snapshot(workdir / "ca") == snap
