"""`chpki issue`: SPEC §1–§3 and docs/issuance.md (the certificate profiles and the plan).

Every expectation is computed here from the inventory YAML (PyYAML) by the rules of
docs/issuance.md (`helpers.expected_certificates`), and every artefact is checked with Python's
cryptography and the `openssl` CLI; chpki is never asked what it should have produced.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

import conftest
import helpers as h

REFERENCE = h.INVENTORIES / "reference-000.yml"
MINICLUSTER = h.INVENTORIES / "minicluster.yml"
SERIAL_HEX = re.compile(r"^[0-9A-F]+$")
ACTIONS = ("issued", "reissued", "renewed", "unchanged", "retire", "retired")
ONE_HOUR = dt.timedelta(hours=1)
SLACK = dt.timedelta(seconds=5)


# ---------------------------------------------------------------------------------------------
# running chpki


def issue(tool_run, ca_dir, inventory, passphrase_file, *args, env=None):
    """`chpki issue --json ...`; returns (report, result). Asserts exit 0."""
    pass_args = ["--passphrase-file", passphrase_file] if passphrase_file else []
    res = tool_run("issue", "--ca-dir", ca_dir, "--inventory", inventory, *pass_args, "--json", *args, env=env)
    h.assert_ok(res)
    return h.parse_json_output(res), res


def floor_s(t: dt.datetime) -> dt.datetime:
    return t.replace(microsecond=0)


def by_identity(report) -> dict:
    out = {}
    for c in report["certificates"]:
        ident = (c["kind"], c["host"], c["service"], c["name"])
        assert ident not in out, f"the report lists {ident} twice"
        out[ident] = c
    return out


def check_report_shape(report, dry_run: bool):
    assert set(report) >= {"dry_run", "certificates", "summary"}, report.keys()
    assert report["dry_run"] is dry_run
    assert isinstance(report["certificates"], list)
    for c in report["certificates"]:
        assert set(c) >= {"action", "reason", "kind", "service", "host", "name", "serial", "not_after"}, c
        assert c["action"] in ACTIONS, c
        assert isinstance(c["reason"], str) and c["reason"].strip(), c
        assert c["kind"] in ("server", "client", "admin"), c
        assert c["host"] is None or isinstance(c["host"], str), c
        if c["serial"] is not None:
            assert SERIAL_HEX.match(c["serial"]), c
        if c["not_after"] is not None:
            h.rfc3339(c["not_after"])
    lines = report["certificates"] + report.get("retire", [])  # retire lines are listed apart (test_growth.py)
    counts = {a: sum(1 for c in lines if c["action"] == a) for a in ACTIONS}
    assert {a: report["summary"].get(a) for a in ACTIONS} == counts, report["summary"]


def valid_leaves(ca_dir, tmp) -> dict:
    """identity -> the valid ca.db row, asserting there is one valid row per identity."""
    out = {}
    for r in h.leaf_rows(h.db_rows(ca_dir, tmp)):
        ident = h.row_identity(r)
        assert ident not in out, f"two valid rows for {ident}"
        out[ident] = r
    return out


# ---------------------------------------------------------------------------------------------
# the profile checks (each returns a list of problems, so one test reports every bad certificate)


def problems_sans(e: h.Expected, cert) -> list[str]:
    san = h.ext(cert, x509.SubjectAlternativeName)
    if e.kind != "server":
        return [] if san is None else [f"{e}: a {e.kind} certificate must have no SAN extension, has {san.value}"]
    if san is None:
        return [f"{e}: no SAN extension"]
    out = []
    names = list(san.value)
    got = h.general_names(names)
    if got != e.sans:
        out.append(f"{e}: SANs {sorted(got)} != expected {sorted(e.sans)} "
                   f"(missing {sorted(e.sans - got)}, extra {sorted(got - e.sans)})")
    if len(names) != len(got):
        out.append(f"{e}: duplicate SAN entries {names}")
    if san.critical:
        out.append(f"{e}: SAN must not be critical (the subject is not empty)")
    return out


def problems_subject(e: h.Expected, cert, issuer) -> list[str]:
    out = []
    got = h.name_pairs(cert.subject)
    if got != e.attrs:
        out.append(f"{e}: subject {cert.subject.rfc4514_string()} != expected "
                   f"{x509.Name([x509.NameAttribute(o, v) for o, v in e.attrs]).rfc4514_string()} (or order differs)")
    if cert.issuer != issuer.subject:
        out.append(f"{e}: issuer {cert.issuer.rfc4514_string()} is not the CA {issuer.subject.rfc4514_string()}")
    return out


def problems_extensions(e: h.Expected, cert, issuer) -> list[str]:
    out = []
    if cert.version != x509.Version.v3:
        out.append(f"{e}: not v3")
    bc = h.ext(cert, x509.BasicConstraints)
    if bc is None or not bc.critical or bc.value.ca is not False or bc.value.path_length is not None:
        out.append(f"{e}: basicConstraints must be critical CA:FALSE, is {bc}")
    ku = h.ext(cert, x509.KeyUsage)
    want_ku = {"digitalSignature"} | ({"keyEncipherment"} if e.key.startswith("rsa") else set())
    if ku is None or not ku.critical or h.key_usage_names(cert) != want_ku:
        out.append(f"{e}: keyUsage must be critical {sorted(want_ku)}, is "
                   f"{None if ku is None else (ku.critical, sorted(h.key_usage_names(cert)))}")
    eku = h.ext(cert, x509.ExtendedKeyUsage)
    if eku is None or eku.critical or h.eku_names(cert) != e.eku:
        out.append(f"{e}: extendedKeyUsage must be non-critical {sorted(e.eku)}, is "
                   f"{None if eku is None else (eku.critical, sorted(h.eku_names(cert)))}")
    ski = h.ext(cert, x509.SubjectKeyIdentifier)
    if ski is None or ski.critical or not ski.value.digest:
        out.append(f"{e}: a non-critical SKI is required, is {ski}")
    aki = h.ext(cert, x509.AuthorityKeyIdentifier)
    issuer_ski = h.ext(issuer, x509.SubjectKeyIdentifier).value.digest
    if aki is None or aki.critical or aki.value.key_identifier != issuer_ski:
        out.append(f"{e}: AKI must be non-critical with the CA's SKI {issuer_ski.hex()}, is {aki}")
    allowed = {x509.BasicConstraints, x509.KeyUsage, x509.ExtendedKeyUsage, x509.SubjectKeyIdentifier,
               x509.AuthorityKeyIdentifier, x509.SubjectAlternativeName}
    others = [x.oid.dotted_string for x in cert.extensions if type(x.value) not in allowed]
    if others:
        out.append(f"{e}: unexpected extensions {others}")
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception as exc:  # noqa: BLE001
        out.append(f"{e}: signature does not verify with the CA key: {exc!r}")
    return out


def problems_key(e: h.Expected, row, cert) -> list[str]:
    out = []
    pem_text = row["private_key_pem"] or ""
    if not h.is_pkcs8_unencrypted(pem_text):
        out.append(f"{e}: private_key_pem is not one unencrypted PKCS#8 block: "
                   f"{re.findall(r'-----BEGIN [A-Z0-9 ]+-----', pem_text)}")
        return out
    key = serialization.load_pem_private_key(pem_text.encode(), None)
    if h.spki(key) != h.spki(cert):
        out.append(f"{e}: private key does not match the certificate")
    if h.key_type_of(cert.public_key()) != e.key:
        out.append(f"{e}: key type {h.key_type_of(cert.public_key())}, expected {e.key}")
    if row["key_type"] != e.key:
        out.append(f"{e}: ca.db key_type {row['key_type']!r}, expected {e.key!r}")
    return out


def problems_validity(e: h.Expected, cert, issuer, t0, t1) -> list[str]:
    """notBefore = now - 1h, notAfter = now + validity (capped at the CA), now in [t0, t1]."""
    out = []
    nb, na = cert.not_valid_before_utc, cert.not_valid_after_utc
    if not (floor_s(t0) - ONE_HOUR - SLACK <= nb <= t1 - ONE_HOUR + SLACK):
        out.append(f"{e}: notBefore {nb} is not the issuing time minus 1 h ({t0}..{t1})")
    now = nb + ONE_HOUR
    want = min(h.period_after(now, e.validity), issuer.not_valid_after_utc)
    if abs(na - want) > SLACK:
        out.append(f"{e}: notAfter {na}, expected {want} (notBefore + 1 h + {e.validity}, capped at the CA)")
    if na > issuer.not_valid_after_utc:
        out.append(f"{e}: notAfter {na} runs past the CA's {issuer.not_valid_after_utc}")
    return out


def problems_row(e: h.Expected, row, cert) -> list[str]:
    out = []
    if int(row["serial"], 16) != cert.serial_number or not SERIAL_HEX.match(row["serial"]):
        out.append(f"{e}: ca.db serial {row['serial']!r} is not the certificate's {cert.serial_number:X} in upper hex")
    if row["subject"] != cert.subject.rfc4514_string():
        out.append(f"{e}: ca.db subject {row['subject']!r} != RFC 4514 {cert.subject.rfc4514_string()!r}")
    try:
        sans = json.loads(row["sans"])
    except ValueError:
        sans = None
    if not isinstance(sans, list) or set(sans) != e.sans or len(sans) != len(e.sans):
        out.append(f"{e}: ca.db sans {row['sans']!r}, expected {sorted(e.sans)}")
    return out


def verify_jobs(e: h.Expected, path: Path, chain: list, attime: dt.datetime | None = None) -> list[list]:
    """openssl verify argument lists: every DNS and IP SAN of a server certificate with
    -purpose sslserver (-purpose sslclient too when it has clientAuth); clients and admin with
    -purpose sslclient."""
    base = list(chain) + (["-attime", str(int(attime.timestamp()))] if attime else [])
    jobs = []
    if e.kind == "server":
        for d in e.dns:
            jobs.append([*base, "-purpose", "sslserver", "-verify_hostname", d, path])
        for ip in e.ips:
            jobs.append([*base, "-purpose", "sslserver", "-verify_ip", ip, path])
    if "clientAuth" in e.eku:
        jobs.append([*base, "-purpose", "sslclient", path])
    if "serverAuth" in e.eku and e.kind != "server":
        jobs.append([*base, "-purpose", "sslserver", path])
    return jobs


def chain_args(ca_dir: Path) -> list:
    args = ["-CAfile", ca_dir / "root.pem"]
    if (ca_dir / "intermediate.pem").exists():
        args += ["-untrusted", ca_dir / "intermediate.pem"]
    return args


def issuer_of(ca_dir: Path) -> x509.Certificate:
    p = ca_dir / "intermediate.pem"
    return h.load_cert(p if p.exists() else ca_dir / "root.pem")


def write_leaves(rows: dict, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for i, (ident, r) in enumerate(sorted(rows.items(), key=lambda kv: str(kv[0]))):
        p = out / f"leaf-{i:03d}.pem"
        p.write_text(r["certificate_pem"])
        paths[ident] = p
    return paths


def plan_counts(summary: dict) -> dict:
    """The four certificate actions of a summary (retire counts are test_growth.py's)."""
    return {k: summary[k] for k in ("issued", "reissued", "renewed", "unchanged")}


def check_all(expected: dict, rows: dict, ca_dir: Path, t0, t1, tmp: Path, attime=None):
    """Every profile check on every certificate, then openssl verify of every name."""
    assert set(rows) == set(expected), (
        f"valid certificates in ca.db differ from the inventory's: missing {sorted(map(str, set(expected) - set(rows)))}, "
        f"extra {sorted(map(str, set(rows) - set(expected)))}")
    issuer = issuer_of(ca_dir)
    problems = []
    for ident, e in expected.items():
        row = rows[ident]
        cert = h.row_cert(row)
        problems += problems_sans(e, cert) + problems_subject(e, cert, issuer) + problems_extensions(e, cert, issuer)
        problems += problems_key(e, row, cert) + problems_row(e, row, cert)
        if t0 is not None:
            problems += problems_validity(e, cert, issuer, t0, t1)
    assert not problems, "\n".join(problems)
    paths = write_leaves(rows, tmp / "leaves")
    jobs = [j for ident, e in expected.items() for j in verify_jobs(e, paths[ident], chain_args(ca_dir), attime)]
    failures = h.openssl_verify_jobs(jobs)
    assert not failures, f"{len(failures)} of {len(jobs)} openssl verify runs failed:" + "".join(failures[:5])


# ---------------------------------------------------------------------------------------------
# reference 000, issued once per module, with a root-signed and an intermediate-signed CA


@pytest.fixture(scope="module", params=["root", "intermediate"])
def ref(request, chpki_bin, tmp_path_factory):
    base = tmp_path_factory.mktemp(f"issue-ref-{request.param}")
    work = base / "work"
    work.mkdir()
    inv = work / "cluster.yml"
    shutil.copyfile(REFERENCE, inv)
    pf = h.write_secret(base / "pass", h.PASSPHRASE + "\n")
    tool = conftest.Chpki(chpki_bin, work)
    ca_dir = base / "ca"
    extra = [] if request.param == "intermediate" else ["--no-intermediate"]
    h.assert_ok(tool.run("init-ca", "--ca-dir", ca_dir, "--inventory", inv, "--passphrase-file", pf, *extra))
    t0 = h.utcnow()
    report, res = issue(tool.run, ca_dir, inv, pf)
    t1 = h.utcnow()
    rows = valid_leaves(ca_dir, base / "tmp")
    expected = h.expected_certificates(h.load_yaml(inv))
    certs = {ident: h.row_cert(r) for ident, r in rows.items()}
    return SimpleNamespace(
        kind=request.param, base=base, work=work, inv=inv, pf=pf, tool=tool, ca_dir=ca_dir, t0=t0, t1=t1,
        report=report, res=res, rows=rows, all_rows=h.db_rows(ca_dir, base / "tmp"), expected=expected,
        certs=certs, issuer=issuer_of(ca_dir), root=h.load_cert(ca_dir / "root.pem"),
        paths=write_leaves(rows, base / "leaves"), chain=chain_args(ca_dir),
    )


def test_reference_implies_41_certificates():
    """The model itself (so a wrong model cannot pass silently): 24 server, 16 client, 1 admin."""
    e = h.expected_certificates(h.load_yaml(REFERENCE))
    kinds = [k[0] for k in e]
    assert (kinds.count("server"), kinds.count("client"), kinds.count("admin")) == (24, 16, 1)
    os1 = e[("server", "backend-1.example.com", "opensearch", "backend-1.example.com")]
    assert os1.sans == {
        "DNS:opensearch.example.com", "DNS:backend-1", "DNS:backend-1.example.com",
        "DNS:cinc-opensearch-cluster.example.com", "DNS:localhost",
        "IP:10.0.0.1", "IP:127.0.0.1", "IP:::1",
    }
    vip = e[("server", "haproxy-2.example.com", "haproxy", "cinc-server-cluster.example.com")]
    assert vip.sans == {"DNS:cinc-server-cluster.example.com", "IP:10.0.0.101"}
    assert ("client", "backend-3.example.com", "patroni", "patroni@backend-3") in e
    assert not any(k[0] == "client" and k[2] == "opensearch" for k in e)
    assert e[("admin", None, "opensearch", "admin")].key == "rsa-2048"


def test_report_lists_every_implied_certificate_as_issued(ref):
    check_report_shape(ref.report, dry_run=False)
    got = by_identity(ref.report)
    assert set(got) == set(ref.expected), (
        f"missing {sorted(map(str, set(ref.expected) - set(got)))}, extra {sorted(map(str, set(got) - set(ref.expected)))}")
    assert {c["action"] for c in got.values()} == {"issued"}
    assert plan_counts(ref.report["summary"]) == {"issued": 41, "reissued": 0, "renewed": 0, "unchanged": 0}
    for ident, c in got.items():
        cert = ref.certs[ident]
        assert int(c["serial"], 16) == cert.serial_number, c
        assert c["serial"] == ref.rows[ident]["serial"], c
        assert h.rfc3339(c["not_after"]) == cert.not_valid_after_utc, c


def test_ca_db_holds_exactly_the_implied_certificates(ref):
    leaves = h.leaf_rows(ref.all_rows, status=None)
    assert len(leaves) == 41 and all(r["status"] == "valid" for r in leaves)
    assert set(ref.rows) == set(ref.expected)
    problems = [p for ident, e in ref.expected.items() for p in problems_row(e, ref.rows[ident], ref.certs[ident])]
    assert not problems, "\n".join(problems)


def test_server_sans_exactly_the_documented_rule(ref):
    problems = [p for ident, e in ref.expected.items() for p in problems_sans(e, ref.certs[ident])]
    assert not problems, "\n".join(problems)


def test_subjects_exact_attributes_in_order(ref):
    problems = [p for ident, e in ref.expected.items() for p in problems_subject(e, ref.certs[ident], ref.issuer)]
    assert not problems, "\n".join(problems)
    # the nodes_dn string of SPEC §3, verbatim
    cert = ref.certs[("server", "backend-1.example.com", "opensearch", "backend-1.example.com")]
    assert cert.subject.rfc4514_string() == (
        "CN=backend-1.example.com,OU=MyOrganizationalUnit,O=MyCompany,L=MyCity,ST=MyState,C=US")
    assert ref.certs[("client", "frontend-2.example.com", "nginx", "nginx@frontend-2")].subject.rfc4514_string() \
        == "CN=nginx@frontend-2"
    assert ref.certs[("admin", None, "opensearch", "admin")].subject.rfc4514_string() == (
        "CN=admin,OU=MyOrganizationalUnit,O=MyCompany,L=MyCity,ST=MyState,C=US")


def test_extensions_usages_and_signature(ref):
    problems = [p for ident, e in ref.expected.items() for p in problems_extensions(e, ref.certs[ident], ref.issuer)]
    assert not problems, "\n".join(problems)
    if ref.kind == "intermediate":
        assert all(c.issuer == ref.issuer.subject != ref.root.subject for c in ref.certs.values())


def test_serials_positive_16_to_20_octets_and_unique(ref):
    serials = [int(r["serial"], 16) for r in ref.all_rows]
    assert len(serials) == len(set(serials)), "duplicate serial in ca.db"
    for ident, cert in ref.certs.items():
        assert cert.serial_number > 0, ident
        assert 16 <= h.cert_serial_der_len(cert) <= 20, (ident, h.cert_serial_der_len(cert))
    report_serials = [c["serial"] for c in ref.report["certificates"]]
    assert len(set(report_serials)) == 41


def test_validity_now_minus_1h_to_397d_within_the_ca(ref):
    problems = [p for ident, e in ref.expected.items()
                for p in problems_validity(e, ref.certs[ident], ref.issuer, ref.t0, ref.t1)]
    assert not problems, "\n".join(problems)
    for cert in ref.certs.values():
        assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=397, hours=1)


def test_private_keys_pkcs8_match_and_types(ref):
    problems = [p for ident, e in ref.expected.items() for p in problems_key(e, ref.rows[ident], ref.certs[ident])]
    assert not problems, "\n".join(problems)
    types = {(ident[2], h.key_type_of(c.public_key())) for ident, c in ref.certs.items()}
    assert {t for s, t in types if s == "opensearch"} == {"rsa-2048"}
    assert {t for s, t in types if s != "opensearch"} == {"ec-p256"}
    # and openssl reads the stored key as PKCS#8 and derives the certificate's public key from it
    ident = ("server", "backend-2.example.com", "opensearch", "backend-2.example.com")
    key_path = ref.base / "os-key.pem"
    key_path.write_text(ref.rows[ident]["private_key_pem"])
    pub_from_key = h.openssl("pkey", "-in", key_path, "-pubout", check=True).stdout
    pub_from_cert = h.openssl("x509", "-in", ref.paths[ident], "-noout", "-pubkey", check=True).stdout
    assert pub_from_key == pub_from_cert


def test_openssl_verifies_every_server_name_and_ip(ref):
    jobs = [j for ident, e in ref.expected.items() if e.kind == "server" for j in verify_jobs(e, ref.paths[ident], ref.chain)]
    assert len(jobs) >= 24 * 2
    failures = h.openssl_verify_jobs(jobs)
    assert not failures, f"{len(failures)} of {len(jobs)} openssl verify runs failed:" + "".join(failures[:5])


def test_openssl_server_name_check_is_real(ref):
    """The hostname checks above can fail: a name not in the SANs is rejected."""
    path = ref.paths[("server", "backend-1.example.com", "etcd", "backend-1.example.com")]
    r = h.openssl("verify", *ref.chain, "-purpose", "sslserver", "-verify_hostname", "backend-2.example.com", path)
    assert r.returncode != 0 and "hostname mismatch" in (r.stdout + r.stderr).lower(), h.describe(r)
    vip = ref.paths[("server", "haproxy-1.example.com", "haproxy", "cinc-minio-cluster.example.com")]
    r = h.openssl("verify", *ref.chain, "-purpose", "sslserver", "-verify_hostname", "haproxy-1.example.com", vip)
    assert r.returncode != 0, "a haproxy VIP certificate must not carry the balancer's own name" + h.describe(r)


def test_openssl_verifies_client_and_admin_certificates(ref):
    clients = [(ident, e) for ident, e in ref.expected.items() if e.kind in ("client", "admin")]
    assert len(clients) == 17
    jobs = [[*ref.chain, "-purpose", "sslclient", ref.paths[ident]] for ident, e in clients]
    failures = h.openssl_verify_jobs(jobs)
    assert not failures, "".join(failures[:5])
    # clientAuth only: refused as a TLS server
    for ident, e in clients[:3]:
        r = h.openssl("verify", *ref.chain, "-purpose", "sslserver", ref.paths[ident])
        assert r.returncode != 0, f"{ident} verifies as a TLS server" + h.describe(r)
    for ident, e in clients:
        assert h.ext(ref.certs[ident], x509.SubjectAlternativeName) is None, ident


def test_index_txt_lists_every_certificate_but_the_root(ref, tmp_path):
    entries = h.parse_index((ref.ca_dir / "index.txt").read_text())
    non_root = [r for r in ref.all_rows if r["kind"] != "root"]
    assert sorted(e["serial"] for e in entries) == sorted(r["serial"] for r in non_root)
    by_serial = {r["serial"]: h.row_cert(r) for r in non_root}
    for e in entries:
        cert = by_serial[e["serial"]]
        assert e["status"] == "V" and e["revocation"] == "", e
        assert e["expiry"] == h.asn1_time(cert.not_valid_after_utc), e
        assert e["subject"] == h.oneline(cert.subject), e
    # openssl's own one-line subject for one of them
    ident = ("admin", None, "opensearch", "admin")
    compat = h.openssl("x509", "-in", ref.paths[ident], "-noout", "-subject", "-nameopt", "compat", check=True).stdout
    assert compat.strip() == "subject=" + next(e["subject"] for e in entries if e["serial"] == ref.rows[ident]["serial"])
    # and openssl ocsp -index reads it: every certificate asked about is "good"
    sample = [ref.paths[i] for i in list(ref.paths)[:6]]
    idx = tmp_path / "index.txt"
    shutil.copyfile(ref.ca_dir / "index.txt", idx)
    shutil.copyfile(ref.ca_dir / "index.txt.attr", tmp_path / "index.txt.attr")  # unique_subject = no
    issuer_pem = ref.ca_dir / ("intermediate.pem" if ref.kind == "intermediate" else "root.pem")
    statuses = h.ocsp_statuses(idx, issuer_pem, sample, tmp_path / "ocsp")
    assert set(statuses.values()) == {"good"}, statuses


def test_issue_wrote_nothing_outside_the_ca_dir(ref):
    assert sorted(os.listdir(ref.work)) == ["cluster.yml"]
    for dirpath, dirnames, filenames in os.walk(ref.ca_dir):
        assert h.mode_of(dirpath) == 0o700, dirpath
        for f in filenames:
            assert h.mode_of(Path(dirpath) / f) == 0o600, f"{dirpath}/{f} is {oct(h.mode_of(Path(dirpath) / f))}"


# ---------------------------------------------------------------------------------------------
# the plan: dry run, idempotence, renewal, reissue


@pytest.fixture
def refca(run, workdir, init_ca, ca_dir, passphrase_file, tmp_path):
    """A fresh name-constrained CA made from reference 000 (inventory at <workdir>/cluster.yml)."""
    inv = workdir / "cluster.yml"
    shutil.copyfile(REFERENCE, inv)
    init_ca("--inventory", inv)
    return SimpleNamespace(inv=inv, ca_dir=ca_dir, pf=passphrase_file, tmp=tmp_path / "t",
                           run=lambda *a, **kw: issue(run, ca_dir, inv, passphrase_file, *a, **kw))


def test_dry_run_changes_nothing_and_reports_the_plan(refca, run, snapshot, passphrase):
    before = snapshot(refca.ca_dir)
    # passphrase from the environment this time
    report, _ = issue(run, refca.ca_dir, refca.inv, None, "--dry-run", env={"CHPKI_CA_PASSPHRASE": passphrase})
    assert snapshot(refca.ca_dir) == before, "--dry-run changed the CA directory"
    check_report_shape(report, dry_run=True)
    got = by_identity(report)
    assert set(got) == set(h.expected_certificates(h.load_yaml(refca.inv)))
    assert {c["action"] for c in got.values()} == {"issued"}
    assert plan_counts(report["summary"]) == {"issued": 41, "reissued": 0, "renewed": 0, "unchanged": 0}
    assert all(c["serial"] is None for c in got.values()), "a dry run has no serial for a certificate it did not issue"
    assert h.leaf_rows(h.db_rows(refca.ca_dir, refca.tmp), status=None) == []

    # after a real run, a dry run of a changed inventory shows the reissues and still changes nothing
    refca.run()
    text = refca.inv.read_text()
    refca.inv.write_text(text.replace("extra_san: [cinc-postgresql-cluster]", "extra_san: [cinc-postgresql-cluster, pg]"))
    before = snapshot(refca.ca_dir)
    report, _ = refca.run("--dry-run")
    assert snapshot(refca.ca_dir) == before, "--dry-run changed the CA directory"
    check_report_shape(report, dry_run=True)
    assert plan_counts(report["summary"]) == {"issued": 0, "reissued": 4, "renewed": 0, "unchanged": 37}
    assert {k for k, c in by_identity(report).items() if c["action"] == "reissued"} == {
        ("server", f"backend-{i}.example.com", "patroni", f"backend-{i}.example.com") for i in range(1, 5)}


def test_text_output_has_a_plan_line_per_certificate(refca, run):
    res = run("issue", "--ca-dir", refca.ca_dir, "--inventory", refca.inv, "--passphrase-file", refca.pf)
    h.assert_ok(res)
    lines = res.stdout.splitlines()

    def word(token):
        return re.compile(rf"(?<![\w.@-]){re.escape(token)}(?![\w.@-])")

    missing = []
    for (kind, host, service, name) in h.expected_certificates(h.load_yaml(refca.inv)):
        tokens = [word("issued"), word(name)] + ([word(host)] if host and host != name else [])
        if not any(all(t.search(line) for t in tokens) for line in lines):
            missing.append((kind, host, service, name))
    assert not missing, f"no plan line (with 'issued', the name and the host) for {missing}" + h.describe(res)


def test_second_run_is_idempotent(refca, tmp_path):
    first, _ = refca.run()
    rows1 = h.db_rows(refca.ca_dir, refca.tmp)
    index1 = (refca.ca_dir / "index.txt").read_bytes()
    second, _ = refca.run()
    check_report_shape(second, dry_run=False)
    assert plan_counts(second["summary"]) == {"issued": 0, "reissued": 0, "renewed": 0, "unchanged": 41}
    rows2 = h.db_rows(refca.ca_dir, refca.tmp)
    assert len(rows2) == len(rows1)
    assert [(r["serial"], r["status"]) for r in rows2] == [(r["serial"], r["status"]) for r in rows1]
    assert (refca.ca_dir / "index.txt").read_bytes() == index1
    valid = valid_leaves(refca.ca_dir, refca.tmp)
    for ident, c in by_identity(second).items():
        assert c["serial"] == valid[ident]["serial"], c
        assert h.rfc3339(c["not_after"]) == h.row_cert(valid[ident]).not_valid_after_utc, c
    assert by_identity(first).keys() == by_identity(second).keys()


def test_renewal_when_due_keeps_the_key(refca, tmp_path):
    refca.run()
    old = valid_leaves(refca.ca_dir, refca.tmp)
    issued_at = max(h.row_cert(r).not_valid_before_utc for r in old.values()) + ONE_HOUR

    # 360 days on: notAfter - 30d = +367d is still ahead, nothing is due
    not_yet = floor_s(issued_at + dt.timedelta(days=360))
    report, _ = refca.run(env={"CHPKI_NOW": h.rfc3339_z(not_yet)})
    assert plan_counts(report["summary"]) == {"issued": 0, "reissued": 0, "renewed": 0, "unchanged": 41}

    # 380 days on: everything is due; a dry run says so and changes nothing
    now = floor_s(issued_at + dt.timedelta(days=380))
    before = h.snapshot(refca.ca_dir)
    report, _ = refca.run("--dry-run", env={"CHPKI_NOW": h.rfc3339_z(now)})
    assert h.snapshot(refca.ca_dir) == before, "--dry-run changed the CA directory"
    check_report_shape(report, dry_run=True)
    assert plan_counts(report["summary"]) == {"issued": 0, "reissued": 0, "renewed": 41, "unchanged": 0}
    report, _ = refca.run(env={"CHPKI_NOW": h.rfc3339_z(now)})
    check_report_shape(report, dry_run=False)
    assert plan_counts(report["summary"]) == {"issued": 0, "reissued": 0, "renewed": 41, "unchanged": 0}
    new = valid_leaves(refca.ca_dir, refca.tmp)
    assert set(new) == set(old)
    rows = {r["serial"]: r for r in h.db_rows(refca.ca_dir, refca.tmp)}
    for ident, r in new.items():
        cert, before = h.row_cert(r), h.row_cert(old[ident])
        assert r["serial"] != old[ident]["serial"]
        assert rows[old[ident]["serial"]]["status"] == "superseded", ident
        assert h.spki(cert) == h.spki(before), f"{ident}: renewal must keep the key"
        assert cert.subject == before.subject
        assert sans_of(cert) == sans_of(before), ident
        assert cert.not_valid_before_utc == now - ONE_HOUR, ident
        assert cert.not_valid_after_utc == now + dt.timedelta(days=397), ident
        assert by_identity(report)[ident]["serial"] == r["serial"]
    # the renewed set passes every profile check, and openssl verifies it at that instant
    check_all(h.expected_certificates(h.load_yaml(refca.inv)), new, refca.ca_dir, None, None, tmp_path, attime=now)
    # index.txt now lists old and new certificates
    entries = h.parse_index((refca.ca_dir / "index.txt").read_text())
    assert {e["serial"] for e in entries} == {r["serial"] for r in rows.values() if r["kind"] != "root"}
    assert len(entries) == 82 + 1  # 41 leaves, their 41 renewals, and the intermediate (the root is self-signed)
    # and at that same instant nothing more is due
    report, _ = refca.run(env={"CHPKI_NOW": h.rfc3339_z(now + dt.timedelta(minutes=1))})
    assert plan_counts(report["summary"]) == {"issued": 0, "reissued": 0, "renewed": 0, "unchanged": 41}


def sans_of(cert) -> set[str]:
    san = h.ext(cert, x509.SubjectAlternativeName)
    return h.general_names(san.value if san else [])


def changed_only(report, rows_before, rows_after, action) -> set:
    """The identities reported with `action`; asserts every other identity is `unchanged` with the
    same serial as before."""
    changed = set()
    for ident, c in by_identity(report).items():
        if c["action"] == action:
            changed.add(ident)
        else:
            assert c["action"] == "unchanged", c
            assert rows_after[ident]["serial"] == rows_before[ident]["serial"], ident
    return changed


def test_extra_san_change_reissues_that_service_only_same_key(refca, tmp_path):
    refca.run()
    old = valid_leaves(refca.ca_dir, refca.tmp)
    text = refca.inv.read_text()
    assert "patroni: { hosts: backend, extra_san: [cinc-postgresql-cluster] }" in text
    refca.inv.write_text(text.replace("extra_san: [cinc-postgresql-cluster]", "extra_san: [cinc-postgresql-cluster, pg-primary]"))
    report, _ = refca.run()
    check_report_shape(report, dry_run=False)
    new = valid_leaves(refca.ca_dir, refca.tmp)
    changed = changed_only(report, old, new, "reissued")
    assert changed == {("server", f"backend-{i}.example.com", "patroni", f"backend-{i}.example.com") for i in range(1, 5)}
    assert plan_counts(report["summary"]) == {"issued": 0, "reissued": 4, "renewed": 0, "unchanged": 37}
    statuses = {r["serial"]: r["status"] for r in h.db_rows(refca.ca_dir, refca.tmp)}
    for ident in changed:
        cert = h.row_cert(new[ident])
        assert "DNS:pg-primary.example.com" in h.general_names(h.ext(cert, x509.SubjectAlternativeName).value)
        assert h.spki(cert) == h.spki(h.row_cert(old[ident])), f"{ident}: a SAN change keeps the key"
        assert statuses[old[ident]["serial"]] == "superseded"
    check_all(h.expected_certificates(h.load_yaml(refca.inv)), new, refca.ca_dir, None, None, tmp_path)
    # a second run is quiet again
    report, _ = refca.run()
    assert plan_counts(report["summary"]) == {"issued": 0, "reissued": 0, "renewed": 0, "unchanged": 41}


def test_key_type_change_reissues_with_a_new_key(refca, tmp_path):
    refca.run()
    old = valid_leaves(refca.ca_dir, refca.tmp)
    text = refca.inv.read_text()
    line = "etcd:    { hosts: backend, server_cert_mode: both }"
    assert line in text
    refca.inv.write_text(text.replace(line, "etcd:    { hosts: backend, server_cert_mode: both, key: ec-p384 }"))
    report, _ = refca.run()
    check_report_shape(report, dry_run=False)
    new = valid_leaves(refca.ca_dir, refca.tmp)
    changed = changed_only(report, old, new, "reissued")
    want = {(k, f"backend-{i}.example.com", "etcd", n) for i in range(1, 5)
            for k, n in (("server", f"backend-{i}.example.com"), ("client", f"etcd@backend-{i}"))}
    assert changed == want
    assert plan_counts(report["summary"]) == {"issued": 0, "reissued": 8, "renewed": 0, "unchanged": 33}
    for ident in changed:
        cert = h.row_cert(new[ident])
        assert h.key_type_of(cert.public_key()) == "ec-p384"
        assert h.spki(cert) != h.spki(h.row_cert(old[ident])), f"{ident}: a key-type change needs a new key"
    check_all(h.expected_certificates(h.load_yaml(refca.inv)), new, refca.ca_dir, None, None, tmp_path)


def test_subject_change_reissues_node_and_admin_certificates_not_clients(refca, tmp_path):
    refca.run()
    old = valid_leaves(refca.ca_dir, refca.tmp)
    text = refca.inv.read_text()
    assert "  O: MyCompany\n" in text
    refca.inv.write_text(text.replace("  O: MyCompany\n", "  O: MyCompany Holding\n"))
    report, _ = refca.run()
    new = valid_leaves(refca.ca_dir, refca.tmp)
    changed = changed_only(report, old, new, "reissued")
    assert changed == {k for k in old if k[0] in ("server", "admin")}
    assert plan_counts(report["summary"]) == {"issued": 0, "reissued": 25, "renewed": 0, "unchanged": 16}
    check_all(h.expected_certificates(h.load_yaml(refca.inv)), new, refca.ca_dir, None, None, tmp_path)


# ---------------------------------------------------------------------------------------------
# one-off certificates


def out_files(out: Path, stem: str):
    crt, key = out / f"{stem}.crt", out / f"{stem}.key"
    assert crt.is_file() and key.is_file(), sorted(os.listdir(out)) if out.exists() else "no --out dir"
    assert h.mode_of(crt) == 0o644, oct(h.mode_of(crt))
    assert h.mode_of(key) == 0o600, oct(h.mode_of(key))
    assert h.is_pkcs8_unencrypted(key.read_text()), key.read_text()[:40]
    cert = h.load_cert(crt)
    assert len(h.load_certs(crt)) == 1
    k = h.load_key(key, None)
    assert h.spki(k) == h.spki(cert), "the key file does not match the certificate"
    return crt, key, cert


def recorded(ca_dir, tmp, cert) -> dict:
    rows = [r for r in h.db_rows(ca_dir, tmp) if int(r["serial"], 16) == cert.serial_number]
    assert len(rows) == 1, "the one-off certificate is not recorded in ca.db"
    assert rows[0]["status"] == "valid"
    assert h.row_cert(rows[0]).public_bytes(serialization.Encoding.DER) == cert.public_bytes(serialization.Encoding.DER)
    entries = h.parse_index((ca_dir / "index.txt").read_text())
    assert rows[0]["serial"] in {e["serial"] for e in entries}, "the one-off certificate is not in index.txt"
    return rows[0]


def test_one_off_server_certificate(run, workdir, init_ca, ca_dir, passphrase_file, tmp_path):
    inv = workdir / "cluster.yml"
    shutil.copyfile(REFERENCE, inv)
    init_ca("--inventory", inv, "--name-constraints", "none")
    out = tmp_path / "out"
    out.mkdir()
    t0 = h.utcnow()
    res = run("issue", "server", "--service", "grafana", "--host", "tools.example.com", "--ip", "10.1.2.3",
              "--ip", "2001:db8::7", "--san", "grafana-ui.example.com", "--key", "ec-p384", "--out", out,
              "--ca-dir", ca_dir, "--inventory", inv, "--passphrase-file", passphrase_file)
    h.assert_ok(res)
    t1 = h.utcnow()
    crt, key, cert = out_files(out, "grafana-tools.example.com")
    e = h.Expected(
        "server", "tools.example.com", "grafana", "tools.example.com", "tools.example.com",
        [(NameOID.COUNTRY_NAME, "US"), (NameOID.STATE_OR_PROVINCE_NAME, "MyState"), (NameOID.LOCALITY_NAME, "MyCity"),
         (NameOID.ORGANIZATION_NAME, "MyCompany"), (NameOID.ORGANIZATIONAL_UNIT_NAME, "MyOrganizationalUnit"),
         (NameOID.COMMON_NAME, "tools.example.com")],
        dns=["grafana.example.com", "tools", "tools.example.com", "grafana-ui.example.com", "localhost"],
        ips=["10.1.2.3", "2001:db8::7", "127.0.0.1", "::1"], eku={"serverAuth"}, key="ec-p384")
    issuer = issuer_of(ca_dir)
    problems = problems_sans(e, cert) + problems_subject(e, cert, issuer) + problems_extensions(e, cert, issuer)
    problems += problems_validity(e, cert, issuer, t0, t1)
    assert h.key_type_of(cert.public_key()) == "ec-p384"
    assert not problems, "\n".join(problems)
    failures = h.openssl_verify_jobs(verify_jobs(e, crt, chain_args(ca_dir)))
    assert not failures, "".join(failures)
    row = recorded(ca_dir, tmp_path / "db", cert)
    assert (row["kind"], row["host"], row["service"]) == ("server", "tools.example.com", "grafana")
    assert row["private_key_pem"] and h.spki(serialization.load_pem_private_key(row["private_key_pem"].encode(), None)) == h.spki(cert)


def test_one_off_client_certificate(run, workdir, init_ca, ca_dir, passphrase_file, tmp_path):
    inv = workdir / "cluster.yml"
    shutil.copyfile(REFERENCE, inv)
    init_ca("--inventory", inv)
    out = tmp_path / "out"
    out.mkdir()
    res = run("issue", "client", "grafana@backend-1", "--out", out,
              "--ca-dir", ca_dir, "--inventory", inv, "--passphrase-file", passphrase_file)
    h.assert_ok(res)
    crt, key, cert = out_files(out, "grafana@backend-1")
    e = h.Expected("client", "backend-1.example.com", "grafana", "grafana@backend-1", "grafana@backend-1",
                   [(NameOID.COMMON_NAME, "grafana@backend-1")], eku={"clientAuth"}, key="ec-p256")
    issuer = issuer_of(ca_dir)
    problems = problems_sans(e, cert) + problems_subject(e, cert, issuer) + problems_extensions(e, cert, issuer)
    assert not problems, "\n".join(problems)
    assert h.key_type_of(cert.public_key()) == "ec-p256"
    assert h.ext(cert, x509.SubjectAlternativeName) is None, "the @ must not become an e-mail SAN"
    r = h.openssl("verify", *chain_args(ca_dir), "-purpose", "sslclient", crt)
    assert r.returncode == 0 and r.stdout.strip().endswith(": OK"), h.describe(r)
    row = recorded(ca_dir, tmp_path / "db", cert)
    assert (row["kind"], row["service"]) == ("client", "grafana")


@pytest.mark.parametrize("name", [None, "ops-admin"])
def test_one_off_admin_certificate(run, workdir, init_ca, ca_dir, passphrase_file, tmp_path, name):
    inv = workdir / "cluster.yml"
    shutil.copyfile(REFERENCE, inv)
    init_ca("--inventory", inv, "--intermediate")
    out = tmp_path / "out"
    out.mkdir()
    res = run("issue", "admin", *(["--name", name] if name else []), "--out", out,
              "--ca-dir", ca_dir, "--inventory", inv, "--passphrase-file", passphrase_file)
    h.assert_ok(res)
    cn = name or "admin"
    crt, key, cert = out_files(out, cn)
    e = h.Expected("admin", None, "opensearch", cn, cn,
                   [(NameOID.COUNTRY_NAME, "US"), (NameOID.STATE_OR_PROVINCE_NAME, "MyState"),
                    (NameOID.LOCALITY_NAME, "MyCity"), (NameOID.ORGANIZATION_NAME, "MyCompany"),
                    (NameOID.ORGANIZATIONAL_UNIT_NAME, "MyOrganizationalUnit"), (NameOID.COMMON_NAME, cn)],
                   eku={"clientAuth"}, key="rsa-2048")
    issuer = h.load_cert(ca_dir / "intermediate.pem")
    problems = problems_sans(e, cert) + problems_subject(e, cert, issuer) + problems_extensions(e, cert, issuer)
    assert not problems, "\n".join(problems)
    assert isinstance(cert.public_key(), rsa.RSAPublicKey) and cert.public_key().key_size == 2048
    r = h.openssl("verify", *chain_args(ca_dir), "-purpose", "sslclient", crt)
    assert r.returncode == 0 and r.stdout.strip().endswith(": OK"), h.describe(r)
    row = recorded(ca_dir, tmp_path / "db", cert)
    assert row["kind"] == "admin"


@pytest.mark.parametrize("args", [
    ["server", "--service", "grafana", "--host", "tools_1.example.com"],
    ["server", "--service", "grafana", "--host", "tools.example.com", "--ip", "10.0.0.300"],
    ["server", "--service", "grafana", "--host", "tools.example.com", "--key", "ec-p999"],
    ["client", "grafana-backend-1"],
], ids=["bad-host", "bad-ip", "bad-key", "client-without-at"])
def test_one_off_refuses_bad_input(run, workdir, init_ca, ca_dir, passphrase_file, snapshot, tmp_path, args):
    inv = workdir / "cluster.yml"
    shutil.copyfile(REFERENCE, inv)
    init_ca("--inventory", inv)
    before = snapshot(ca_dir)
    out = tmp_path / "out"
    out.mkdir()
    res = run("issue", *args, "--out", out, "--ca-dir", ca_dir, "--inventory", inv, "--passphrase-file", passphrase_file)
    assert res.returncode == 2, h.describe(res)
    h.error_line(res)
    # --key is parsed by the argument parser, the other values by chpki's own rules.
    assert h.error_object(res)["code"] == ("usage.invalid-argument" if "--key" in args else "usage.invalid-value")
    assert snapshot(ca_dir) == before
    assert not out.exists() or not os.listdir(out)


# ---------------------------------------------------------------------------------------------
# other inventories and CAs


def test_minicluster_modes_and_switches(run, workdir, init_ca, ca_dir, passphrase_file, tmp_path):
    inv = workdir / "cluster.yml"
    shutil.copyfile(MINICLUSTER, inv)
    init_ca("--inventory", inv)
    t0 = h.utcnow()
    report, _ = issue(run, ca_dir, inv, passphrase_file)
    t1 = h.utcnow()
    check_report_shape(report, dry_run=False)
    expected = h.expected_certificates(h.load_yaml(inv))
    # the switches, spelled out (so the model is pinned too)
    assert set(expected) == {
        ("server", "core-1.infra.example.org", "myservice", "core-1.infra.example.org"),
        ("server", "core-2.infra.example.org", "myservice", "core-2.infra.example.org"),
        ("server", "core-1.infra.example.org", "prometheus", "core-1.infra.example.org"),
        ("client", "core-1.infra.example.org", "prometheus", "prometheus@core-1"),
        ("client", "core-1.infra.example.org", "log-collector", "log-collector@core-1.infra.example.org"),
        ("client", "worker-1.infra.example.org", "log-collector", "log-collector@worker-1.infra.example.org"),
        ("server", "core-1.infra.example.org", "auth-server", "core-1.infra.example.org"),
        ("client", "core-1.infra.example.org", "auth-server", "auth-server@core-1"),
    }
    assert expected[("client", "core-1.infra.example.org", "prometheus", "prometheus@core-1")].eku == {"serverAuth", "clientAuth"}
    assert set(by_identity(report)) == set(expected)
    assert plan_counts(report["summary"]) == {"issued": 8, "reissued": 0, "renewed": 0, "unchanged": 0}
    rows = valid_leaves(ca_dir, tmp_path / "db")
    check_all(expected, rows, ca_dir, t0, t1, tmp_path)
    auth = h.row_cert(rows[("server", "core-1.infra.example.org", "auth-server", "core-1.infra.example.org")])
    assert h.key_type_of(auth.public_key()) == "ed25519"
    assert auth.subject.rfc4514_string() == "CN=core-1.infra.example.org,O=Example Collective\\, Inc.,C=NL"
    log = h.row_cert(rows[("client", "worker-1.infra.example.org", "log-collector", "log-collector@worker-1.infra.example.org")])
    assert log.not_valid_after_utc - log.not_valid_before_utc == dt.timedelta(days=90, hours=1)


@pytest.mark.parametrize("intermediate", [False, True], ids=["root", "intermediate"])
def test_validity_capped_at_the_ca(run, workdir, init_ca, ca_dir, passphrase_file, tmp_path, intermediate):
    inv = workdir / "cluster.yml"
    shutil.copyfile(REFERENCE, inv)
    init_ca("--inventory", inv, "--validity", "100d", *([] if intermediate else ["--no-intermediate"]))
    issuer = issuer_of(ca_dir)
    root = h.load_cert(ca_dir / "root.pem")
    assert issuer.not_valid_after_utc <= root.not_valid_after_utc
    t0 = h.utcnow()
    issue(run, ca_dir, inv, passphrase_file)
    t1 = h.utcnow()
    rows = valid_leaves(ca_dir, tmp_path / "db")
    assert len(rows) == 41
    for ident, r in rows.items():
        cert = h.row_cert(r)
        assert cert.not_valid_after_utc <= issuer.not_valid_after_utc, ident
        assert cert.not_valid_after_utc >= issuer.not_valid_after_utc - dt.timedelta(days=1), (
            f"{ident}: notAfter {cert.not_valid_after_utc} should be capped at the CA's {issuer.not_valid_after_utc}, "
            "not shortened further")
    check_all(h.expected_certificates(h.load_yaml(inv)), rows, ca_dir, t0, t1, tmp_path)
    # capped certificates are not due: a second run changes nothing
    report, _ = issue(run, ca_dir, inv, passphrase_file)
    assert plan_counts(report["summary"]) == {"issued": 0, "reissued": 0, "renewed": 0, "unchanged": 41}


def test_host_added_after_init_ca_is_issued_and_verifiable(run, workdir, init_ca, ca_dir, passphrase_file, snapshot,
                                                         tmp_path):
    """Day 2: a backend joins the cluster after a default CA was made (docs/growth.md). Its server
    certificates carry its short name, which the issuing intermediate's constraints (made from the
    old host list) do not permit: `issue` has the root sign a new issuing intermediate that covers
    it, and the new certificates verify through it against the unchanged root."""
    inv = workdir / "cluster.yml"
    shutil.copyfile(REFERENCE, inv)
    init_ca("--inventory", inv)
    text = inv.read_text()
    anchor = "  - name: frontend-1.example.com\n"
    inv.write_text(text.replace(anchor, "  - name: backend-5.example.com\n    ips: [10.0.0.5]\n    groups: [backend]\n" + anchor))
    before = snapshot(ca_dir)
    root_before = (ca_dir / "root.pem").read_bytes()
    res = run("issue", "--json", "--ca-dir", ca_dir, "--inventory", inv, "--passphrase-file", passphrase_file)
    h.assert_ok(res)
    report = h.parse_json_output(res)
    assert report["intermediate"] and report["intermediate"]["action"] == "new", report
    assert "DNS:backend-5" in report["intermediate"]["covers"], report
    assert (ca_dir / "root.pem").read_bytes() == root_before, "growth must not touch the root"
    assert snapshot(ca_dir) != before
    expected = h.expected_certificates(h.load_yaml(inv))
    rows = valid_leaves(ca_dir, tmp_path / "db")
    new = {k: e for k, e in expected.items() if k[1] == "backend-5.example.com"}
    assert len(new) == 7  # opensearch server; patroni, etcd, minio server and client
    check_all(new, {k: rows[k] for k in new}, ca_dir, None, None, tmp_path)
