"""chpki verify --bundle: a clean bundle passes; each deliberately broken tree is reported.

Every broken artefact is made with tools chpki did not write (openssl, Python cryptography, plain
file operations), so the verifier is tested against what a real mistake looks like.
"""
from __future__ import annotations

import os
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
    h.assert_refused(verify(tool, tmp_path / "nowhere"), "nowhere", error="file.missing")


# --- snippets: what each service must never accept (SPEC §8) ----------------------------------
# Each case edits one rendered snippet as a careless or hostile hand would, with plain text
# operations; verify must report it on a line of its own naming host, file, line number and rule,
# beside (not instead of) the manifest's checksum line.

def prepend(text: str):
    return lambda old: text + old


def replace(old_text: str, new_text: str):
    def edit(old):
        assert old_text in old, f"{old_text!r} not in the rendered snippet"
        return old.replace(old_text, new_text)
    return edit


SNIPPET_CASES = {
    "pg_hba-trust": ("backend-1.example.com", "etc/patroni/pg_hba.conf", prepend("host all all 0.0.0.0/0 trust\n"), 1, "'trust'"),
    "pg_hba-md5-hostssl": ("backend-2.example.com", "etc/patroni/pg_hba.conf", prepend("hostssl all all 10.0.0.0/8 md5\n"), 1, "'md5'"),
    "pg_hba-password-mask": ("backend-1.example.com", "etc/patroni/pg_hba.conf",
                             prepend("# ok\nhostssl all all 10.0.0.0 255.0.0.0 password\n"), 2, "'password'"),
    "pg_hba-host-without-tls": ("backend-1.example.com", "etc/patroni/pg_hba.conf",
                                prepend("host all all 10.0.0.0/8 scram-sha-256\n"), 1, "without TLS"),
    "pg_hba-include": ("backend-1.example.com", "etc/patroni/pg_hba.conf", prepend("include /tmp/extra.conf\n"), 1, "include"),
    "patroni-verify-client-none": ("backend-3.example.com", "etc/patroni/tls.yml",
                                   replace("verify_client: required", "verify_client: none"), 10, "verify_client"),
    "patroni-etcd-http": ("backend-1.example.com", "etc/patroni/tls.yml", replace("protocol: https", "protocol: http"), 16, "etcd3.protocol"),
    "patroni-sslmode-require": ("backend-1.example.com", "etc/patroni/tls.yml",
                                replace("sslmode: verify-full", "sslmode: require"), 32, "sslmode"),
    "etcd-no-client-cert-auth": ("backend-1.example.com", "etc/etcd/tls.env",
                                 replace("ETCD_CLIENT_CERT_AUTH=true", "ETCD_CLIENT_CERT_AUTH=false"), 7, "ETCD_CLIENT_CERT_AUTH"),
    "etcd-peer-cert-auth-removed": ("backend-2.example.com", "etc/etcd/tls.env",
                                    replace("ETCD_PEER_CLIENT_CERT_AUTH=true\n", ""), None, "ETCD_PEER_CLIENT_CERT_AUTH"),
    "etcd-plain-http": ("backend-1.example.com", "etc/etcd/tls.env",
                        replace("ETCD_ADVERTISE_CLIENT_URLS=https://", "ETCD_ADVERTISE_CLIENT_URLS=http://"), 15, "http://"),
    "etcd-shell-code": ("backend-1.example.com", "etc/etcd/tls.env", prepend("touch /tmp/owned\n"), 1, "shell"),
    "opensearch-demo-certificates": ("backend-4.example.com", "etc/opensearch/opensearch-security.yml",
                                     prepend("plugins.security.allow_unsafe_democertificates: true\n"), 1, "democertificates"),
    "opensearch-nested-http-off": ("backend-1.example.com", "etc/opensearch/opensearch-security.yml",
                                   replace("plugins.security.ssl.http.enabled: true", "plugins.security.ssl.http.enabled: false"),
                                   10, "ssl.http.enabled"),
    "opensearch-tls10": ("backend-1.example.com", "etc/opensearch/opensearch-security.yml",
                         replace('  - "TLSv1.2"\n  - "TLSv1.3"\nplugins.security.ssl.http.enabled',
                                 '  - "TLSv1"\n  - "TLSv1.2"\nplugins.security.ssl.http.enabled'), 8, "TLSv1"),
    "haproxy-ssl-min-ver": ("haproxy-1.example.com", "etc/haproxy/chpki-tls.cfg",
                            replace(".pem\n", ".pem ssl-min-ver TLSv1.0\n"), 6, "ssl-min-ver"),
    "haproxy-plain-bind": ("haproxy-2.example.com", "etc/haproxy/chpki-tls.cfg", lambda old: old + "    bind 10.0.0.100:80\n", 9, "without 'ssl'"),
    "nginx-ruby-code": ("frontend-1.example.com", "etc/cinc-project/cinc-server.rb.tls",
                        lambda old: old + "system('touch /tmp/owned')\n", 4, "Ruby"),
    "nginx-old-protocols": ("frontend-2.example.com", "etc/cinc-project/cinc-server.rb.tls",
                            lambda old: old + "nginx['ssl_protocols'] = 'TLSv1 TLSv1.2'\n", 4, "TLSv1"),
    "minio-plain-http": ("backend-1.example.com", "etc/default/minio.tls", replace('MINIO_VOLUMES="https://', 'MINIO_VOLUMES="http://'),
                         3, "http://"),
}


@pytest.mark.parametrize("case", sorted(SNIPPET_CASES))
def test_snippet_a_service_must_never_accept(bundle, tmp_path, case):
    tool, _, _ = bundle
    host, path, edit, line, rule = SNIPPET_CASES[case]
    tree = broken_copy(bundle, tmp_path)
    snippet = tree / host / path
    snippet.write_text(edit(snippet.read_text()))
    res = verify(tool, tree)
    where = f"{host}/{path}" + (f":{line}:" if line else ":")
    findings = assert_reported(res, where, rule)
    assert all(line.startswith(where) for line in findings), findings
    # The checksum line is separate: the rule is not folded into "content differs".
    assert_reported(res, f"{host}/{path}: content differs from MANIFEST.json (sha256)")
    assert not any("content differs" in f for f in findings)


def test_hand_edited_trust_line_is_its_own_violation(bundle, tmp_path):
    """The issue's case: a trust line added to a bundled pg_hba.conf by hand."""
    tool, _, _ = bundle
    tree = broken_copy(bundle, tmp_path)
    hba = tree / "backend-3.example.com/etc/patroni/pg_hba.conf"
    lines = hba.read_text().splitlines(keepends=True)
    lines.insert(6, "host    all          all   0.0.0.0/0  trust\n")
    hba.write_text("".join(lines))
    res = verify(tool, tree)
    violations = [line for line in res.stdout.splitlines() if line.strip() and not line.startswith("ok")]
    assert sorted(violations) == sorted([
        "backend-3.example.com/etc/patroni/pg_hba.conf: content differs from MANIFEST.json (sha256)",
        "backend-3.example.com/etc/patroni/pg_hba.conf:7: 'trust' authentication for the network address 0.0.0.0/0: "
        "PostgreSQL must never accept it from the network (chpki's lines use hostssl ... cert)",
    ]), res.stdout


def test_local_trust_and_comments_are_not_network_lines(bundle, tmp_path):
    """`local ... trust` is not a network address, and a commented-out trust line is no line."""
    tool, _, _ = bundle
    tree = broken_copy(bundle, tmp_path)
    hba = tree / "backend-1.example.com/etc/patroni/pg_hba.conf"
    hba.write_text("local all all trust\n# host all all 0.0.0.0/0 trust\n" + hba.read_text())
    res = verify(tool, tree)
    assert [line for line in res.stdout.splitlines() if "pg_hba" in line] == [
        "backend-1.example.com/etc/patroni/pg_hba.conf: content differs from MANIFEST.json (sha256)"], res.stdout


# --- bounded reads -------------------------------------------------------------------------------

@pytest.mark.parametrize("installed", [False, True])
def test_3gib_sparse_key_is_one_line_not_a_crash(bundle, tmp_path, installed):
    """A service user who owns its key could make it 3 GiB (sparse): verify names it, once."""
    tool, _, _ = bundle
    tree = broken_copy(bundle, tmp_path)
    host = tree / "backend-1.example.com"
    key = host / "etc/etcd/pki/server-key.pem"
    os.truncate(key, 3 << 30)
    res = tool.run("verify", "--bundle", host, *(["--installed"] if installed else []))
    assert res.returncode == 1, h.describe(res)
    assert "Fatal error" not in res.stderr and "allocate" not in res.stderr
    mentions = [line for line in res.stdout.splitlines() if "etc/etcd/pki/server-key.pem" in line]
    assert len(mentions) == 1, res.stdout
    assert mentions[0].endswith("etc/etcd/pki/server-key.pem: not read: 3 GiB, more than the 16 MiB chpki reads of such a file"), mentions
