"""Shared helpers for the chpki end-to-end tests.

Everything here checks chpki's artefacts with code chpki did not write: the `openssl` CLI,
Python's `cryptography`, `sqlite3`, and a few lines of DER parsing.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import ipaddress
import json
import os
import re
import sqlite3
import stat
import socket
import subprocess
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PASSPHRASE = "correct horse battery staple"

# The CA files SPEC §6 and the init-ca contract require.
CA_FILES = ("root.pem", "root.key", "ca.db", "index.txt", "index.txt.attr", "crl.pem")
INTERMEDIATE_FILES = ("intermediate.pem", "intermediate.key")

MINIMAL_INVENTORY = """\
domain: example.com
hosts:
  - name: backend-1.example.com
    ips: [10.0.0.1]
    groups: [backend]
"""

# The example of SPEC §2, verbatim.
FULL_INVENTORY = """\
domain: example.com                 # service discovery domain: <service>.<domain>
subject:                            # DN attributes of every node and admin certificate
  OU: MyOrganizationalUnit
  O: MyCompany
  L: MyCity
  ST: MyState
  C: US
ca:
  common_name: Cinc Root CA
  key: ec-p384                      # rsa-2048 | rsa-3072 | rsa-4096 | ec-p256 | ec-p384 | ed25519
  validity: 10y
defaults:
  key: ec-p256
  validity: 397d
  renew_before: 30d
hosts:
  - name: backend-1.example.com     # FQDN; the short name is its first label
    ips: [10.0.0.1]
    groups: [backend]
  - name: frontend-1.example.com
    ips: [10.0.0.11]
    groups: [frontend]
  - name: haproxy-1.example.com
    ips: [10.0.0.21]
    groups: [balancer]
vips:                               # load-balanced names that haproxy terminates TLS for (reference 000)
  - name: cinc-opensearch-cluster   # the domain is appended
    ips: [10.0.0.100]
  - name: cinc-minio-cluster
    ips: [10.0.0.100]
  - name: cinc-server-cluster
    ips: [10.0.0.101]
services:                           # keys as in minicluster's service_credentials, plus `hosts`
  opensearch:
    hosts: backend                  # a group name or a list of host names
    key: rsa-2048
    server_cert_mode: both          # client | server | both  -> EKU
    enable_client: false
    extra_san: [cinc-opensearch-cluster]   # the domain is appended
  patroni: { hosts: backend, extra_san: [cinc-postgresql-cluster] }
  etcd:    { hosts: backend, server_cert_mode: both }
  minio:   { hosts: backend, extra_san: [cinc-minio-cluster] }
  nginx:   { hosts: frontend, extra_san: [cinc-server-cluster] }
  haproxy: { hosts: balancer }      # one server cert per VIP (SANs: VIP FQDN + its IPs) on every balancer
admin:
  name: admin                       # CN of the OpenSearch admin certificate
"""


# --------------------------------------------------------------------------------------------
# processes


def describe(res: subprocess.CompletedProcess) -> str:
    """A readable dump of a finished process for assertion messages."""
    args = " ".join(str(a) for a in res.args) if isinstance(res.args, (list, tuple)) else res.args
    return f"\n$ {args}\nexit {res.returncode}\n--- stdout ---\n{res.stdout}\n--- stderr ---\n{res.stderr}"


def openssl(*args, input=None, check=False) -> subprocess.CompletedProcess:
    res = subprocess.run(
        ["openssl", *[str(a) for a in args]],
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    if check:
        assert res.returncode == 0, describe(res)
    return res


def error_line(res: subprocess.CompletedProcess) -> str:
    """The single non-empty stderr line of a refused command."""
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected exactly one non-empty line on stderr, got {len(lines)}" + describe(res)
    return lines[0]


def error_object(res: subprocess.CompletedProcess) -> dict:
    """The `{"error": {...}}` object a failed command printed on stdout under --json (docs/errors.md).
    For a result of a run without --json, the same command is run again with it (a refusal changes
    nothing, so the second run must refuse the same way: same exit status, as many stderr lines;
    the words may differ by a timestamp)."""
    if not res.stdout.lstrip().startswith("{"):
        again = getattr(res, "again", None)
        assert again is not None, "run the command with --json to read its error code" + describe(res)
        rerun = again("--json")
        assert rerun.returncode == res.returncode and len(rerun.stderr.splitlines()) == len(res.stderr.splitlines()), (
            "the refusal is not the same with --json" + describe(res) + describe(rerun))
        res = rerun
    try:
        document = json.loads(res.stdout)
    except ValueError:
        raise AssertionError("stdout is not one JSON document" + describe(res)) from None
    assert set(document) == {"error"}, describe(res)
    error = document["error"]
    assert error.get("code") and error.get("message"), describe(res)
    assert None not in error.values(), describe(res)
    _record_code(error["code"])
    return error


def _record_code(code: str) -> None:
    # CHPKI_RECORD_CODES=FILE: each checked refusal's call site and code, to keep docs/errors.md honest.
    target = os.environ.get("CHPKI_RECORD_CODES")
    if not target:
        return
    import inspect
    chain = [f"{Path(f.filename).name}:{f.lineno}" for f in inspect.stack()[2:] if Path(f.filename).name.startswith("test_")]
    with open(target, "a") as out:
        out.write(f"{'>'.join(chain)}|{code}\n")


def assert_refused(res: subprocess.CompletedProcess, *mentions, code: int = 2, error: str | tuple | None = None) -> str:
    """Exit `code` (2 = bad input/refusal), exactly one stderr line, which reads as an error and
    names each of `mentions` (a string, or a tuple of alternatives any one of which must appear),
    and, when `error` is given, whose --json error object carries that code (docs/errors.md; a
    tuple: one of them).
    Assert on the code; keep `mentions` to the file and field named, and to wording that is itself
    the product."""
    assert res.returncode == code, f"expected exit {code}" + describe(res)
    line = error_line(res)
    assert "error" in line.lower(), f"stderr line does not read as an error: {line!r}"
    for m in mentions:
        alts = m if isinstance(m, tuple) else (m,)
        assert any(str(a).lower() in line.lower() for a in alts), (
            f"stderr line should mention {' or '.join(map(repr, map(str, alts)))}: {line!r}"
        )
    if error is not None or (code != 1 and os.environ.get("CHPKI_RECORD_CODES")):
        found = error_object(res)["code"]
        if error is not None:
            wanted = error if isinstance(error, tuple) else (error,)
            assert found in wanted, f"expected error code {' or '.join(wanted)}, got {found}" + describe(res)
    return line


def assert_ok(res: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert res.returncode == 0, "expected exit 0" + describe(res)
    return res


# --------------------------------------------------------------------------------------------
# files


def snapshot(root: Path):
    """Every entry under `root` (and `root` itself as "."): relative path -> (mode, sha256), where
    mode is `ls -l` style ("-rw-------", "drwx------") and sha256 is None for a directory and the
    target for a symlink. None if `root` does not exist. Compare two snapshots with ==."""
    root = Path(root)
    if not os.path.lexists(root):
        return None
    out = {}

    def record(p: Path, rel: str):
        st = os.lstat(p)
        mode = stat.filemode(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            out[rel] = (mode, None)
        elif stat.S_ISLNK(st.st_mode):
            out[rel] = (mode, os.readlink(p))
        else:
            out[rel] = (mode, hashlib.sha256(p.read_bytes()).hexdigest())

    record(root, ".")
    if root.is_dir() and not root.is_symlink():
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                record(p, str(p.relative_to(root)))
    return out


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def write_secret(path: Path, text: str) -> Path:
    path = Path(path)
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


# --------------------------------------------------------------------------------------------
# X.509


def load_cert(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def load_certs(path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(Path(path).read_bytes())


def load_key(path, passphrase: str | None):
    return serialization.load_pem_private_key(
        Path(path).read_bytes(), None if passphrase is None else passphrase.encode()
    )


def spki(obj) -> bytes:
    pub = obj.public_key()
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def ext(cert, cls):
    """The extension of type `cls`, or None."""
    try:
        return cert.extensions.get_extension_for_class(cls)
    except x509.ExtensionNotFound:
        return None


def key_type_of(pub) -> str:
    """The chpki name of a key: rsa-2048, ec-p256, ed25519..."""
    if isinstance(pub, (rsa.RSAPublicKey, rsa.RSAPrivateKey)):
        return f"rsa-{pub.key_size}"
    if isinstance(pub, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        return {"secp256r1": "ec-p256", "secp384r1": "ec-p384", "secp521r1": "ec-p521"}[pub.curve.name]
    if isinstance(pub, (ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey)):
        return "ed25519"
    if isinstance(pub, (ed448.Ed448PublicKey, ed448.Ed448PrivateKey)):
        return "ed448"
    raise AssertionError(f"unexpected key {pub!r}")


def hash_for(key):
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
        return hashes.SHA384()
    return hashes.SHA256()


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def add_years(d: dt.datetime, years: int) -> dt.datetime:
    y = d.year + years
    day = min(d.day, calendar.monthrange(y, d.month)[1])
    return d.replace(year=y, day=day)


def add_months(d: dt.datetime, months: int) -> dt.datetime:
    m0 = d.month - 1 + months
    y, m = d.year + m0 // 12, m0 % 12 + 1
    day = min(d.day, calendar.monthrange(y, m)[1])
    return d.replace(year=y, month=m, day=day)


def fingerprint(cert) -> str:
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def sign_leaf(
    issuer_cert: x509.Certificate,
    issuer_key,
    dns=(),
    ips=(),
    cn: str = "leaf",
    days: int = 30,
    eku=(ExtendedKeyUsageOID.SERVER_AUTH,),
    leaf_key=None,
):
    """A leaf certificate signed by `issuer_key`, made by `cryptography` (not by chpki)."""
    leaf_key = leaf_key or ec.generate_private_key(ec.SECP256R1())
    now = utcnow()
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(issuer_cert.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
    )
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = b.sign(issuer_key, hash_for(issuer_key))
    return cert, leaf_key


def pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


# --------------------------------------------------------------------------------------------
# DER (a few lines, so the key-encryption parameters are read independently of any library)


def der_read(buf: bytes, pos: int = 0):
    """(tag, content bytes, next position) of the TLV at `pos`."""
    tag = buf[pos]
    length = buf[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(buf[pos : pos + n], "big")
        pos += n
    return tag, buf[pos : pos + length], pos + length


def der_children(content: bytes):
    out, pos = [], 0
    while pos < len(content):
        tag, body, pos = der_read(content, pos)
        out.append((tag, body))
    return out


def der_oid(body: bytes) -> str:
    first = body[0]
    parts = [str(first // 40), str(first % 40)] if first < 80 else ["2", str(first - 80)]
    value = 0
    for b in body[1:]:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            parts.append(str(value))
            value = 0
    return ".".join(parts)


OID_PBES2 = "1.2.840.113549.1.5.13"
OID_PBKDF2 = "1.2.840.113549.1.5.12"
OID_SCRYPT = "1.3.6.1.4.1.11591.4.11"
OID_AES256_CBC = "2.16.840.1.101.3.4.1.42"
OID_HMAC_SHA256 = "1.2.840.113549.2.9"


def pem_body(text: str, label: str) -> bytes:
    import base64

    m = re.search(rf"-----BEGIN {label}-----\r?\n(.*?)-----END {label}-----", text, re.S)
    assert m, f"no {label} PEM block"
    return base64.b64decode("".join(m.group(1).split()))


def pkcs8_encryption_params(path) -> dict:
    """Decode EncryptedPrivateKeyInfo (RFC 5958) with PBES2 (RFC 8018) by hand."""
    der = pem_body(Path(path).read_text(), "ENCRYPTED PRIVATE KEY")
    tag, top, _ = der_read(der)
    assert tag == 0x30
    (t_alg, alg), (t_data, data) = der_children(top)
    assert t_alg == 0x30 and t_data == 0x04
    (t_oid, oid), (t_params, params) = der_children(alg)
    out = {"scheme_oid": der_oid(oid), "encrypted_len": len(data)}
    if out["scheme_oid"] != OID_PBES2:
        return out
    (_, kdf), (_, enc) = der_children(params)
    (_, kdf_oid), (_, kdf_params) = der_children(kdf)
    out["kdf_oid"] = der_oid(kdf_oid)
    kp = der_children(kdf_params)
    out["salt_len"] = len(kp[0][1])
    if out["kdf_oid"] == OID_SCRYPT:
        ints = [int.from_bytes(b, "big") for t, b in kp[1:] if t == 0x02]
        out["N"], out["r"], out["p"] = ints[0], ints[1], ints[2]
    elif out["kdf_oid"] == OID_PBKDF2:
        out["iterations"] = int.from_bytes(kp[1][1], "big")
        prf = [b for t, b in kp[2:] if t == 0x30]
        out["prf_oid"] = der_oid(der_children(prf[0])[0][1]) if prf else "1.2.840.113549.2.7"  # default SHA-1
    (_, enc_oid), (t_iv, iv) = der_children(enc)
    out["cipher_oid"] = der_oid(enc_oid)
    out["iv_len"] = len(iv)
    return out


def cert_serial_der_len(cert: x509.Certificate) -> int:
    """Length in octets of the serialNumber INTEGER as encoded in the certificate."""
    _, tbs, _ = der_read(cert.tbs_certificate_bytes)
    pos = 0
    tag, _, nxt = der_read(tbs, pos)
    if tag == 0xA0:  # [0] version
        pos = nxt
    tag, body, _ = der_read(tbs, pos)
    assert tag == 0x02, "serialNumber is not an INTEGER"
    return len(body)


# --------------------------------------------------------------------------------------------
# the CA as a whole


def sqlite_journal_mode(db: Path, tmp: Path) -> str:
    """PRAGMA journal_mode, read on a copy so the CA directory is not touched."""
    import shutil

    tmp.mkdir(parents=True, exist_ok=True)
    copy = tmp / "ca-copy.db"
    shutil.copyfile(db, copy)
    for suffix in ("-wal",):
        if os.path.exists(str(db) + suffix):
            shutil.copyfile(str(db) + suffix, str(copy) + suffix)
    con = sqlite3.connect(copy)
    try:
        mode = con.execute("PRAGMA journal_mode").fetchone()[0]
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return mode.lower()
    finally:
        con.close()


def check_valid_ca(ca_dir: Path, passphrase: str | None, tmp: Path, intermediate: bool | None = None):
    """The invariants of a freshly initialised CA, each checked by openssl or cryptography.
    `intermediate` None: whether the CA has one (init-ca makes one unless --no-intermediate).
    Returns the root certificate."""
    ca_dir = Path(ca_dir)
    if intermediate is None:
        intermediate = (ca_dir / "intermediate.pem").exists()
    for name in CA_FILES + (INTERMEDIATE_FILES if intermediate else ()):
        assert (ca_dir / name).is_file(), f"{name} missing in {ca_dir}: {sorted(os.listdir(ca_dir))}"
    root_pem = ca_dir / "root.pem"
    r = openssl("verify", "-CAfile", root_pem, root_pem)
    assert r.returncode == 0 and r.stdout.strip().endswith(": OK"), describe(r)
    root = load_cert(root_pem)
    key = load_key(ca_dir / "root.key", passphrase)
    assert spki(key) == spki(root), "root.key is not the key of root.pem"
    if passphrase is not None:
        pf = tmp / "check-pass"
        write_secret(pf, passphrase + "\n")
        r = openssl("pkey", "-in", ca_dir / "root.key", "-passin", f"file:{pf}", "-noout")
        assert r.returncode == 0, describe(r)
    assert sqlite_journal_mode(ca_dir / "ca.db", tmp / "dbcopy") == "wal"
    index = [row["serial"] for row in parse_index((ca_dir / "index.txt").read_text())]
    issuer = root
    if not intermediate:
        assert index == [], index
    if intermediate:
        issuer = load_cert(ca_dir / "intermediate.pem")
        # index.txt lists what the CA signed: the intermediate (not the self-signed root)
        assert index == [format(issuer.serial_number, "X").rjust(36, "0")], index
        r = openssl("verify", "-CAfile", root_pem, ca_dir / "intermediate.pem")
        assert r.returncode == 0, describe(r)
        ikey = load_key(ca_dir / "intermediate.key", passphrase)
        assert spki(ikey) == spki(issuer)
    crl = x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes())
    assert crl.issuer == issuer.subject
    assert crl.is_signature_valid(issuer.public_key())
    for dirpath, dirnames, filenames in os.walk(ca_dir):
        assert mode_of(dirpath) == 0o700, f"{dirpath} is {oct(mode_of(dirpath))}, expected 0700"
        for f in filenames:
            p = Path(dirpath) / f
            assert mode_of(p) == 0o600, f"{p} is {oct(mode_of(p))}, expected 0600"
    return root


# --------------------------------------------------------------------------------------------
# normalising names that the contract does not spell out


_KU_ALIASES = {
    "digitalsignature": "digitalSignature",
    "nonrepudiation": "contentCommitment",
    "contentcommitment": "contentCommitment",
    "keyencipherment": "keyEncipherment",
    "dataencipherment": "dataEncipherment",
    "keyagreement": "keyAgreement",
    "keycertsign": "keyCertSign",
    "certificatesign": "keyCertSign",
    "certsign": "keyCertSign",
    "crlsign": "cRLSign",
    "encipheronly": "encipherOnly",
    "decipheronly": "decipherOnly",
}
_EKU_ALIASES = {
    "serverauth": "serverAuth",
    "tlswebserverauthentication": "serverAuth",
    "1.3.6.1.5.5.7.3.1": "serverAuth",
    "clientauth": "clientAuth",
    "tlswebclientauthentication": "clientAuth",
    "1.3.6.1.5.5.7.3.2": "clientAuth",
    "codesigning": "codeSigning",
    "emailprotection": "emailProtection",
    "ocspsigning": "OCSPSigning",
    "timestamping": "timeStamping",
}


def _norm(word: str) -> str:
    return re.sub(r"[^0-9a-z.]", "", word.lower())


def norm_key_usage(items) -> set[str]:
    out = set()
    for i in items:
        assert _norm(i) in _KU_ALIASES, f"unknown key usage name {i!r}"
        out.add(_KU_ALIASES[_norm(i)])
    return out


def norm_eku(items) -> set[str]:
    out = set()
    for i in items:
        assert _norm(i) in _EKU_ALIASES, f"unknown extended key usage name {i!r}"
        out.add(_EKU_ALIASES[_norm(i)])
    return out


def norm_general_name(text: str) -> str:
    """'DNS:x' stays; 'IP:10.0.0.0/255.255.255.0' and 'IP Address:...' become 'IP:10.0.0.0/24'."""
    kind, _, value = text.partition(":")
    kind = kind.strip().upper()
    if kind in ("IP", "IP ADDRESS"):
        addr, slash, mask = value.strip().partition("/")
        if slash:
            if "." in mask or ":" in mask:
                prefix = bin(int(ipaddress.ip_address(mask))).count("1")
            else:
                prefix = int(mask)
            return f"IP:{ipaddress.ip_network(f'{addr}/{prefix}', strict=False)}"
        return f"IP:{ipaddress.ip_address(addr)}"
    return f"{kind}:{value.strip()}"


def general_names(names) -> set[str]:
    out = set()
    for n in names or ():
        if isinstance(n, x509.DNSName):
            out.add(f"DNS:{n.value}")
        elif isinstance(n, x509.IPAddress):
            out.add(f"IP:{n.value}")
        else:
            out.add(f"{type(n).__name__}:{n.value}")
    return out


# --------------------------------------------------------------------------------------------
# issuance: what `chpki issue` must produce, computed from the inventory YAML with PyYAML
# (docs/issuance.md), never by asking chpki; and readers for ca.db, index.txt and reports.

E2E_DIR = Path(__file__).resolve().parent
INVENTORIES = E2E_DIR / "inventories"

_SUBJECT_OIDS = {
    "C": NameOID.COUNTRY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "L": NameOID.LOCALITY_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
}
_ONELINE_SHORT = {
    NameOID.COUNTRY_NAME: "C",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.LOCALITY_NAME: "L",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.COMMON_NAME: "CN",
}
EKU_BY_MODE = {"server": {"serverAuth"}, "client": {"clientAuth"}, "both": {"serverAuth", "clientAuth"}}


def load_yaml(path):
    import yaml

    return yaml.safe_load(Path(path).read_text())


def parse_period(text) -> tuple[int, str]:
    text = str(text).strip().lower()
    m = re.fullmatch(r"(\d+)([hdwmy]?)", text)
    assert m, f"unparseable period {text!r}"
    return int(m.group(1)), m.group(2) or "d"


def period_after(start: dt.datetime, period) -> dt.datetime:
    """`start` + a chpki period (`397d`, `10y`, `6m`, `2w`, `36h`), calendar years and months."""
    n, unit = parse_period(period)
    if unit == "h":
        return start + dt.timedelta(hours=n)
    if unit == "d":
        return start + dt.timedelta(days=n)
    if unit == "w":
        return start + dt.timedelta(weeks=n)
    if unit == "m":
        return add_months(start, n)
    return add_years(start, n)


def period_before(end: dt.datetime, period) -> dt.datetime:
    n, unit = parse_period(period)
    if unit in "hdw":
        return end - (period_after(end, period) - end)
    return add_months(end, -n) if unit == "m" else add_years(end, -n)


def _qualify(name: str, domain: str) -> str:
    name = str(name).lower()
    return name if name == domain or name.endswith("." + domain) else f"{name}.{domain}"


class Expected:
    """One certificate the inventory implies (docs/issuance.md, first table)."""

    def __init__(self, kind, host, service, name, cn, attrs, dns=(), ips=(), eku=(), key="ec-p256",
                 validity="397d"):
        self.kind, self.host, self.service, self.name = kind, host, service, name
        self.cn = cn
        self.attrs = list(attrs)  # [(oid, value)] in encoding order, CN last
        self.dns = list(dns)
        self.ips = list(ips)
        self.eku = set(eku)
        self.key = key
        self.validity = validity

    @property
    def identity(self):
        return (self.kind, self.host, self.service, self.name)

    @property
    def sans(self) -> set[str]:
        return {f"DNS:{d}" for d in self.dns} | {f"IP:{ipaddress.ip_address(i)}" for i in self.ips}

    def __repr__(self):
        return f"Expected{self.identity}"


def _dedup(items):
    out = []
    for i in items:
        if i not in out:
            out.append(i)
    return out


def expected_certificates(inv: dict) -> dict[tuple, Expected]:
    """identity (kind, host, service, name) -> Expected, per docs/issuance.md."""
    domain = str(inv["domain"]).lower()
    subject = inv.get("subject") or {}
    attrs = []
    for k in ("C", "ST", "L", "O", "OU"):
        if k in subject:
            value = str(subject[k])
            attrs.append((_SUBJECT_OIDS[k], value.upper() if k == "C" else value))
    defaults = {"key": "ec-p256", "validity": "397d", "renew_before": "30d"}
    defaults.update(inv.get("defaults") or {})
    hosts = []
    for hd in inv["hosts"]:
        fqdn = str(hd["name"]).lower()
        hosts.append({"fqdn": fqdn, "short": fqdn.split(".")[0], "ips": [str(i) for i in hd.get("ips") or []],
                      "groups": list(hd.get("groups") or [])})
    vips = [{"fqdn": _qualify(v["name"], domain), "ips": [str(i) for i in v["ips"]]} for v in inv.get("vips") or []]
    services = inv.get("services") or {}
    admin_name = str((inv.get("admin") or {}).get("name", "admin"))
    out: dict[tuple, Expected] = {}

    def add(e: Expected):
        assert e.identity not in out, f"model: duplicate identity {e.identity}"
        out[e.identity] = e

    for sname, s in services.items():
        s = s or {}
        sel = s["hosts"]
        if isinstance(sel, str):
            members = [h for h in hosts if sel in h["groups"]]
        else:
            members = []
            for x in sel:
                x = str(x).lower()
                members.append(next(h for h in hosts if h["fqdn"] == x or h["short"] == x))
        key = str(s.get("key") or ("rsa-2048" if sname == "opensearch" else defaults["key"])).lower()
        validity = str(s.get("validity") or defaults["validity"])
        server_eku = EKU_BY_MODE[str(s.get("server_cert_mode", "server"))]
        client_eku = EKU_BY_MODE[str(s.get("client_cert_mode", "client"))]
        extra = [_qualify(x, domain) for x in s.get("extra_san") or []]
        for h in members:
            if s.get("enable_server", True):
                if sname == "haproxy":
                    for v in vips:
                        add(Expected("server", h["fqdn"], sname, v["fqdn"], v["fqdn"],
                                     attrs + [(NameOID.COMMON_NAME, v["fqdn"])],
                                     dns=[v["fqdn"]], ips=v["ips"], eku=server_eku, key=key, validity=validity))
                else:
                    dns = _dedup([f"{sname}.{domain}", h["short"], h["fqdn"], *extra, "localhost"])
                    ips = _dedup([str(ipaddress.ip_address(i)) for i in [*h["ips"], "127.0.0.1", "::1"]])
                    add(Expected("server", h["fqdn"], sname, h["fqdn"], h["fqdn"],
                                 attrs + [(NameOID.COMMON_NAME, h["fqdn"])],
                                 dns=dns, ips=ips, eku=server_eku, key=key, validity=validity))
            if s.get("enable_client", True):
                who = h["fqdn"] if s.get("client_cn") == "fqdn" else h["short"]
                cn = f"{sname}@{who}"
                add(Expected("client", h["fqdn"], sname, cn, cn, [(NameOID.COMMON_NAME, cn)],
                             eku=client_eku, key=key, validity=validity))
    if "opensearch" in services:
        os_key = str((services["opensearch"] or {}).get("key") or "rsa-2048").lower()
        os_validity = str((services["opensearch"] or {}).get("validity") or defaults["validity"])
        add(Expected("admin", None, "opensearch", admin_name, admin_name,
                     attrs + [(NameOID.COMMON_NAME, admin_name)],
                     eku={"clientAuth"}, key=os_key, validity=os_validity))
    return out


def name_pairs(name: x509.Name) -> list[tuple]:
    """[(oid, value)] of a Name in encoding order, one attribute per RDN asserted."""
    out = []
    for rdn in name.rdns:
        attrs = list(rdn)
        assert len(attrs) == 1, f"multi-valued RDN in {name.rfc4514_string()}"
        out.append((attrs[0].oid, attrs[0].value))
    return out


def oneline(name: x509.Name) -> str:
    """OpenSSL's X509_NAME_oneline form, as `openssl ca` writes it in index.txt (plain ASCII)."""
    return "".join(f"/{_ONELINE_SHORT[oid]}={value}" for oid, value in name_pairs(name))


def eku_names(cert) -> set[str] | None:
    e = ext(cert, x509.ExtendedKeyUsage)
    if e is None:
        return None
    return norm_eku([u.dotted_string for u in e.value])


def key_usage_names(cert) -> set[str]:
    ku = ext(cert, x509.KeyUsage).value
    names = []
    for attr in ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                 "key_agreement", "key_cert_sign", "crl_sign"):
        if getattr(ku, attr):
            names.append(attr.replace("_", ""))
    if ku.key_agreement:
        if ku.encipher_only:
            names.append("encipheronly")
        if ku.decipher_only:
            names.append("decipheronly")
    return norm_key_usage(names)


def db_copy(ca_dir: Path, tmp: Path) -> Path:
    """A private copy of ca.db (and its WAL) to read, so that reading never touches the CA dir."""
    import shutil
    import tempfile

    tmp.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(dir=tmp, prefix="db-"))
    shutil.copyfile(Path(ca_dir) / "ca.db", d / "ca.db")
    wal = Path(ca_dir) / "ca.db-wal"
    if wal.exists():
        shutil.copyfile(wal, d / "ca.db-wal")
    return d / "ca.db"


def db_rows(ca_dir: Path, tmp: Path, where: str = "1=1", passphrase: str | None = PASSPHRASE) -> list[dict]:
    """Rows of the `certificates` table (as dicts), read from a copy of ca.db. Sealed leaf keys are
    opened with `passphrase` (see `unseal_leaf_keys`) into `private_key_pem`, as the first release stored them;
    an intermediate's sealed copy of its key (issue 19) into `sealed_issuing_key_pem`."""
    con = sqlite3.connect(db_copy(ca_dir, tmp))
    con.row_factory = sqlite3.Row
    try:
        rows = [dict(r) for r in con.execute(f"SELECT * FROM certificates WHERE {where} ORDER BY rowid")]
        wrap = con.execute("SELECT value FROM meta WHERE key = 'leaf_key_wrap'").fetchone()
    finally:
        con.close()
    if wrap and passphrase is not None and any(r.get("key_sealed") for r in rows):
        try:
            data_key = unwrap_data_key(wrap[0], passphrase)
        except Exception:
            data_key = None
        if data_key is not None:
            for r in rows:
                if r.get("key_sealed") and r["kind"] in ("root", "intermediate"):
                    r["sealed_issuing_key_pem"] = unseal(data_key, r["key_sealed"], r["serial"], ISSUING_KEY_AAD).decode()
                elif r.get("key_sealed"):
                    r["private_key_pem"] = unseal(data_key, r["key_sealed"], r["serial"]).decode()
    return rows


# Leaf keys at rest (docs/security.md), re-implemented with hashlib's scrypt and cryptography's
# AES-GCM: a data key wrapped under scrypt(passphrase), each key sealed under it with its serial as AAD.
WRAP_AAD = b"chpki leaf-key data key v1"
KEY_AAD = b"chpki leaf key v1 serial "
# An intermediate's second copy of its key, sealed under the same data key (docs/security.md).
ISSUING_KEY_AAD = b"chpki issuing key v1 serial "


def unwrap_data_key(wrap_json: str, passphrase: str) -> bytes:
    import base64
    import hashlib
    import json as _json
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    wrap = _json.loads(wrap_json)
    assert wrap["kdf"] == "scrypt" and wrap["version"] == 1, wrap
    params = wrap["scrypt"]
    kek = hashlib.scrypt(passphrase.encode(), salt=base64.b64decode(wrap["salt"]), n=params["n"], r=params["r"],
                         p=params["p"], maxmem=2**31 - 1, dklen=32)
    box = base64.b64decode(wrap["wrapped_key"])
    return AESGCM(kek).decrypt(box[:12], box[12:], WRAP_AAD)


def unseal(data_key: bytes, box: bytes, serial_hex: str, aad: bytes = KEY_AAD) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    return AESGCM(data_key).decrypt(box[:12], box[12:], aad + bytes.fromhex(serial_hex))


def db_integrity(ca_dir: Path, tmp: Path) -> str:
    con = sqlite3.connect(db_copy(ca_dir, tmp))
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


LEAF_KINDS = ("server", "client", "admin")


def leaf_rows(rows, status: str | None = "valid") -> list[dict]:
    return [r for r in rows if r["kind"] in LEAF_KINDS and (status is None or r["status"] == status)]


def row_identity(r) -> tuple:
    return (r["kind"], r["host"], r["service"], r["name"])


def row_cert(r) -> x509.Certificate:
    return x509.load_pem_x509_certificate(r["certificate_pem"].encode())


def parse_json_output(res: subprocess.CompletedProcess):
    import json

    try:
        return json.loads(res.stdout)
    except json.JSONDecodeError as e:
        raise AssertionError(f"stdout is not JSON ({e})" + describe(res)) from None


INDEX_LINE = re.compile(r"^([VRE])\t(\d{12}Z|\d{14}Z)\t([^\t]*)\t([0-9A-F]+)\t(unknown)\t(/[^\t]*)$")


def asn1_time(t: dt.datetime) -> str:
    t = t.astimezone(dt.timezone.utc)
    return t.strftime("%y%m%d%H%M%SZ") if t.year < 2050 else t.strftime("%Y%m%d%H%M%SZ")


def parse_index(text: str) -> list[dict]:
    """index.txt lines as dicts; asserts the `openssl ca` format of every line."""
    out = []
    assert text == "" or text.endswith("\n"), "index.txt does not end with a newline"
    for n, line in enumerate(text.splitlines(), 1):
        assert line.count("\t") == 5, f"index.txt line {n} has not 6 tab-separated fields: {line!r}"
        m = INDEX_LINE.match(line)
        assert m, f"index.txt line {n} is not in openssl ca format: {line!r}"
        out.append({"status": m.group(1), "expiry": m.group(2), "revocation": m.group(3),
                    "serial": m.group(4), "subject": m.group(6)})
    return out


def rfc3339(text: str) -> dt.datetime:
    assert isinstance(text, str) and re.fullmatch(
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", text), f"not RFC 3339: {text!r}"
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def rfc3339_z(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def openssl_verify_jobs(jobs, workers: int = 4) -> list[str]:
    """Run `openssl verify` for each job (a list of arguments after `verify`); returns the
    failures as readable strings (empty when every job printed `<file>: OK` and exited 0)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(args):
        r = openssl("verify", *args)
        ok = r.returncode == 0 and r.stdout.strip().endswith(": OK")
        return None if ok else describe(r)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [f for f in pool.map(one, jobs) if f]


def ocsp_statuses(index: Path, issuer: Path, certs: list[Path], tmp: Path) -> dict[str, str]:
    """Ask `openssl ocsp -index` (a real OpenSSL reader of index.txt) for the status of each
    certificate; returns {cert path: "good" | "revoked" | "unknown"}. The responder signs with a
    throw-away key made here, so no CA key is needed."""
    tmp.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = utcnow()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test responder")])
    rcert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
             .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp / "rsigner.pem").write_bytes(pem(rcert))
    (tmp / "rkey.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
    cert_args = [a for c in certs for a in ("-cert", c)]
    openssl("ocsp", "-issuer", issuer, *cert_args, "-no_nonce", "-reqout", tmp / "req.der", check=True)
    openssl("ocsp", "-index", index, "-CA", issuer, "-rsigner", tmp / "rsigner.pem", "-rkey", tmp / "rkey.pem",
            "-reqin", tmp / "req.der", "-respout", tmp / "resp.der", "-nmin", "5", check=True)
    r = openssl("ocsp", "-respin", tmp / "resp.der", "-issuer", issuer, *cert_args, "-noverify", check=True)
    out = {}
    for c in certs:
        m = re.search(rf"^{re.escape(str(c))}: (\w+)", r.stdout, re.M)
        assert m, f"no OCSP status for {c}" + describe(r)
        out[str(c)] = m.group(1)
    return out


def is_pkcs8_unencrypted(pem_text: str) -> bool:
    blocks = re.findall(r"-----BEGIN ([A-Z0-9 ]+)-----", pem_text)
    return blocks == ["PRIVATE KEY"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 10) -> None:
    """Until something accepts connections on 127.0.0.1:`port` (a server the test started)."""
    end = time.time() + timeout
    while time.time() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout:g}s")
