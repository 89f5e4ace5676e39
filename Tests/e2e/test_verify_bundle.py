"""chpki verify --bundle: a clean bundle passes; each deliberately broken tree is reported.

Every broken artefact is made with tools chpki did not write (openssl, Python cryptography, plain
file operations), so the verifier is tested against what a real mistake looks like.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import helpers as h
from conftest import Chpki

REPO = Path(__file__).resolve().parents[2]
PASSPHRASE = "verify-bundle passphrase"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, chpki_bin):
    """A CA with an intermediate (so chains exist), every certificate issued, every tree laid out."""
    base = tmp_path_factory.mktemp("verify")
    tool = Chpki(chpki_bin, base)
    shutil.copy(REPO / "examples" / "reference-000.yml", base / "cluster.yml")
    pf = h.write_secret(base / "pass", PASSPHRASE)
    h.assert_ok(tool.run("init-ca", "--intermediate", "--passphrase-file", pf))
    h.assert_ok(tool.run("issue", "--passphrase-file", pf))
    h.assert_ok(tool.run("bundle", "--out", base / "out", "--passphrase-file", pf))
    return tool, base, pf


def broken_copy(bundle, tmp_path) -> Path:
    _, base, _ = bundle
    target = tmp_path / "broken"
    shutil.copytree(base / "out", target, symlinks=True)
    return target


def verify(tool, directory, env=None):
    return tool.run("verify", "--bundle", directory, env=env)


def assert_reported(res, *fragments):
    assert res.returncode == 1, "expected exit 1" + h.describe(res)
    lines = [line for line in res.stdout.splitlines() if line.strip()]
    matching = [line for line in lines if all(fragment in line for fragment in fragments)]
    assert matching, f"no violation line with {fragments}:\n" + "\n".join(lines)
    return matching


def test_clean_bundle_passes(bundle):
    tool, base, _ = bundle
    res = h.assert_ok(verify(tool, base / "out"))
    assert "8 host trees checked, no violation" in res.stdout
    # and a single host tree
    h.assert_ok(verify(tool, base / "out" / "backend-1.example.com"))


def test_pkcs1_key_for_opensearch(bundle, tmp_path):
    tool, _, _ = bundle
    tree = broken_copy(bundle, tmp_path)
    key = tree / "backend-1.example.com/etc/opensearch/private.key"
    converted = h.openssl("pkey", "-in", key, "-traditional", check=True).stdout
    assert "BEGIN RSA PRIVATE KEY" in converted
    key.write_text(converted)
    assert_reported(verify(tool, tree), "backend-1.example.com/etc/opensearch/private.key", "PKCS#1", "PKCS#8")


def test_two_block_minio_key(bundle, tmp_path):
    tool, _, _ = bundle
    tree = broken_copy(bundle, tmp_path)
    key = tree / "backend-2.example.com/home/minio-user/.minio/certs/private.key"
    params = h.openssl("ecparam", "-name", "prime256v1", check=True).stdout
    key.write_text(params + key.read_text())
    assert_reported(verify(tool, tree), "backend-2.example.com/home/minio-user/.minio/certs/private.key", "2 PEM blocks")


def test_etcd_certificate_without_client_auth(bundle, tmp_path):
    tool, base, pf = bundle
    tree = broken_copy(bundle, tmp_path)
    out = tmp_path / "oneoff"
    h.assert_ok(tool.run("issue", "server", "--service", "etcd", "--host", "backend-3.example.com", "--ip", "10.0.0.3",
                         "--mode", "server", "--out", out, "--passphrase-file", pf))
    pki = tree / "backend-3.example.com/etc/etcd/pki"
    shutil.copy(out / "etcd-backend-3.example.com.crt", pki / "server.pem")
    shutil.copy(out / "etcd-backend-3.example.com.key", pki / "server-key.pem")
    ekus = h.openssl("x509", "-in", pki / "server.pem", "-noout", "-ext", "extendedKeyUsage", check=True).stdout
    assert "TLS Web Server Authentication" in ekus and "Client" not in ekus
    assert_reported(verify(tool, tree), "backend-3.example.com/etc/etcd/pki/server.pem", "clientAuth")


def test_group_readable_postgresql_key(bundle, tmp_path):
    tool, _, _ = bundle
    tree = broken_copy(bundle, tmp_path)
    key = tree / "backend-1.example.com/etc/ssl/private.key"
    key.chmod(0o640)
    assert_reported(verify(tool, tree), "backend-1.example.com/etc/ssl/private.key", "PostgreSQL refuses")


def test_haproxy_pem_with_the_chain_first(bundle, tmp_path):
    tool, _, _ = bundle
    tree = broken_copy(bundle, tmp_path)
    pem = tree / "haproxy-1.example.com/etc/ssl/haproxy/cinc-server-cluster.example.com.pem"
    text = pem.read_text()
    whole = re.findall(r"(-----BEGIN ([A-Z ]+)-----\n.*?-----END \2-----\n)", text, re.S)
    labels = [label for _, label in whole]
    assert labels == ["CERTIFICATE", "CERTIFICATE", "PRIVATE KEY"], labels  # leaf, intermediate, key
    pem.write_text(whole[1][0] + whole[0][0] + whole[2][0])  # intermediate first
    assert_reported(verify(tool, tree), "haproxy-1.example.com/etc/ssl/haproxy/cinc-server-cluster.example.com.pem")


def test_missing_peer_san(bundle, tmp_path):
    tool, _, _ = bundle
    tree = broken_copy(bundle, tmp_path)
    cas = tree / "backend-1.example.com/home/minio-user/.minio/certs/CAs"
    shutil.copy(cas / "backend-3.crt", cas / "backend-2.crt")  # backend-2's file now holds backend-3's certificate
    assert_reported(verify(tool, tree), "CAs/backend-2.crt", "no SAN for backend-2.example.com")


def test_key_certificate_mismatch(bundle, tmp_path):
    tool, _, _ = bundle
    tree = broken_copy(bundle, tmp_path)
    key = tree / "frontend-1.example.com/etc/cinc-project/server.key"
    key.write_text(h.openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", check=True).stdout)
    assert_reported(verify(tool, tree), "frontend-1.example.com/etc/cinc-project/server.pem", "does not match its private key")


def test_expired_certificates(bundle, tmp_path):
    tool, base, _ = bundle
    res = verify(tool, base / "out", env={"CHPKI_NOW": "2029-01-01T00:00:00Z"})
    lines = assert_reported(res, "expired")
    assert any("backend-1.example.com/etc/opensearch/full-chain.crt" in line for line in lines)


def test_certificate_from_another_ca(bundle, tmp_path):
    tool, _, _ = bundle
    tree = broken_copy(bundle, tmp_path)
    nginx = tree / "frontend-2.example.com/etc/cinc-project"
    h.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=frontend-2.example.com",
              "-addext", "subjectAltName=DNS:frontend-2.example.com", "-days", "30",
              "-keyout", nginx / "server.key", "-out", nginx / "server.pem", check=True)
    assert_reported(verify(tool, tree), "frontend-2.example.com/etc/cinc-project/server.pem", "not issued by the bundle's root")


def test_file_listed_in_the_manifest_but_missing(bundle, tmp_path):
    tool, _, _ = bundle
    tree = broken_copy(bundle, tmp_path)
    (tree / "backend-4.example.com/etc/etcd/pki/ca.pem").unlink()
    assert_reported(verify(tool, tree), "backend-4.example.com/etc/etcd/pki/ca.pem", "missing")


def test_not_a_bundle(bundle, tmp_path):
    tool, _, _ = bundle
    h.assert_refused(verify(tool, tmp_path / "nowhere"), "nowhere")
