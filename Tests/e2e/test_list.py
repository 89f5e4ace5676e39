"""`chpki list [--json]` (SPEC §1): every certificate the CA issued, CA certificates included as
kind "ca", checked against ca.db and against the certificates themselves (Python cryptography).
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import conftest
import helpers as h

REFERENCE = h.INVENTORIES / "reference-000.yml"
DB_KIND = {"root": "ca", "intermediate": "ca", "server": "server", "client": "client", "admin": "admin"}
FIELDS = {"host", "service", "kind", "serial", "subject", "sans", "not_after", "status", "certificate"}


def der(pem_text: str) -> bytes:
    return x509.load_pem_x509_certificate(pem_text.encode()).public_bytes(serialization.Encoding.DER)


def list_json(tool, ca_dir, *args, env=None):
    res = tool.run("list", "--json", "--ca-dir", ca_dir, *args, env=env)
    h.assert_ok(res)
    data = h.parse_json_output(res)
    assert isinstance(data, list), type(data)
    for item in data:
        assert FIELDS <= set(item), f"missing {FIELDS - set(item)} in {item}"
    return data


@pytest.fixture(scope="module")
def listed(chpki_bin, tmp_path_factory):
    """Reference 000 on a CA with an intermediate, issued once; listed without a passphrase."""
    base = tmp_path_factory.mktemp("list")
    work = base / "work"
    work.mkdir()
    inv = work / "cluster.yml"
    shutil.copyfile(REFERENCE, inv)
    pf = h.write_secret(base / "pass", h.PASSPHRASE + "\n")
    tool = conftest.Chpki(chpki_bin, work)
    ca_dir = base / "ca"
    h.assert_ok(tool.run("init-ca", "--ca-dir", ca_dir, "--inventory", inv, "--passphrase-file", pf, "--intermediate"))
    h.assert_ok(tool.run("issue", "--ca-dir", ca_dir, "--inventory", inv, "--passphrase-file", pf))
    before = h.snapshot(ca_dir)
    data = list_json(tool, ca_dir, "--inventory", inv)
    table = tool.run("list", "--ca-dir", ca_dir, "--inventory", inv)
    h.assert_ok(table)
    after = h.snapshot(ca_dir)
    rows = h.db_rows(ca_dir, base / "db")
    return SimpleNamespace(base=base, work=work, inv=inv, pf=pf, tool=tool, ca_dir=ca_dir, data=data, table=table,
                           rows=rows, before=before, after=after)


def test_list_json_one_object_per_certificate(listed):
    assert len(listed.rows) == 41 + 2
    assert sorted(o["serial"] for o in listed.data) == sorted(r["serial"] for r in listed.rows)
    kinds = sorted(o["kind"] for o in listed.data)
    assert kinds.count("ca") == 2 and kinds.count("server") == 24 and kinds.count("client") == 16 \
        and kinds.count("admin") == 1, kinds


def test_list_json_fields_match_ca_db_and_the_certificates(listed):
    rows = {r["serial"]: r for r in listed.rows}
    for o in listed.data:
        r = rows[o["serial"]]
        cert = h.row_cert(r)
        assert o["kind"] == DB_KIND[r["kind"]], o
        assert re.fullmatch(r"[0-9A-Fa-f]+", o["serial"]) and int(o["serial"], 16) == cert.serial_number
        assert der(o["certificate"]) == der(r["certificate_pem"]), f"{o['serial']}: PEM differs from ca.db"
        assert o["subject"] == cert.subject.rfc4514_string(), o
        san = h.ext(cert, x509.SubjectAlternativeName)
        assert isinstance(o["sans"], list)
        assert sorted(o["sans"]) == sorted(h.general_names(san.value if san else [])), o
        assert len(o["sans"]) == len(set(o["sans"]))
        assert h.rfc3339(o["not_after"]) == cert.not_valid_after_utc, o
        assert o["status"] == "valid", o
        if o["kind"] != "ca":
            assert (o["host"], o["service"]) == (r["host"], r["service"]), o


def test_list_json_ca_certificates_are_the_ca_files(listed):
    cas = {der(o["certificate"]) for o in listed.data if o["kind"] == "ca"}
    root = h.load_cert(listed.ca_dir / "root.pem").public_bytes(serialization.Encoding.DER)
    inter = h.load_cert(listed.ca_dir / "intermediate.pem").public_bytes(serialization.Encoding.DER)
    assert cas == {root, inter}
    for o in listed.data:
        if o["kind"] == "ca":
            assert o["sans"] == []


def test_list_json_known_values(listed):
    """A few values spelled out, so the comparison above cannot pass by both sides being wrong."""
    by = {(o["kind"], o["host"], o["service"], o["subject"]): o for o in listed.data}
    srv = by[("server", "backend-1.example.com", "opensearch",
              "CN=backend-1.example.com,OU=MyOrganizationalUnit,O=MyCompany,L=MyCity,ST=MyState,C=US")]
    assert sorted(srv["sans"]) == sorted([
        "DNS:opensearch.example.com", "DNS:backend-1", "DNS:backend-1.example.com",
        "DNS:cinc-opensearch-cluster.example.com", "DNS:localhost", "IP:10.0.0.1", "IP:127.0.0.1", "IP:::1"])
    cli = by[("client", "frontend-1.example.com", "nginx", "CN=nginx@frontend-1")]
    assert cli["sans"] == []
    vip = [o for o in listed.data if o["host"] == "haproxy-2.example.com" and o["kind"] == "server"]
    assert all(len(o["sans"]) == 2 for o in vip), vip
    assert sorted(s for o in vip for s in o["sans"] if s.startswith("DNS:")) == [
        "DNS:cinc-minio-cluster.example.com", "DNS:cinc-opensearch-cluster.example.com",
        "DNS:cinc-server-cluster.example.com"]


def test_list_changes_nothing_and_needs_no_passphrase(listed):
    assert listed.after == listed.before


def test_list_table_has_a_line_per_certificate(listed):
    lines = listed.table.stdout.splitlines()
    for r in listed.rows:
        cert = h.row_cert(r)
        hits = [line for line in lines if re.search(rf"(?<![0-9A-Fa-f]){r['serial']}(?![0-9A-Fa-f])", line, re.I)]
        assert len(hits) == 1, f"serial {r['serial']} on {len(hits)} lines" + h.describe(listed.table)
        line = hits[0]
        kind_words = ("ca", "root", "intermediate") if r["kind"] in ("root", "intermediate") else (r["kind"],)
        assert any(re.search(rf"\b{w}\b", line) for w in kind_words), line
        assert re.search(r"\bvalid\b", line), line
        assert cert.not_valid_after_utc.strftime("%Y-%m-%d") in line, line
        for field in ("host", "service"):
            if r["kind"] not in ("root", "intermediate") and r[field]:
                assert r[field] in line, (field, line)


def test_list_statuses_superseded_and_expired(run, workdir, init_ca, ca_dir, passphrase_file, tmp_path, chpki):
    inv = workdir / "cluster.yml"
    inv.write_text(h.MINIMAL_INVENTORY + "services:\n  etcd: { hosts: backend, server_cert_mode: both }\n")
    init_ca("--inventory", inv, "--no-intermediate")
    # nothing issued yet: only the root (a --no-intermediate CA, so the root is the only CA certificate)
    data = list_json(chpki, ca_dir, "--inventory", inv)
    assert [o["kind"] for o in data] == ["ca"]
    assert der(data[0]["certificate"]) == h.load_cert(ca_dir / "root.pem").public_bytes(serialization.Encoding.DER)

    h.assert_ok(run("issue", "--ca-dir", ca_dir, "--inventory", inv, "--passphrase-file", passphrase_file))
    first = {o["serial"]: o for o in list_json(chpki, ca_dir, "--inventory", inv)}
    leaves = [s for s, o in first.items() if o["kind"] != "ca"]
    assert sorted(first[s]["kind"] for s in leaves) == ["client", "server"]
    issued_at = min(h.rfc3339(first[s]["not_after"]) for s in leaves) - dt.timedelta(days=397)

    # 400 days on, not renewed: the leaves have expired, the root has not
    later = h.rfc3339_z(issued_at + dt.timedelta(days=400))
    data = {o["serial"]: o for o in list_json(chpki, ca_dir, "--inventory", inv, env={"CHPKI_NOW": later})}
    assert {data[s]["status"] for s in leaves} == {"expired"}
    assert [o["status"] for o in data.values() if o["kind"] == "ca"] == ["valid"]

    # renewed 380 days on: the old ones are superseded, the new ones valid
    renew_at = h.rfc3339_z(issued_at + dt.timedelta(days=380))
    h.assert_ok(run("issue", "--ca-dir", ca_dir, "--inventory", inv, "--passphrase-file", passphrase_file,
                    env={"CHPKI_NOW": renew_at}))
    data = {o["serial"]: o for o in list_json(chpki, ca_dir, "--inventory", inv, env={"CHPKI_NOW": renew_at})}
    assert len(data) == 5
    assert {data[s]["status"] for s in leaves} == {"superseded"}
    new = [o for s, o in data.items() if s not in first]
    assert sorted(o["kind"] for o in new) == ["client", "server"]
    assert {o["status"] for o in new} == {"valid"}
