"""`chpki inspect FILE [--json] [--passphrase-file F]`: SPEC §1.

Expected values are computed from the same files by Python's cryptography and the openssl CLI.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import conftest
import helpers as h

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


@pytest.fixture(scope="module")
def ca(chpki_bin, tmp_path_factory):
    """One CA for the module, made by chpki: root name-constrained by the minimal inventory,
    plus an intermediate; and a leaf made by cryptography, signed by the intermediate."""
    base = tmp_path_factory.mktemp("inspect")
    work = base / "work"
    work.mkdir()
    (work / "cluster.yml").write_text(h.MINIMAL_INVENTORY)
    pf = h.write_secret(base / "pass", h.PASSPHRASE + "\n")
    wrong = h.write_secret(base / "wrong", "not the passphrase at all\n")
    tool = conftest.Chpki(chpki_bin, work)
    ca_dir = base / "ca"
    h.assert_ok(tool.run("init-ca", "--ca-dir", ca_dir, "--passphrase-file", pf, "--intermediate"))
    inter = h.load_cert(ca_dir / "intermediate.pem")
    ikey = h.load_key(ca_dir / "intermediate.key", h.PASSPHRASE)
    leaf, leaf_key = h.sign_leaf(
        inter, ikey,
        dns=["backend-1.example.com", "backend-1", "localhost"],
        ips=["10.0.0.1", "127.0.0.1", "::1"],
        cn="backend-1.example.com",
        eku=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
    )
    leaf_path = base / "leaf.pem"
    leaf_path.write_bytes(h.pem(leaf))
    return SimpleNamespace(dir=ca_dir, base=base, work=work, passphrase_file=pf, wrong_passphrase_file=wrong,
                           leaf=leaf_path, leaf_key=leaf_key, tool=tool)


def inspect_json(run, path, *args):
    res = h.assert_ok(run("inspect", path, "--json", *args))
    try:
        data = json.loads(res.stdout)
    except json.JSONDecodeError as e:
        pytest.fail(f"--json output is not one JSON document: {e}" + h.describe(res))
    assert isinstance(data, dict) and set(data) >= {"file", "items"}, data
    assert data["file"] == str(path)
    assert isinstance(data["items"], list)
    return data["items"]


def parse_time(text: str) -> dt.datetime:
    assert RFC3339_UTC.match(text), f"not an RFC 3339 UTC timestamp: {text!r}"
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


CERT_FIELDS = {"type", "subject", "issuer", "serial", "not_before", "not_after", "sans", "key_usage",
               "extended_key_usage", "is_ca", "path_len", "fingerprint_sha256", "key_type", "self_signed",
               "name_constraints"}
KEY_FIELDS = {"type", "format", "key_type", "encryption"}


def check_fields(item: dict, fields: set):
    missing = fields - set(item)
    assert not missing, f"item lacks {sorted(missing)} (a null value must be written as null): {item}"


def check_cert_item(item: dict, cert: x509.Certificate):
    """Every field of a certificate item against cryptography's reading of the same certificate."""
    check_fields(item, CERT_FIELDS)
    assert item["type"] == "certificate"
    assert item["subject"] == cert.subject.rfc4514_string()
    assert item["issuer"] == cert.issuer.rfc4514_string()
    assert re.fullmatch(r"[0-9A-F]+", item["serial"]), f"serial must be upper-case hex, no colons: {item['serial']!r}"
    assert int(item["serial"], 16) == cert.serial_number
    assert parse_time(item["not_before"]) == cert.not_valid_before_utc
    assert parse_time(item["not_after"]) == cert.not_valid_after_utc
    assert item["fingerprint_sha256"] == h.fingerprint(cert)
    assert item["key_type"] == h.key_type_of(cert.public_key())
    bc = h.ext(cert, x509.BasicConstraints)
    assert item["is_ca"] is bool(bc and bc.value.ca)
    assert item["path_len"] == (bc.value.path_length if bc and bc.value.ca else None)
    assert item["self_signed"] is (cert.issuer == cert.subject)
    san = h.ext(cert, x509.SubjectAlternativeName)
    expected_sans = [h.norm_general_name(s) for s in _san_strings(san.value if san else [])]
    assert [h.norm_general_name(s) for s in item["sans"]] == expected_sans
    ku = h.ext(cert, x509.KeyUsage)
    assert h.norm_key_usage(item["key_usage"]) == (_key_usages(ku.value) if ku else set())
    eku = h.ext(cert, x509.ExtendedKeyUsage)
    expected_eku = {h._EKU_ALIASES[o.dotted_string] for o in eku.value} if eku else set()
    assert h.norm_eku(item["extended_key_usage"]) == expected_eku


def _san_strings(names):
    out = []
    for n in names:
        if isinstance(n, x509.DNSName):
            out.append(f"DNS:{n.value}")
        elif isinstance(n, x509.IPAddress):
            out.append(f"IP:{n.value}")
    return out


def _key_usages(ku: x509.KeyUsage) -> set[str]:
    out = set()
    for attr, name in [
        ("digital_signature", "digitalSignature"), ("content_commitment", "contentCommitment"),
        ("key_encipherment", "keyEncipherment"), ("data_encipherment", "dataEncipherment"),
        ("key_agreement", "keyAgreement"), ("key_cert_sign", "keyCertSign"), ("crl_sign", "cRLSign"),
    ]:
        if getattr(ku, attr):
            out.add(name)
    return out


# ---------------------------------------------------------------------------------------------
# certificates


def test_root_certificate_json(run, ca, snapshot):
    before = snapshot(ca.dir)
    path = ca.dir / "root.pem"
    items = inspect_json(run, path)
    assert len(items) == 1
    root = h.load_cert(path)
    check_cert_item(items[0], root)
    item = items[0]
    # the values themselves, not only their agreement with cryptography
    assert item["subject"] == item["issuer"] == "CN=chpki Root CA"
    assert item["is_ca"] is True and item["self_signed"] is True and item["path_len"] is None
    assert item["key_type"] == "ec-p384"
    assert h.norm_key_usage(item["key_usage"]) == {"keyCertSign", "cRLSign"}
    assert item["sans"] == [] and item["extended_key_usage"] == []
    # the fingerprint openssl computes
    fp = h.openssl("x509", "-in", path, "-noout", "-fingerprint", "-sha256", check=True).stdout.strip()
    assert fp.split("=", 1)[1] == item["fingerprint_sha256"]
    serial = h.openssl("x509", "-in", path, "-noout", "-serial", check=True).stdout.strip().split("=", 1)[1]
    assert int(serial, 16) == int(item["serial"], 16)
    assert snapshot(ca.dir) == before, "inspect changed the CA dir"


def test_issuing_ca_name_constraints_json(run, ca):
    # a default CA constrains the intermediate that signs leaves; the root carries none
    assert inspect_json(run, ca.dir / "root.pem")[0].get("name_constraints") is None
    item = inspect_json(run, ca.dir / "intermediate.pem")[0]
    nc = item["name_constraints"]
    assert isinstance(nc, dict), f"name_constraints should be an object for a constrained CA: {nc!r}"
    assert {h.norm_general_name(n) for n in nc["permitted"]} == {
        "DNS:example.com", "DNS:localhost", "DNS:backend-1",
        "IP:10.0.0.0/24", "IP:127.0.0.0/8", "IP:::1/128",
    }
    assert not nc.get("excluded")


def test_intermediate_json(run, ca):
    items = inspect_json(run, ca.dir / "intermediate.pem")
    assert len(items) == 1
    check_cert_item(items[0], h.load_cert(ca.dir / "intermediate.pem"))
    assert items[0]["is_ca"] is True and items[0]["path_len"] == 0 and items[0]["self_signed"] is False
    assert items[0]["issuer"] == "CN=chpki Root CA"


def test_leaf_json(run, ca):
    items = inspect_json(run, ca.leaf)
    assert len(items) == 1
    item = items[0]
    check_cert_item(item, h.load_cert(ca.leaf))
    assert [h.norm_general_name(s) for s in item["sans"]] == [
        "DNS:backend-1.example.com", "DNS:backend-1", "DNS:localhost", "IP:10.0.0.1", "IP:127.0.0.1", "IP:::1",
    ]
    assert item["sans"][:4] == ["DNS:backend-1.example.com", "DNS:backend-1", "DNS:localhost", "IP:10.0.0.1"]
    assert h.norm_eku(item["extended_key_usage"]) == {"serverAuth", "clientAuth"}
    assert h.norm_key_usage(item["key_usage"]) == {"digitalSignature"}
    assert item["is_ca"] is False and item["path_len"] is None and item["self_signed"] is False
    assert item["name_constraints"] is None
    assert item["key_type"] == "ec-p256"
    assert item["subject"] == "CN=backend-1.example.com"


def test_chain_file_gives_one_item_per_block(run, ca, tmp_path):
    chain = tmp_path / "chain.pem"
    chain.write_bytes(ca.leaf.read_bytes() + (ca.dir / "intermediate.pem").read_bytes()
                      + (ca.dir / "root.pem").read_bytes())
    items = inspect_json(run, chain)
    certs = h.load_certs(chain)
    assert [i["type"] for i in items] == ["certificate"] * 3
    for item, cert in zip(items, certs):
        check_cert_item(item, cert)


def test_cert_and_key_in_one_file(run, ca, tmp_path):
    """HAProxy style: leaf, then chain, then key."""
    combined = tmp_path / "haproxy.pem"
    key_pem = ca.leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    combined.write_bytes(ca.leaf.read_bytes() + (ca.dir / "intermediate.pem").read_bytes() + key_pem)
    items = inspect_json(run, combined)
    assert [i["type"] for i in items] == ["certificate", "certificate", "private_key"]
    assert items[2]["format"] == "pkcs8" and items[2]["key_type"] == "ec-p256"


def test_human_summary(run, ca):
    path = ca.dir / "root.pem"
    res = h.assert_ok(run("inspect", path))
    root = h.load_cert(path)
    out = res.stdout
    assert "CN=chpki Root CA" in out
    assert h.fingerprint(root).replace(":", "") in out.upper().replace(":", ""), "no SHA-256 fingerprint"
    assert root.not_valid_after_utc.strftime("%Y-%m-%d") in out, "no not-after date"
    assert re.search(r"(?i)ec-p384|p-384|secp384r1", out), "no key type"
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_human_summary_of_leaf_shows_sans(run, ca):
    out = h.assert_ok(run("inspect", ca.leaf)).stdout
    for name in ("backend-1.example.com", "10.0.0.1"):
        assert name in out


def test_inspect_needs_no_ca_and_writes_nothing(run, ca, workdir, snapshot):
    before = snapshot(workdir)
    h.assert_ok(run("inspect", ca.dir / "root.pem", "--json"))
    assert snapshot(workdir) == before, "inspect wrote into the working directory"


# ---------------------------------------------------------------------------------------------
# keys


def test_encrypted_root_key_without_passphrase(run, ca):
    items = inspect_json(run, ca.dir / "root.key")
    assert len(items) == 1
    item = items[0]
    check_fields(item, KEY_FIELDS)
    assert item["type"] == "private_key"
    assert item["format"] == "pkcs8-encrypted"
    assert item["key_type"] is None
    enc = item["encryption"]
    assert enc["scheme"] == "PBES2"
    assert enc["kdf"] == "scrypt"


def test_encrypted_root_key_with_passphrase(run, ca):
    items = inspect_json(run, ca.dir / "root.key", "--passphrase-file", ca.passphrase_file)
    assert items[0]["format"] == "pkcs8-encrypted"
    assert items[0]["key_type"] == "ec-p384"
    assert items[0]["encryption"]["kdf"] == "scrypt"


def test_encrypted_key_with_wrong_passphrase_is_refused(run, ca):
    res = run("inspect", ca.dir / "root.key", "--json", "--passphrase-file", ca.wrong_passphrase_file)
    h.assert_refused(res, ("passphrase", str(ca.dir / "root.key"), "decrypt"), error="passphrase.wrong")


OPENSSL_KEYS = {
    # id: (openssl command producing the key on stdout, format, key_type)
    "genpkey-ec-p256": (["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], "pkcs8", "ec-p256"),
    "genpkey-rsa-3072": (["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"], "pkcs8", "rsa-3072"),
    "genpkey-ed25519": (["genpkey", "-algorithm", "ED25519"], "pkcs8", "ed25519"),
    "ecparam-sec1-p384": (["ecparam", "-genkey", "-noout", "-name", "secp384r1"], "sec1", "ec-p384"),
    "genrsa-pkcs1-2048": (["genrsa", "-traditional", "2048"], "pkcs1", "rsa-2048"),
}


@pytest.mark.parametrize("kind", list(OPENSSL_KEYS))
def test_keys_made_by_openssl(run, tmp_path, kind):
    cmd, fmt, key_type = OPENSSL_KEYS[kind]
    path = tmp_path / f"{kind}.pem"
    path.write_text(h.openssl(*cmd, check=True).stdout)
    label = {"pkcs8": "PRIVATE KEY", "sec1": "EC PRIVATE KEY", "pkcs1": "RSA PRIVATE KEY"}[fmt]
    assert path.read_text().startswith(f"-----BEGIN {label}-----"), "openssl did not make what the test expects"
    items = inspect_json(run, path)
    assert len(items) == 1
    check_fields(items[0], KEY_FIELDS)
    assert items[0]["type"] == "private_key"
    assert items[0]["format"] == fmt
    assert items[0]["key_type"] == key_type
    assert items[0]["encryption"] is None


def test_ecparam_key_with_parameters_block(run, tmp_path):
    """`openssl ecparam -genkey` without -noout writes EC PARAMETERS then the SEC1 key."""
    path = tmp_path / "ecparam.pem"
    path.write_text(h.openssl("ecparam", "-genkey", "-name", "prime256v1", check=True).stdout)
    assert path.read_text().count("-----BEGIN") == 2
    items = inspect_json(run, path)
    assert len(items) == 2
    assert items[1]["type"] == "private_key"
    assert items[1]["format"] == "sec1" and items[1]["key_type"] == "ec-p256"
    assert items[0]["type"] != "private_key"


def test_pbkdf2_encrypted_key(run, tmp_path):
    plain = tmp_path / "plain.pem"
    plain.write_text(h.openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", check=True).stdout)
    enc = tmp_path / "pbkdf2.pem"
    h.openssl("pkcs8", "-topk8", "-in", plain, "-out", enc, "-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA256",
              "-iter", "600000", "-passout", f"pass:{h.PASSPHRASE}", check=True)
    items = inspect_json(run, enc)
    check_fields(items[0], KEY_FIELDS)
    assert items[0]["format"] == "pkcs8-encrypted"
    assert items[0]["key_type"] is None
    assert items[0]["encryption"]["scheme"] == "PBES2"
    assert items[0]["encryption"]["kdf"] == "pbkdf2"
    pf = h.write_secret(tmp_path / "pf", h.PASSPHRASE + "\n")
    items = inspect_json(run, enc, "--passphrase-file", pf)
    assert items[0]["key_type"] == "ec-p256"


# ---------------------------------------------------------------------------------------------
# other PEM kinds (SPEC: certificate, key, CSR or CRL); the item type names are not fixed yet


def test_crl(run, ca):
    items = inspect_json(run, ca.dir / "crl.pem")
    assert len(items) == 1
    assert items[0]["type"] in ("crl", "certificate_revocation_list")


def test_csr(run, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "req.example.com")]))
           .sign(key, hashes.SHA256()))
    path = tmp_path / "req.csr"
    path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    items = inspect_json(run, path)
    assert len(items) == 1
    assert items[0]["type"] in ("csr", "certificate_request", "certification_request")
    assert h.assert_ok(run("inspect", path)).stdout.count("req.example.com") >= 1


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    "content",
    [b"this is not a certificate\n", b"", bytes(range(256)) * 4,
     b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"],
    ids=["text", "empty", "binary", "pem-with-junk-inside"],
)
@pytest.mark.parametrize("json_flag", [False, True], ids=["human", "json"])
def test_garbage_is_refused(run, tmp_path, content, json_flag):
    path = tmp_path / "garbage.pem"
    path.write_bytes(content)
    res = run("inspect", path, *(["--json"] if json_flag else []))
    h.assert_refused(res, str(path), error="inspect.unparsable" if content.startswith(b"-----BEGIN") else "inspect.nothing-found")


def test_missing_file_is_refused(run, tmp_path):
    path = tmp_path / "nope.pem"
    h.assert_refused(run("inspect", path), str(path), error="file.missing")
