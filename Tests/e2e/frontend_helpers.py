"""Realistic Cinc/Chef frontend filesystem roots for the frontend-bundle tests (SPEC §5).

Everything here is made with Python's `cryptography` and `json`, never by chpki: real RSA-2048
keys, a `veil` v2 secrets file encrypted exactly as `Veil::Cipher::V2` does it (AES-256-CBC, PKCS#7
padding, random key and IV, strict base64), the other files with the modes a bootstrapped frontend
has.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets as pysecrets
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
import pytest

BUNDLE_PASSPHRASE = "frontend bundle passphrase 2027"

FLAVORS = {
    "cinc": {
        "etc": "etc/cinc-project",
        "var": "var/opt/cinc-project",
        "rb": "cinc-server.rb",
        "secrets": "private-cinc-secrets.json",
    },
    "chef": {
        "etc": "etc/opscode",
        "var": "var/opt/opscode",
        "rb": "chef-server.rb",
        "secrets": "private-chef-secrets.json",
    },
}


def paths(flavor: str = "cinc") -> dict[str, str]:
    """Role -> path relative to the root, for the ten files of SPEC §5."""
    f = FLAVORS[flavor]
    etc, var = f["etc"], f["var"]
    return {
        "rb": f"{etc}/{f['rb']}",
        "dark_launch": f"{etc}/dark_launch_features.json",
        "pivotal_pem": f"{etc}/pivotal.pem",
        "pivotal_rb": f"{etc}/pivotal.rb",
        "private_chef_sh": f"{etc}/private-chef.sh",
        "secrets": f"{etc}/{f['secrets']}",
        "webui_priv": f"{etc}/webui_priv.pem",
        "webui_pub": f"{etc}/webui_pub.pem",
        "bootstrapped": f"{var}/bootstrapped",
        "migration_level": f"{var}/upgrades/migration-level",
    }


# The modes of a bootstrapped frontend: SPEC §5's table, which install-frontend writes.
MODES = {
    "rb": 0o640,
    "dark_launch": 0o644,
    "pivotal_pem": 0o600,
    "pivotal_rb": 0o644,
    "private_chef_sh": 0o644,
    "secrets": 0o600,
    "webui_priv": 0o600,
    "webui_pub": 0o644,
    "bootstrapped": 0o600,
    "migration_level": 0o644,
}


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pkcs1_pem(key) -> str:
    """`BEGIN RSA PRIVATE KEY`, as Ruby's OpenSSL::PKey::RSA#to_pem writes the server's keys."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode()


def public_pem(key) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def spki_sha256(key) -> str:
    """The fingerprint chpki prints: SHA-256 of the SubjectPublicKeyInfo DER, AB:CD:..."""
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def credential(group: str, name: str, value: str) -> dict:
    return {"type": "Veil::Credential", "name": name, "group": group, "value": value, "version": 0,
            "length": len(value), "frozen": False}


def make_credentials(pivotal_key, webui_key) -> dict[str, dict[str, str]]:
    """group -> name -> value: the chef-server keys and the usual service groups."""
    def pw(n=100):
        return pysecrets.token_hex(n // 2)

    return {
        "chef-server": {
            "superuser_key": pkcs1_pem(pivotal_key),
            "webui_key": pkcs1_pem(webui_key),
            "webui_pub_key": public_pem(webui_key),
        },
        "postgresql": {"db_superuser_password": pw()},
        "opscode_erchef": {"sql_password": pw(), "sql_ro_password": pw(), "stats_password": pw()},
        "oc_bifrost": {"superuser_id": pysecrets.token_hex(16), "sql_password": pw(), "sql_ro_password": pw()},
        "oc_id": {"secret_key_base": pw(128), "sql_password": pw(), "sql_ro_password": pw()},
        "bookshelf": {"access_key_id": pw(40), "secret_access_key": pw(80), "sql_password": pw(), "sql_ro_password": pw()},
        "redis_lb": {"password": pw()},
        "rabbitmq": {"password": pw(), "management_password": pw(), "actions_password": pw()},
        "opscode-solr4": {"es_password": pw()},
        "push-jobs-server": {"pushy_priv_key": pw(64)},
        "data_collector": {"token": pw(64)},
    }


def veil_encrypt(plaintext: bytes, key: bytes, iv: bytes) -> str:
    """Veil::Cipher::V2#encrypt: AES-256-CBC with PKCS#7 padding, strict base64."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return base64.b64encode(enc.update(padded) + enc.finalize()).decode()


def veil_decrypt(doc: dict) -> dict:
    """The credentials of a v2 secrets file, decrypted here (not by chpki)."""
    cipher = doc["veil"]["cipher"]
    key, iv = base64.b64decode(cipher["key"]), base64.b64decode(cipher["iv"])
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = dec.update(base64.b64decode(doc["veil"]["credentials"])) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return json.loads(unpadder.update(padded) + unpadder.finalize())


def veil_v2_document(creds: dict[str, dict[str, str]], key: bytes | None = None, iv: bytes | None = None) -> dict:
    key = key or os.urandom(32)
    iv = iv or os.urandom(16)
    expanded = {g: {n: credential(g, n, v) for n, v in names.items()} for g, names in creds.items()}
    return {
        "veil": {
            "type": "Veil::CredentialCollection::ChefSecretsFile",
            "version": 2,
            "hasher": {
                "type": "Veil::Hasher::PBKDF2",
                "secret": pysecrets.token_hex(64),
                "salt": pysecrets.token_hex(32),
                "iterations": 10000,
                "hash_function": "OpenSSL::Digest::SHA512",
            },
            "cipher": {
                "type": "Veil::Cipher::V2",
                "key": base64.b64encode(key).decode(),
                "iv": base64.b64encode(iv).decode(),
            },
            "credentials": veil_encrypt(json.dumps(expanded).encode(), key, iv),
        }
    }


def secrets_text(doc: dict) -> str:
    """As Ruby's JSON.pretty_generate writes it (two-space indent), plus the newline of f.puts."""
    return json.dumps(doc, indent=2) + "\n"


@dataclass
class Frontend:
    root: Path
    flavor: str
    pivotal_key: object
    webui_key: object
    credentials: dict
    secrets_doc: dict
    paths: dict = field(default_factory=dict)

    def path(self, role: str) -> Path:
        return self.root / self.paths[role]

    def write_secrets(self, doc: dict | None = None, creds: dict | None = None) -> None:
        """Rewrite the secrets file (same mode) from `doc`, or a fresh v2 document of `creds`."""
        if doc is None:
            doc = veil_v2_document(creds if creds is not None else self.credentials)
        self.secrets_doc = doc
        write(self.path("secrets"), secrets_text(doc), MODES["secrets"])

    def secret_values(self) -> list[str]:
        return [v for names in self.credentials.values() for v in names.values()]


def write(path: Path, text: str | bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    os.chmod(path, mode)


def make_frontend(root: Path, flavor: str = "cinc", *, pivotal_key=None, webui_key=None,
                  credentials: dict | None = None, minor: int = 52) -> Frontend:
    """A bootstrapped frontend's files under `root` (created)."""
    root = Path(root)
    p = paths(flavor)
    f = FLAVORS[flavor]
    for d in (f["etc"], f["var"], f"{f['var']}/upgrades"):
        (root / d).mkdir(parents=True, exist_ok=True)
        os.chmod(root / d, 0o755)
    pivotal_key = pivotal_key or rsa_key()
    webui_key = webui_key or rsa_key()
    creds = credentials or make_credentials(pivotal_key, webui_key)
    doc = veil_v2_document(creds)
    etc = "/" + f["etc"]
    ctl = "cinc-server-ctl" if flavor == "cinc" else "chef-server-ctl"
    files = {
        "rb": (
            f"# {f['rb']}, written for {ctl} (reference 000)\n"
            "topology \"standalone\"\n"
            "api_fqdn \"cinc-server-cluster.example.com\"\n"
            "postgresql['external'] = true\n"
            "postgresql['vip'] = 'cinc-postgresql-cluster.example.com'\n"
            "opscode_solr4['external'] = true\n"
            "opscode_solr4['external_url'] = 'https://cinc-opensearch-cluster.example.com:9200'\n"
            "bookshelf['enable'] = false\n"
        ),
        "dark_launch": json.dumps({"add_type_and_bag_to_items": True, "reporting": True, "actions": True,
                                   "503_mode": False, "couchdb_containers": False}, indent=2) + "\n",
        "pivotal_pem": pkcs1_pem(pivotal_key),
        "pivotal_rb": (
            "node_name \"pivotal\"\n"
            "chef_server_url \"https://127.0.0.1\"\n"
            "chef_server_root \"https://127.0.0.1\"\n"
            "ssl_verify_mode :verify_none\n"
            f"client_key \"{etc}/pivotal.pem\"\n"
        ),
        "private_chef_sh": (
            "export PATH=\"/opt/" + ("cinc-project" if flavor == "cinc" else "opscode") + "/embedded/bin:$PATH\"\n"
            "export ERL_LIBS=\"\"\n"
        ),
        "secrets": secrets_text(doc),
        "webui_priv": pkcs1_pem(webui_key),
        "webui_pub": public_pem(webui_key),
        "bootstrapped": "bootstrapped at 2026-11-01 10:00:00 +0000\n",
        "migration_level": json.dumps({"major": 1, "minor": minor}, separators=(",", ":")),
    }
    for role, text in files.items():
        write(root / p[role], text, MODES[role])
    return Frontend(root=root, flavor=flavor, pivotal_key=pivotal_key, webui_key=webui_key, credentials=creds,
                    secrets_doc=doc, paths=p)


def tree(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every regular file under `root`: relative path -> (mode, bytes)."""
    out = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = (os.stat(p).st_mode & 0o7777, p.read_bytes())
    return out


def tar_members(bundle: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(bundle, "r:gz") as t:
        return {m.name.rstrip("/"): m for m in t.getmembers()}


def tar_read(bundle: Path, name: str) -> bytes:
    with tarfile.open(bundle, "r:gz") as t:
        return t.extractfile(name).read()


def rewrite_bundle(src: Path, dst: Path, change) -> None:
    """Copy a plain bundle member by member (ustar, as chpki writes it), calling
    change(info, data) -> data for each file member."""
    import io

    with tarfile.open(src, "r:gz") as t, tarfile.open(dst, "w:gz", format=tarfile.USTAR_FORMAT) as out:
        for m in t.getmembers():
            if m.isfile():
                data = change(m, t.extractfile(m).read())
                m.size = len(data)
                out.addfile(m, io.BytesIO(data))
            else:
                out.addfile(m)


# Fixtures shared by the frontend test files (imported there by name).

@pytest.fixture(scope="session")
def keys():
    """A few RSA-2048 keys made once: frontends of one test share keys, as copies do."""
    return [rsa_key() for _ in range(4)]


@pytest.fixture
def frontend(tmp_path, keys):
    """frontend(name="A", flavor="cinc", **kw) -> Frontend under tmp_path/name."""

    def make(name: str = "A", flavor: str = "cinc", **kw):
        kw.setdefault("pivotal_key", keys[0])
        kw.setdefault("webui_key", keys[1])
        return make_frontend(tmp_path / name, flavor, **kw)

    return make
