"""`chpki init-ca`: SPEC §1 (command, passphrase, exit codes), §3 (root CA), §6 (CA directory).

Every artefact is checked by openssl or Python's cryptography, never by chpki itself.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
import re
import select
import shutil
import subprocess
import termios
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtensionOID, NameOID, SignatureAlgorithmOID

import helpers as h

ONE_DAY = dt.timedelta(days=1)


# ---------------------------------------------------------------------------------------------
# the CA directory


def test_creates_every_ca_file_private(init_ca, ca_dir, workdir, passphrase, tmp_path):
    init_ca()
    h.check_valid_ca(ca_dir, passphrase, tmp_path)  # includes: files 0600, dirs 0700
    assert h.mode_of(ca_dir) == 0o700
    names = set(os.listdir(ca_dir))
    assert set(h.CA_FILES) <= names
    # the intermediate that signs leaves (the default), and nothing else but SQLite's own companions
    assert set(h.INTERMEDIATE_FILES) <= names
    extra = names - set(h.CA_FILES) - set(h.INTERMEDIATE_FILES) - {"ca.db-wal", "ca.db-shm"}
    assert not extra, f"unexpected files in the CA dir: {sorted(extra)}"
    assert os.listdir(workdir) == ["ca"], "init-ca wrote outside the CA dir"


def test_ca_db_is_sqlite_in_wal_mode(init_ca, ca_dir, tmp_path):
    init_ca()
    header = (ca_dir / "ca.db").read_bytes()[:100]
    assert header[:16] == b"SQLite format 3\x00"
    # file format read/write versions 2 = WAL (persisted in the header by journal_mode=WAL)
    assert header[18] == 2 and header[19] == 2, f"ca.db header says not WAL: {header[18]}, {header[19]}"
    assert h.sqlite_journal_mode(ca_dir / "ca.db", tmp_path / "copy") == "wal"


def test_index_files_in_openssl_ca_format(init_ca, ca_dir):
    init_ca("--no-intermediate")  # the root signs nothing at init: index.txt is empty
    assert (ca_dir / "index.txt").read_bytes() == b"", "index.txt must be empty right after init"
    attr = (ca_dir / "index.txt.attr").read_text()
    for line in attr.splitlines():
        if line.strip():
            assert re.fullmatch(r"\s*unique_subject\s*=\s*(yes|no)\s*", line), f"bad index.txt.attr line {line!r}"


def test_empty_crl_signed_by_root(init_ca, ca_dir):
    init_ca("--no-intermediate")
    root = h.load_cert(ca_dir / "root.pem")
    crl = x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes())
    assert crl.issuer == root.subject
    assert crl.is_signature_valid(root.public_key())
    assert len(crl) == 0
    number = crl.extensions.get_extension_for_class(x509.CRLNumber)
    assert number.value.crl_number >= 0
    assert crl.next_update_utc is not None and crl.next_update_utc > crl.last_update_utc
    assert crl.last_update_utc <= h.utcnow() + dt.timedelta(minutes=5)

    text = h.openssl("crl", "-in", ca_dir / "crl.pem", "-noout", "-text", check=True).stdout
    assert re.search(r"Version 2 \(0x1\)", text), text
    assert "X509v3 CRL Number" in text
    assert "No Revoked Certificates" in text
    r = h.openssl("crl", "-in", ca_dir / "crl.pem", "-CAfile", ca_dir / "root.pem", "-noout")
    assert r.returncode == 0 and "verify OK" in r.stdout + r.stderr, h.describe(r)


# ---------------------------------------------------------------------------------------------
# the root certificate


def test_root_certificate_extensions(init_ca, ca_dir):
    init_ca()
    root = h.load_cert(ca_dir / "root.pem")
    assert root.version == x509.Version.v3

    bc = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is True

    ku = root.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical
    assert ku.value.key_cert_sign and ku.value.crl_sign
    assert not (
        ku.value.digital_signature
        or ku.value.content_commitment
        or ku.value.key_encipherment
        or ku.value.data_encipherment
        or ku.value.key_agreement
    ), f"root keyUsage must be exactly keyCertSign,cRLSign: {ku.value}"

    ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert not ski.critical and len(ski.value.digest) >= 8
    aki = h.ext(root, x509.AuthorityKeyIdentifier)
    if aki is not None:
        assert aki.value.key_identifier == ski.value.digest

    assert h.ext(root, x509.NameConstraints) is None, "no inventory: no name constraints"

    # the same seen by openssl
    out = h.openssl("x509", "-in", ca_dir / "root.pem", "-noout", "-ext",
                    "basicConstraints,keyUsage,subjectKeyIdentifier", check=True).stdout
    assert re.search(r"Basic Constraints: critical\s+CA:TRUE", out), out
    assert re.search(r"Key Usage: critical\s+Certificate Sign, CRL Sign\s*$", out, re.M), out
    assert "Subject Key Identifier" in out


def test_root_is_self_signed(init_ca, ca_dir):
    init_ca()
    root = h.load_cert(ca_dir / "root.pem")
    assert root.issuer == root.subject
    root.verify_directly_issued_by(root)  # raises if the signature is wrong
    r = h.openssl("verify", "-CAfile", ca_dir / "root.pem", ca_dir / "root.pem")
    assert r.returncode == 0 and r.stdout.strip() == f"{ca_dir / 'root.pem'}: OK", h.describe(r)


def test_root_serial_is_random_16_to_20_octets(run, tmp_path, passphrase_file):
    serials = []
    for i in range(2):
        d = tmp_path / f"ca{i}"
        h.assert_ok(run("init-ca", "--ca-dir", d, "--passphrase-file", passphrase_file))
        cert = h.load_cert(d / "root.pem")
        assert cert.serial_number > 0
        n = h.cert_serial_der_len(cert)
        assert 16 <= n <= 20, f"serial encoded in {n} octets, expected 16-20"
        serials.append(cert.serial_number)
    assert serials[0] != serials[1], "two CAs got the same serial"


def test_defaults_subject_key_and_validity(init_ca, ca_dir):
    before = h.utcnow()
    init_ca()
    after = h.utcnow()
    root = h.load_cert(ca_dir / "root.pem")

    assert root.subject.rfc4514_string() == "CN=chpki Root CA"
    out = h.openssl("x509", "-in", ca_dir / "root.pem", "-noout", "-subject", "-nameopt", "RFC2253", check=True)
    assert out.stdout.strip() == "subject=CN=chpki Root CA"

    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)
    assert root.public_key().curve.name == "secp384r1"
    assert root.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA384

    assert root.not_valid_before_utc <= after
    assert root.not_valid_before_utc >= before - 2 * ONE_DAY
    expected = h.add_years(before, 10)
    assert abs(root.not_valid_after_utc - expected) <= ONE_DAY, (root.not_valid_after_utc, expected)


@pytest.mark.parametrize(
    "validity, expected",
    [
        ("30d", lambda t: t + dt.timedelta(days=30)),
        ("2y", lambda t: h.add_years(t, 2)),
        ("18m", lambda t: h.add_months(t, 18)),
    ],
)
def test_validity_option(init_ca, ca_dir, validity, expected):
    before = h.utcnow()
    init_ca("--validity", validity)
    root = h.load_cert(ca_dir / "root.pem")
    assert abs(root.not_valid_after_utc - expected(before)) <= ONE_DAY, root.not_valid_after_utc
    assert root.not_valid_before_utc <= h.utcnow()


KEY_TYPES = {
    "rsa-2048": (rsa.RSAPublicKey, 2048),
    "rsa-3072": (rsa.RSAPublicKey, 3072),
    "rsa-4096": (rsa.RSAPublicKey, 4096),
    "ec-p256": (ec.EllipticCurvePublicKey, "secp256r1"),
    "ec-p384": (ec.EllipticCurvePublicKey, "secp384r1"),
    "ed25519": (ed25519.Ed25519PublicKey, None),
}


@pytest.mark.parametrize("key", list(KEY_TYPES))
def test_key_types(init_ca, ca_dir, key, passphrase, tmp_path):
    init_ca("--key", key)
    root = h.check_valid_ca(ca_dir, passphrase, tmp_path)
    cls, detail = KEY_TYPES[key]
    pub = root.public_key()
    assert isinstance(pub, cls)
    assert h.key_type_of(pub) == key
    root.verify_directly_issued_by(root)
    hash_alg = root.signature_hash_algorithm
    if key == "ed25519":
        assert hash_alg is None
    elif key == "ec-p256":
        assert isinstance(hash_alg, hashes.SHA256)
    elif key == "ec-p384":
        assert isinstance(hash_alg, hashes.SHA384)
    else:
        assert isinstance(hash_alg, (hashes.SHA256, hashes.SHA384, hashes.SHA512))
    text = h.openssl("pkey", "-in", ca_dir / "root.key", "-passin", f"pass:{passphrase}", "-noout", "-text").stdout
    if key.startswith("rsa"):
        assert f"({detail} bit" in text
    elif key.startswith("ec"):
        assert {"secp256r1": "P-256", "secp384r1": "P-384"}[detail] in text
    else:
        assert "ED25519" in text.upper()


# ---------------------------------------------------------------------------------------------
# the CA key


def test_root_key_is_pkcs8_pbes2_encrypted(init_ca, ca_dir, passphrase_file, wrong_passphrase_file, passphrase):
    init_ca()
    key_path = ca_dir / "root.key"
    text = key_path.read_text()
    assert text.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"), text[:60]
    assert text.count("-----BEGIN") == 1

    params = h.pkcs8_encryption_params(key_path)
    assert params["scheme_oid"] == h.OID_PBES2
    assert params["cipher_oid"] == h.OID_AES256_CBC and params["iv_len"] == 16
    assert params["salt_len"] >= 8
    if params["kdf_oid"] == h.OID_SCRYPT:
        assert (params["N"], params["r"], params["p"]) == (16384, 8, 5), params
    else:
        assert params["kdf_oid"] == h.OID_PBKDF2, params
        assert params["prf_oid"] == h.OID_HMAC_SHA256 and params["iterations"] >= 600_000, params

    asn1 = h.openssl("asn1parse", "-in", key_path, check=True).stdout
    assert ":PBES2" in asn1
    assert ":scrypt" in asn1 or ":id-scrypt" in asn1 or ":PBKDF2" in asn1
    assert ":aes-256-cbc" in asn1

    ok = h.openssl("pkey", "-in", key_path, "-passin", f"file:{passphrase_file}", "-noout")
    assert ok.returncode == 0, h.describe(ok)
    bad = h.openssl("pkey", "-in", key_path, "-passin", f"file:{wrong_passphrase_file}", "-noout")
    assert bad.returncode != 0, "root.key opened with a wrong passphrase"

    key = h.load_key(key_path, passphrase)
    assert h.spki(key) == h.spki(h.load_cert(ca_dir / "root.pem"))
    with pytest.raises((ValueError, TypeError)):
        h.load_key(key_path, "not the passphrase at all")
    with pytest.raises((ValueError, TypeError)):
        h.load_key(key_path, None)


def test_no_passphrase_stores_plain_pkcs8(init_ca, ca_dir, tmp_path):
    init_ca("--no-passphrase")
    text = (ca_dir / "root.key").read_text()
    assert text.startswith("-----BEGIN PRIVATE KEY-----\n"), text[:60]
    assert "ENCRYPTED" not in text
    r = h.openssl("pkey", "-in", ca_dir / "root.key", "-noout")
    assert r.returncode == 0, h.describe(r)
    h.check_valid_ca(ca_dir, None, tmp_path)


# ---------------------------------------------------------------------------------------------
# where the passphrase comes from


def test_passphrase_from_env(run, ca_dir, tmp_path):
    secret = "env-passphrase-123"
    h.assert_ok(run("init-ca", "--ca-dir", ca_dir, env={"CHPKI_CA_PASSPHRASE": secret}))
    h.check_valid_ca(ca_dir, secret, tmp_path)


def test_passphrase_file_first_line_only(run, ca_dir, tmp_path):
    pf = h.write_secret(tmp_path / "pf", "first-line-pass\nsecond line\n")
    h.assert_ok(run("init-ca", "--ca-dir", ca_dir, "--passphrase-file", pf))
    h.load_key(ca_dir / "root.key", "first-line-pass")
    with pytest.raises((ValueError, TypeError)):
        h.load_key(ca_dir / "root.key", "first-line-pass\nsecond line\n")
    with pytest.raises((ValueError, TypeError)):
        h.load_key(ca_dir / "root.key", "first-line-pass\n")


def test_passphrase_file_without_trailing_newline(run, ca_dir, tmp_path):
    pf = h.write_secret(tmp_path / "pf", "no-newline-pass")
    h.assert_ok(run("init-ca", "--ca-dir", ca_dir, "--passphrase-file", pf))
    h.load_key(ca_dir / "root.key", "no-newline-pass")


def test_passphrase_file_wins_over_env(run, ca_dir, passphrase_file, passphrase):
    res = run("init-ca", "--ca-dir", ca_dir, "--passphrase-file", passphrase_file,
              env={"CHPKI_CA_PASSPHRASE": "the-env-passphrase"})
    h.assert_ok(res)
    h.load_key(ca_dir / "root.key", passphrase)
    with pytest.raises((ValueError, TypeError)):
        h.load_key(ca_dir / "root.key", "the-env-passphrase")


def test_passphrase_prompt_on_tty_without_echo(chpki, ca_dir, tmp_path):
    """With no file and no env, chpki prompts on the terminal, without echo: twice for the operations
    passphrase, then twice for the root's (SPEC §6 "Two secrets")."""
    secret = b"typed-at-the-prompt-42"
    root_secret = b"the-root-typed-at-the-prompt-43"
    master, slave = os.openpty()

    def take_terminal():  # runs in the child after setsid(): make the pty its controlling tty
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = chpki.popen("init-ca", "--ca-dir", ca_dir, stdin=slave, stdout=slave, stderr=slave,
                       preexec_fn=take_terminal)
    os.close(slave)
    out, answered_at, answers = b"", 0, 0
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
                pending = out[answered_at:]
                if answers < 4 and re.search(rb"(?i)(pass|again|confirm|verify|repeat|retype)[^\n]*:\s*$", pending):
                    time.sleep(0.2)
                    os.write(master, (root_secret if answers >= 2 else secret) + b"\n")
                    answers += 1
                    answered_at = len(out)
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            pytest.fail(f"init-ca on a TTY did not finish; terminal output so far: {out!r}")
        rc = proc.wait(timeout=60)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert answers >= 1, f"no passphrase prompt seen on the terminal: {out!r}"
    assert rc == 0, f"exit {rc}; terminal output: {out!r}"
    assert secret not in out and root_secret not in out, f"a passphrase was echoed: {out!r}"
    assert answers == 4 and b"root" in out.lower(), f"expected two prompts for each secret: {out!r}"
    pf = h.write_secret(tmp_path / "root-pass", root_secret.decode() + "\n")
    h.openssl("pkey", "-in", ca_dir / "root.key", "-passin", f"file:{pf}", "-noout", check=True)
    key = h.load_key(ca_dir / "intermediate.key", secret.decode())
    assert h.spki(key) == h.spki(h.load_cert(ca_dir / "intermediate.pem"))


def test_no_passphrase_source_and_no_tty_is_refused(run, ca_dir):
    res = run("init-ca", "--ca-dir", ca_dir)
    h.assert_refused(res, "passphrase", error="passphrase.missing")
    assert not ca_dir.exists()


@pytest.mark.parametrize("content", ["", "\n"], ids=["empty", "newline-only"])
def test_empty_passphrase_file_is_refused(run, ca_dir, tmp_path, content):
    pf = h.write_secret(tmp_path / "empty-pass", content)
    res = run("init-ca", "--ca-dir", ca_dir, "--passphrase-file", pf)
    h.assert_refused(res, (str(pf), pf.name), error="passphrase.invalid")
    assert not ca_dir.exists()


def test_missing_passphrase_file_is_refused(run, ca_dir, tmp_path):
    pf = tmp_path / "no-such-passphrase-file"
    res = run("init-ca", "--ca-dir", ca_dir, "--passphrase-file", pf)
    h.assert_refused(res, str(pf), error="file.missing")
    assert not ca_dir.exists()


@pytest.mark.parametrize("source", ["file", "env"])
def test_short_passphrase_is_refused(run, ca_dir, tmp_path, source):
    short = "seven77"  # 7 characters
    if source == "file":
        args, env = ["--passphrase-file", h.write_secret(tmp_path / "short", short + "\n")], None
    else:
        args, env = [], {"CHPKI_CA_PASSPHRASE": short}
    res = run("init-ca", "--ca-dir", ca_dir, *args, env=env)
    h.assert_refused(res, "passphrase", error="passphrase.too-short")
    assert not ca_dir.exists()


def test_eight_character_passphrase_is_accepted(run, ca_dir, tmp_path):
    pf = h.write_secret(tmp_path / "eight", "eight888\n")
    h.assert_ok(run("init-ca", "--ca-dir", ca_dir, "--passphrase-file", pf))
    h.check_valid_ca(ca_dir, "eight888", tmp_path)


def test_passphrase_file_with_no_passphrase_is_refused(run, ca_dir, passphrase_file):
    res = run("init-ca", "--ca-dir", ca_dir, "--passphrase-file", passphrase_file, "--no-passphrase")
    h.assert_refused(res, ("--no-passphrase", "--passphrase-file"), error="usage.conflicting-options")
    assert not ca_dir.exists()


def test_passphrase_is_never_a_command_line_value(run, ca_dir):
    res = run("init-ca", "--ca-dir", ca_dir, "--passphrase", "hunter2hunter2")
    h.assert_refused(res, "--passphrase", error="usage.invalid-argument")
    assert not ca_dir.exists()


# ---------------------------------------------------------------------------------------------
# subjects


def _oids_and_values(name: x509.Name):
    return [(a.oid, a.value) for a in name]  # in encoding order


def test_subject_option_rfc4514(init_ca, ca_dir):
    init_ca("--subject", "CN=Cinc Root CA,O=MyCompany,C=US")
    root = h.load_cert(ca_dir / "root.pem")
    assert root.subject.rfc4514_string() == "CN=Cinc Root CA,O=MyCompany,C=US"
    assert _oids_and_values(root.subject) == [
        (NameOID.COUNTRY_NAME, "US"),
        (NameOID.ORGANIZATION_NAME, "MyCompany"),
        (NameOID.COMMON_NAME, "Cinc Root CA"),
    ]
    assert root.issuer == root.subject
    out = h.openssl("x509", "-in", ca_dir / "root.pem", "-noout", "-subject", "-issuer", "-nameopt", "RFC2253",
                    check=True).stdout.splitlines()
    assert out == ["subject=CN=Cinc Root CA,O=MyCompany,C=US", "issuer=CN=Cinc Root CA,O=MyCompany,C=US"]


def test_subject_every_known_attribute_case_insensitive(init_ca, ca_dir):
    init_ca("--subject", "emailaddress=pki@example.com,cn=Ops Root,ou=Ops,o=Example Corp,l=Paris,st=IDF,c=FR,dc=example")
    root = h.load_cert(ca_dir / "root.pem")
    assert _oids_and_values(root.subject) == [
        (NameOID.DOMAIN_COMPONENT, "example"),
        (NameOID.COUNTRY_NAME, "FR"),
        (NameOID.STATE_OR_PROVINCE_NAME, "IDF"),
        (NameOID.LOCALITY_NAME, "Paris"),
        (NameOID.ORGANIZATION_NAME, "Example Corp"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "Ops"),
        (NameOID.COMMON_NAME, "Ops Root"),
        (NameOID.EMAIL_ADDRESS, "pki@example.com"),
    ]


def test_subject_escaped_comma(init_ca, ca_dir):
    init_ca("--subject", r"CN=Acme\, Inc. Root CA,O=Acme\, Inc.,C=US")
    root = h.load_cert(ca_dir / "root.pem")
    assert root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Acme, Inc. Root CA"
    assert root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Acme, Inc."
    assert root.subject.rfc4514_string() == r"CN=Acme\, Inc. Root CA,O=Acme\, Inc.,C=US"


@pytest.mark.parametrize(
    "subject",
    ["CN", "XX=foo", "CN=Root,C=USA", "C=USA", "CN=", "CN=a,,O=b", "O=No Common Name,C=US", "", "CN=Root,C=U1"],
)
def test_malformed_subject_is_refused(run, ca_dir, passphrase_file, subject):
    res = run("init-ca", "--ca-dir", ca_dir, "--passphrase-file", passphrase_file, "--subject", subject)
    h.assert_refused(res, "subject", error="subject.invalid")
    assert not ca_dir.exists(), "a refused init-ca created the CA dir"


def test_subject_from_inventory(init_ca, ca_dir, write_inventory):
    write_inventory(h.FULL_INVENTORY)
    init_ca()
    root = h.load_cert(ca_dir / "root.pem")
    assert root.subject.rfc4514_string() == "CN=Cinc Root CA,O=MyCompany,C=US"
    assert _oids_and_values(root.subject)[-1] == (NameOID.COMMON_NAME, "Cinc Root CA")


def test_subject_option_beats_inventory(init_ca, ca_dir, write_inventory):
    write_inventory(h.FULL_INVENTORY)
    init_ca("--subject", "CN=Other Root,C=DE")
    assert h.load_cert(ca_dir / "root.pem").subject.rfc4514_string() == "CN=Other Root,C=DE"


# ---------------------------------------------------------------------------------------------
# name constraints


def _name_constraints(cert):
    nc = h.ext(cert, x509.NameConstraints)
    assert nc is not None, "the issuing CA has no nameConstraints extension"
    assert nc.critical, "nameConstraints must be critical"
    assert not nc.value.excluded_subtrees
    permitted = nc.value.permitted_subtrees
    dns = {n.value for n in permitted if isinstance(n, x509.DNSName)}
    ips = {n.value for n in permitted if isinstance(n, x509.IPAddress)}
    other = [n for n in permitted if not isinstance(n, (x509.DNSName, x509.IPAddress))]
    assert not other, f"unexpected permitted subtrees {other}"
    return dns, ips


MINIMAL_DNS = {"example.com", "localhost", "backend-1"}
MINIMAL_IPS = {ipaddress.ip_network(n) for n in ("10.0.0.0/24", "127.0.0.0/8", "::1/128")}


def test_name_constraints_from_inventory_in_cwd(init_ca, ca_dir, write_inventory):
    write_inventory()
    init_ca()
    root = h.load_cert(ca_dir / "intermediate.pem")
    dns, ips = _name_constraints(root)
    assert h.ext(h.load_cert(ca_dir / "root.pem"), x509.NameConstraints) is None, "a default CA constrains its intermediate, not the root"
    assert dns == MINIMAL_DNS
    assert ips == MINIMAL_IPS
    out = h.openssl("x509", "-in", ca_dir / "intermediate.pem", "-noout", "-ext", "nameConstraints", check=True).stdout
    assert "Name Constraints: critical" in out
    assert "DNS:example.com" in out and "IP:10.0.0.0/255.255.255.0" in out


def test_name_constraints_from_inventory_option(init_ca, ca_dir, write_inventory, tmp_path):
    inv = write_inventory(path=tmp_path / "elsewhere.yml")
    init_ca("--inventory", inv, "--name-constraints", "auto")
    dns, ips = _name_constraints(h.load_cert(ca_dir / "intermediate.pem"))
    assert (dns, ips) == (MINIMAL_DNS, MINIMAL_IPS)


def test_name_constraints_from_inventory_env(init_ca, ca_dir, write_inventory, tmp_path):
    inv = write_inventory(path=tmp_path / "from-env.yml")
    init_ca(env={"CHPKI_INVENTORY": str(inv)})
    dns, ips = _name_constraints(h.load_cert(ca_dir / "intermediate.pem"))
    assert (dns, ips) == (MINIMAL_DNS, MINIMAL_IPS)


def test_name_constraints_cover_ipv6_hosts_and_vips(init_ca, ca_dir, write_inventory):
    inv = h.FULL_INVENTORY.replace(
        "    ips: [10.0.0.1]\n", '    ips: [10.0.0.1, "fd00:10:0:7::1"]\n'
    ).replace("    ips: [10.0.0.101]\n", "    ips: [192.168.50.7]\n")
    assert inv != h.FULL_INVENTORY
    write_inventory(inv)
    init_ca()
    dns, ips = _name_constraints(h.load_cert(ca_dir / "intermediate.pem"))
    # and the OpenSearch admin name: JSSE checks the CN of that SAN-less certificate as a DNS name
    assert dns == {"example.com", "localhost", "backend-1", "frontend-1", "haproxy-1", "admin"}
    assert ips == {
        ipaddress.ip_network(n)
        for n in ("10.0.0.0/24", "fd00:10:0:7::/64", "192.168.50.0/24", "127.0.0.0/8", "::1/128")
    }


def test_name_constraints_none(init_ca, ca_dir, write_inventory):
    write_inventory()
    init_ca("--name-constraints", "none")
    for name in ("root.pem", "intermediate.pem"):
        assert h.ext(h.load_cert(ca_dir / name), x509.NameConstraints) is None, name
        out = h.openssl("x509", "-in", ca_dir / name, "-noout", "-text", check=True).stdout
        assert "Name Constraints" not in out


def test_no_intermediate_puts_the_constraints_on_the_root(init_ca, ca_dir, write_inventory):
    write_inventory()
    res = init_ca("--no-intermediate")
    assert not (ca_dir / "intermediate.pem").exists() and not (ca_dir / "intermediate.key").exists()
    assert _name_constraints(h.load_cert(ca_dir / "root.pem")) == (MINIMAL_DNS, MINIMAL_IPS)
    assert "rotate-ca" in res.stderr, "init-ca --no-intermediate must warn that growth needs a new root" + h.describe(res)


def test_no_inventory_means_no_name_constraints(init_ca, ca_dir):
    init_ca("--name-constraints", "auto")
    assert h.ext(h.load_cert(ca_dir / "root.pem"), x509.NameConstraints) is None


def test_bad_name_constraints_value_is_refused(run, ca_dir, passphrase_file):
    res = run("init-ca", "--ca-dir", ca_dir, "--passphrase-file", passphrase_file, "--name-constraints", "sometimes")
    h.assert_refused(res, ("name-constraints", "sometimes"), error="usage.invalid-argument")
    assert not ca_dir.exists()


def _verify(ca_file, leaf_file, untrusted=None):
    args = ["verify", "-CAfile", ca_file]
    if untrusted:
        args += ["-untrusted", untrusted]
    return h.openssl(*args, leaf_file)


def test_name_constraints_enforced_by_openssl(init_ca, ca_dir, write_inventory, passphrase, tmp_path):
    write_inventory()
    init_ca("--no-intermediate")  # the root carries the constraints and signs leaves
    root = h.load_cert(ca_dir / "root.pem")
    key = h.load_key(ca_dir / "root.key", passphrase)

    cases = {
        "inside": (["backend-1.example.com", "backend-1", "localhost"], ["10.0.0.1", "127.0.0.1", "::1"], True),
        "evil-dns": (["evil.example.org"], [], False),
        "evil-ip": (["backend-1.example.com"], ["10.0.1.5"], False),
    }
    for name, (dns, ips, ok) in cases.items():
        cert, _ = h.sign_leaf(root, key, dns=dns, ips=ips, cn=dns[0])
        leaf = tmp_path / f"{name}.pem"
        leaf.write_bytes(h.pem(cert))
        r = _verify(ca_dir / "root.pem", leaf)
        if ok:
            assert r.returncode == 0, f"{name}: a leaf inside the constraints must verify" + h.describe(r)
        else:
            assert r.returncode != 0, f"{name}: a leaf outside the constraints verified" + h.describe(r)
            assert "permitted subtree violation" in r.stdout + r.stderr, h.describe(r)


def test_intermediate(init_ca, ca_dir, passphrase, tmp_path):
    init_ca("--intermediate")
    root = h.check_valid_ca(ca_dir, passphrase, tmp_path, intermediate=True)
    inter = h.load_cert(ca_dir / "intermediate.pem")

    assert inter.issuer == root.subject
    assert inter.subject != root.subject, "root and intermediate must have distinct names"
    inter.verify_directly_issued_by(root)
    bc = inter.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is True and bc.value.path_length == 0
    ku = inter.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    root_ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    aki = inter.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert aki.value.key_identifier == root_ski
    assert inter.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest != root_ski
    assert inter.not_valid_after_utc <= root.not_valid_after_utc
    assert inter.serial_number != root.serial_number and 16 <= h.cert_serial_der_len(inter) <= 20
    out = h.openssl("x509", "-in", ca_dir / "intermediate.pem", "-noout", "-ext", "basicConstraints", check=True)
    assert re.search(r"critical\s+CA:TRUE, pathlen:0", out.stdout), out.stdout

    # the intermediate key: same encryption, same passphrase
    assert (ca_dir / "intermediate.key").read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert h.pkcs8_encryption_params(ca_dir / "intermediate.key")["scheme_oid"] == h.OID_PBES2
    ikey = h.load_key(ca_dir / "intermediate.key", passphrase)
    assert h.spki(ikey) == h.spki(inter)
    assert h.spki(ikey) != h.spki(root)

    # the CRL is the intermediate's
    crl = x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes())
    assert crl.issuer == inter.subject
    assert crl.is_signature_valid(inter.public_key())
    chain = tmp_path / "chain.pem"
    chain.write_bytes((ca_dir / "intermediate.pem").read_bytes() + (ca_dir / "root.pem").read_bytes())
    r = h.openssl("crl", "-in", ca_dir / "crl.pem", "-CAfile", chain, "-noout")
    assert r.returncode == 0 and "verify OK" in r.stdout + r.stderr, h.describe(r)


def test_name_constraints_enforced_through_intermediate(init_ca, ca_dir, write_inventory, passphrase, tmp_path):
    write_inventory()
    init_ca("--intermediate")
    inter = h.load_cert(ca_dir / "intermediate.pem")
    ikey = h.load_key(ca_dir / "intermediate.key", passphrase)
    good, _ = h.sign_leaf(inter, ikey, dns=["backend-1.example.com"], ips=["10.0.0.1"], cn="backend-1.example.com")
    evil, _ = h.sign_leaf(inter, ikey, dns=["evil.example.org"], cn="evil.example.org")
    (tmp_path / "good.pem").write_bytes(h.pem(good))
    (tmp_path / "evil.pem").write_bytes(h.pem(evil))
    r = _verify(ca_dir / "root.pem", tmp_path / "good.pem", untrusted=ca_dir / "intermediate.pem")
    assert r.returncode == 0, h.describe(r)
    r = _verify(ca_dir / "root.pem", tmp_path / "evil.pem", untrusted=ca_dir / "intermediate.pem")
    assert r.returncode != 0 and "permitted subtree violation" in r.stdout + r.stderr, h.describe(r)


def test_invalid_inventory_is_refused(run, ca_dir, passphrase_file, write_inventory):
    inv = write_inventory(h.MINIMAL_INVENTORY + "bogus_key: 1\n")
    res = run("init-ca", "--ca-dir", ca_dir, "--passphrase-file", passphrase_file)
    h.assert_refused(res, "bogus_key", ("cluster.yml", str(inv)), error="inventory.unknown-field")
    assert not ca_dir.exists()


# ---------------------------------------------------------------------------------------------
# refusals leave everything as it was


@pytest.mark.parametrize(
    "second_args",
    [[], ["--key", "rsa-2048", "--subject", "CN=Second Root", "--validity", "1y"], ["--intermediate"]],
    ids=["same-options", "other-options", "intermediate"],
)
def test_refuses_an_existing_ca(run, ca_dir, passphrase_file, snapshot, second_args):
    h.assert_ok(run("init-ca", "--ca-dir", ca_dir, "--passphrase-file", passphrase_file))
    before = snapshot(ca_dir)
    root_before = (ca_dir / "root.pem").read_bytes()
    res = run("init-ca", "--ca-dir", ca_dir, "--passphrase-file", passphrase_file, *second_args)
    h.assert_refused(res, (str(ca_dir), "root.pem"), error="ca.exists")
    assert (ca_dir / "root.pem").read_bytes() == root_before
    assert snapshot(ca_dir) == before, "a refused init-ca changed the CA dir"


def test_refuses_existing_ca_without_passphrase(run, ca_dir, passphrase_file, snapshot):
    """The existence check comes first: no passphrase needed to be told the CA exists."""
    h.assert_ok(run("init-ca", "--ca-dir", ca_dir, "--passphrase-file", passphrase_file))
    before = snapshot(ca_dir)
    res = run("init-ca", "--ca-dir", ca_dir, "--no-passphrase")
    h.assert_refused(res, error="ca.exists")
    assert snapshot(ca_dir) == before


@pytest.mark.parametrize("key", ["rsa-1024", "dsa-2048", "EC-P384X"])
def test_unknown_key_type_is_refused(run, ca_dir, passphrase_file, snapshot, key):
    ca_dir.mkdir(mode=0o700)
    (ca_dir / "README.md").write_text("the CA lives here\n")
    before = snapshot(ca_dir)
    res = run("init-ca", "--ca-dir", ca_dir, "--passphrase-file", passphrase_file, "--key", key)
    h.assert_refused(res, (key, "--key"), error="usage.invalid-argument")
    assert snapshot(ca_dir) == before


@pytest.mark.parametrize("validity", ["banana", "0d", "10x", "y"])
def test_bad_validity_is_refused(run, ca_dir, passphrase_file, validity):
    res = run("init-ca", "--ca-dir", ca_dir, "--passphrase-file", passphrase_file, "--validity", validity)
    h.assert_refused(res, ("validity", validity), error="usage.invalid-value")
    assert not ca_dir.exists()


def test_ca_dir_parent_is_a_file(run, workdir, passphrase_file, snapshot):
    blocker = workdir / "somefile"
    blocker.write_text("not a directory\n")
    before = snapshot(workdir)
    res = run("init-ca", "--ca-dir", blocker / "ca", "--passphrase-file", passphrase_file)
    h.assert_refused(res, "somefile", error="ca.directory-unusable")
    assert snapshot(workdir) == before


def test_ca_dir_parent_missing(run, workdir, passphrase_file, snapshot):
    before = snapshot(workdir)
    target = workdir / "no" / "such" / "ca"
    res = run("init-ca", "--ca-dir", target, "--passphrase-file", passphrase_file)
    h.assert_refused(res, (str(target), str(target.parent)), error="ca.directory-unusable")
    assert snapshot(workdir) == before


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory nobody may write into: chmod 0500 for a normal user; for root (which ignores
    modes) the immutable attribute, when the filesystem and capabilities allow it."""
    d = tmp_path / "locked"
    d.mkdir()
    if os.geteuid() != 0:
        os.chmod(d, 0o500)
        yield d
        os.chmod(d, 0o700)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(d)], capture_output=True).returncode:
        pytest.skip("running as root and cannot make a directory immutable (chattr +i)")
    try:
        yield d
    finally:
        subprocess.run(["chattr", "-i", str(d)], capture_output=True)


def test_unwritable_parent_is_refused(run, read_only_dir, passphrase_file, snapshot):
    before = snapshot(read_only_dir)
    target = read_only_dir / "ca"
    res = run("init-ca", "--ca-dir", target, "--passphrase-file", passphrase_file)
    h.assert_refused(res, (str(target), str(read_only_dir)), error="ca.directory-unusable")
    assert snapshot(read_only_dir) == before


def test_unwritable_existing_ca_dir_is_refused(run, read_only_dir, passphrase_file, snapshot):
    before = snapshot(read_only_dir)
    res = run("init-ca", "--ca-dir", read_only_dir, "--passphrase-file", passphrase_file)
    h.assert_refused(res, str(read_only_dir), error="ca.directory-unusable")
    assert snapshot(read_only_dir) == before


def test_existing_dir_without_a_ca_is_used(init_ca, ca_dir, passphrase, tmp_path):
    """The repository ships ca/ with a README and .gitignore: that is not a CA yet."""
    ca_dir.mkdir(mode=0o700)
    (ca_dir / "README.md").write_text("the CA lives here\n")
    (ca_dir / ".gitignore").write_text("*\n!README.md\n")
    init_ca()
    assert (ca_dir / "README.md").read_text() == "the CA lives here\n"
    assert (ca_dir / ".gitignore").read_text() == "*\n!README.md\n"
    h.load_key(ca_dir / "root.key", passphrase)
    root = h.load_cert(ca_dir / "root.pem")
    root.verify_directly_issued_by(root)


# ---------------------------------------------------------------------------------------------
# global options


def test_default_ca_dir_is_dot_ca(run, workdir, passphrase_file, passphrase, tmp_path):
    h.assert_ok(run("init-ca", "--passphrase-file", passphrase_file))
    h.check_valid_ca(workdir / "ca", passphrase, tmp_path)


def test_ca_dir_from_env(run, tmp_path, workdir, passphrase_file, passphrase):
    target = tmp_path / "env-ca"
    h.assert_ok(run("init-ca", "--passphrase-file", passphrase_file, env={"CHPKI_CA_DIR": str(target)}))
    h.check_valid_ca(target, passphrase, tmp_path)
    assert not (workdir / "ca").exists()


def test_ca_dir_option_beats_env(run, tmp_path, passphrase_file):
    opt, env = tmp_path / "opt-ca", tmp_path / "env-ca"
    h.assert_ok(run("init-ca", "--ca-dir", opt, "--passphrase-file", passphrase_file, env={"CHPKI_CA_DIR": str(env)}))
    assert (opt / "root.pem").is_file()
    assert not env.exists()


def test_relative_paths_resolve_against_cwd(run, workdir, tmp_path, passphrase):
    h.write_secret(workdir / "pass.txt", passphrase + "\n")
    h.assert_ok(run("init-ca", "--ca-dir", "my-ca", "--passphrase-file", "pass.txt"))
    h.check_valid_ca(workdir / "my-ca", passphrase, tmp_path)


def test_quiet_prints_nothing(run, ca_dir, passphrase_file):
    res = h.assert_ok(run("init-ca", "-q", "--ca-dir", ca_dir, "--passphrase-file", passphrase_file))
    assert res.stdout == ""
    assert (ca_dir / "root.pem").is_file()


# ---------------------------------------------------------------------------------------------
# concurrency


@pytest.mark.parametrize("round_", range(5))
def test_two_concurrent_init_ca_make_one_ca(chpki, tmp_path, passphrase_file, passphrase, round_):
    ca_dir = tmp_path / "race-ca"
    procs = [chpki.popen("init-ca", "--ca-dir", ca_dir, "--passphrase-file", passphrase_file, "--no-intermediate") for _ in range(2)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    codes = sorted(r.returncode for r in results)
    assert codes == [0, 2], "expected one success and one refusal" + "".join(map(h.describe, results))
    loser = next(r for r in results if r.returncode == 2)
    last = [line for line in loser.stderr.splitlines() if line.strip()][-1]
    assert "error" in last.lower() and str(ca_dir) in last, h.describe(loser)
    root = h.check_valid_ca(ca_dir, passphrase, tmp_path)
    root.verify_directly_issued_by(root)
    crl = x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes())
    assert crl.is_signature_valid(root.public_key()), "crl.pem is not signed by the surviving root"


def test_refusal_after_waiting_for_the_ca_is_one_line(chpki, run, ca_dir, tmp_path, passphrase_file, snapshot):
    """A run that waits while another one creates the CA, then finds it, refuses with exactly one
    stderr line and changes nothing. Deterministic: the test holds an flock on the CA dir (as a
    concurrent chpki does) and puts a CA in place itself before letting go."""
    other = tmp_path / "other-ca"
    h.assert_ok(run("init-ca", "--ca-dir", other, "--passphrase-file", passphrase_file))
    ca_dir.mkdir(mode=0o700)
    fd = os.open(ca_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        proc = chpki.popen("init-ca", "--ca-dir", ca_dir, "--passphrase-file", passphrase_file, "--json")
        time.sleep(1.5)
        for name in os.listdir(other):
            shutil.copy2(other / name, ca_dir / name)
        before = snapshot(ca_dir)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    out, err = proc.communicate(timeout=300)
    res = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    h.assert_refused(res, str(ca_dir), error="ca.exists")
    assert snapshot(ca_dir) == before
