"""`chpki nodes-dn`: SPEC §1 and §3, checked against the JVM.

The OpenSearch security plugin does not read `nodes_dn` as a DN: it computes a principal string
from the peer certificate (java/OpenSearchPrincipal.java does exactly what the plugin's
DefaultPrincipalExtractor does, and its header records how the JDK behaves) and matches it against
each `nodes_dn` entry as a case-insensitive glob, the entry taken character for character. So every
entry chpki prints must be exactly the string Java computes from the certificate chpki issued, and
the admin certificate's string must be the `admin_dn` entry and match no `nodes_dn` entry.

Needs `javac` and `java` (JDK 17 on CI); skipped with a reason where they are missing.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

import conftest
import helpers as h

HERE = Path(__file__).resolve().parent
JAVA_SOURCE = HERE / "java" / "OpenSearchPrincipal.java"
REFERENCE = conftest.REPO / "examples" / "reference-000.yml"

NODES_KEY = "plugins.security.nodes_dn"
ADMIN_KEY = "plugins.security.authcz.admin_dn"

REFERENCE_BACKEND_1 = "CN=backend-1.example.com,OU=MyOrganizationalUnit,O=MyCompany,L=MyCity,ST=MyState,C=US"
REFERENCE_ADMIN = "CN=admin,OU=MyOrganizationalUnit,O=MyCompany,L=MyCity,ST=MyState,C=US"


# --------------------------------------------------------------------------------------------
# the Java side


@pytest.fixture(scope="session")
def java_principal(tmp_path_factory):
    """java_principal([pem paths]) -> [principal per certificate, in order], computed by the JVM."""
    javac, java = shutil.which("javac"), shutil.which("java")
    if not javac or not java:
        pytest.skip("javac/java not on PATH: install a JDK (Debian: openjdk-17-jdk-headless) to run the "
                    "OpenSearch principal checks")
    out = tmp_path_factory.mktemp("java-classes")
    res = subprocess.run([javac, "-d", str(out), str(JAVA_SOURCE)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, "javac failed" + h.describe(res)

    def principals(paths) -> list[str]:
        res = subprocess.run(
            [java, "-cp", str(out), "OpenSearchPrincipal", *[str(p) for p in paths]],
            capture_output=True, timeout=300, stdin=subprocess.DEVNULL,
            env=conftest.clean_env({"LANG": "C.UTF-8", "JAVA_TOOL_OPTIONS": None}),
        )
        assert res.returncode == 0, f"java OpenSearchPrincipal failed: {res.stderr.decode(errors='replace')}"
        return res.stdout.decode("utf-8").splitlines()

    return principals


# --------------------------------------------------------------------------------------------
# chpki's side


def parse_nodes_dn_yaml(text: str) -> dict:
    """The YAML chpki prints, read by PyYAML (as OpenSearch's SnakeYAML would read it), or, where
    PyYAML is missing, by a strict reader of exactly this shape: `key:` lines, each followed by
    `  - <scalar>` items, scalars plain, 'single' or "double" quoted with YAML's escapes."""
    try:
        import yaml
    except ImportError:
        return _parse_list_yaml(text)
    data = yaml.safe_load(text)
    assert isinstance(data, dict), f"nodes-dn output is not a YAML mapping:\n{text}"
    return data


_YAML_ESCAPES = {"0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v", "f": "\f",
                 "r": "\r", "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\", "N": "\x85",
                 "_": "\xa0", "L": "\u2028", "P": "\u2029"}


def _yaml_scalar(s: str) -> str:
    if s.startswith('"'):
        assert len(s) >= 2 and s.endswith('"'), f"unterminated double-quoted scalar: {s}"
        body, out, i = s[1:-1], [], 0
        while i < len(body):
            c = body[i]
            if c == '"':
                raise AssertionError(f"unescaped '\"' inside a double-quoted scalar: {s}")
            if c != "\\":
                out.append(c)
                i += 1
                continue
            e = body[i + 1] if i + 1 < len(body) else ""
            if e in _YAML_ESCAPES:
                out.append(_YAML_ESCAPES[e])
                i += 2
            elif e in "xuU" and e:
                n = {"x": 2, "u": 4, "U": 8}[e]
                digits = body[i + 2:i + 2 + n]
                assert re.fullmatch(f"[0-9A-Fa-f]{{{n}}}", digits), f"bad \\{e} escape in {s}"
                out.append(chr(int(digits, 16)))
                i += 2 + n
            else:
                raise AssertionError(f"invalid YAML escape '\\{e}' in a double-quoted scalar (SnakeYAML "
                                     f"rejects it): {s}")
        return "".join(out)
    if s.startswith("'"):
        assert len(s) >= 2 and s.endswith("'"), f"unterminated single-quoted scalar: {s}"
        body = s[1:-1]
        assert "'" not in body.replace("''", ""), f"unescaped quote in a single-quoted scalar: {s}"
        return body.replace("''", "'")
    assert s and s[0] not in "!&*{}[]|>%@`#,?:-'\"" and ": " not in s and " #" not in s, (
        f"this plain scalar would not read back as the same string in YAML: {s}")
    return s


def _parse_list_yaml(text: str) -> dict:
    data, key = {}, None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.]+):\s*", line)
        if m:
            key = m.group(1)
            assert key not in data, f"duplicate key {key}"
            data[key] = []
            continue
        m = re.fullmatch(r"\s+- (.*?)\s*", line)
        assert m and key is not None, f"unexpected line in nodes-dn output: {line!r}"
        data[key].append(_yaml_scalar(m.group(1)))
    return data


def nodes_dn(run, inventory: Path, *args) -> tuple[list[str], list[str]]:
    """(nodes_dn, admin_dn) as `chpki nodes-dn` prints them; the YAML and the --json forms must agree.
    `args` may add e.g. `--ca-dir DIR` (nodes-dn is computed from the inventory, but every command
    takes the global options)."""
    res = h.assert_ok(run("nodes-dn", "--inventory", inventory, *args))
    data = parse_nodes_dn_yaml(res.stdout)
    assert NODES_KEY in data and ADMIN_KEY in data, f"expected {NODES_KEY} and {ADMIN_KEY}" + h.describe(res)
    nodes, admin = data[NODES_KEY], data[ADMIN_KEY]
    assert isinstance(nodes, list) and all(isinstance(x, str) for x in nodes), h.describe(res)
    assert isinstance(admin, list) and all(isinstance(x, str) for x in admin), h.describe(res)

    res_json = h.assert_ok(run("nodes-dn", "--inventory", inventory, "--json", *args))
    try:
        js = json.loads(res_json.stdout)
    except json.JSONDecodeError as e:
        raise AssertionError(f"--json output is not JSON: {e}" + h.describe(res_json))
    assert js.get("nodes_dn") == nodes, "nodes_dn differs between the YAML and the --json output" + h.describe(res_json)
    assert js.get("admin_dn") == admin, "admin_dn differs between the YAML and the --json output" + h.describe(res_json)
    return nodes, admin


def opensearch_glob_matches(pattern: str, principal: str) -> bool:
    """OpenSearch's WildcardMatcher as used for nodes_dn: /regex/, else a glob of * and ? when it
    has one, else equality; case-insensitive (`.ignoreCase()`)."""
    if len(pattern) > 1 and pattern.startswith("/") and pattern.endswith("/"):
        return re.fullmatch(pattern[1:-1], principal, re.IGNORECASE) is not None
    if "*" in pattern or "?" in pattern:
        rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
        return re.fullmatch(rx, principal, re.IGNORECASE | re.DOTALL) is not None
    return pattern.lower() == principal.lower()


def valid_certs(ca_dir: Path, kind: str, service: str | None = None) -> list[tuple[str | None, str]]:
    """[(host, certificate PEM)] of the valid certificates of `kind` (and `service`) in ca.db."""
    con = sqlite3.connect(f"file:{ca_dir / 'ca.db'}?mode=ro", uri=True)
    try:
        sql = "SELECT host, certificate_pem FROM certificates WHERE kind = ? AND status = 'valid'"
        params: list = [kind]
        if service is not None:
            sql += " AND service = ?"
            params.append(service)
        return con.execute(sql + " ORDER BY host", params).fetchall()
    finally:
        con.close()


def principals_of(java_principal, rows, where: Path) -> dict:
    """{host or index: Java principal} for rows of (host, PEM)."""
    where.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (_, pem) in enumerate(rows):
        p = where / f"cert-{i}.pem"
        p.write_text(pem)
        paths.append(p)
    got = java_principal(paths)
    assert len(got) == len(rows), f"java printed {len(got)} principals for {len(rows)} certificates: {got}"
    return {(host if host is not None else i): pr for i, ((host, _), pr) in enumerate(zip(rows, got))}


def make_ca_and_issue(tool, base: Path, inventory: Path, passphrase_file: Path):
    """init-ca (passphrase-protected, constrained by the inventory) then `chpki issue`. Returns
    (ca_dir, None) on success, or (ca_dir, the refusing result) when init-ca or issue exits 2."""
    ca_dir = base / "ca"
    res = tool.run("init-ca", "--ca-dir", ca_dir, "--inventory", inventory, "--passphrase-file", passphrase_file)
    if res.returncode == 2:
        return ca_dir, res
    h.assert_ok(res)
    res = tool.run("issue", "--ca-dir", ca_dir, "--inventory", inventory, "--passphrase-file", passphrase_file,
                   timeout=900)
    if res.returncode == 2:
        return ca_dir, res
    h.assert_ok(res)
    return ca_dir, None


def check_against_java(run, java_principal, inventory: Path, ca_dir: Path, scratch: Path, expect_nodes: int):
    nodes, admin = nodes_dn(run, inventory, "--ca-dir", ca_dir)

    rows = valid_certs(ca_dir, "server", "opensearch")
    assert len(rows) == expect_nodes, f"expected {expect_nodes} valid opensearch server certificates in ca.db, got {len(rows)}"
    node_principals = principals_of(java_principal, rows, scratch / "nodes")
    for host, principal in node_principals.items():
        assert principal in nodes, (
            f"OpenSearch computes the principal {principal!r} for {host}, which is not one of the "
            f"nodes_dn entries chpki prints: {nodes}")
        assert any(opensearch_glob_matches(n, principal) for n in nodes)
    assert sorted(set(node_principals.values())) == sorted(set(nodes)), (
        f"nodes_dn {nodes} is not the set of the nodes' principals {sorted(node_principals.values())}")
    assert len(nodes) == len(set(nodes)), f"duplicate nodes_dn entries: {nodes}"

    admin_rows = valid_certs(ca_dir, "admin")
    assert len(admin_rows) == 1, f"expected one valid admin certificate in ca.db, got {len(admin_rows)}"
    (admin_principal,) = principals_of(java_principal, admin_rows, scratch / "admin").values()
    assert admin == [admin_principal], (
        f"admin_dn {admin} is not the admin certificate's principal as OpenSearch computes it: {admin_principal!r}")
    matching = [n for n in nodes if opensearch_glob_matches(n, admin_principal)]
    assert not matching, f"the admin principal {admin_principal!r} matches nodes_dn entries {matching}"
    return nodes, admin, node_principals, admin_principal


# --------------------------------------------------------------------------------------------
# reference 000


@pytest.fixture(scope="module")
def reference(chpki_bin, tmp_path_factory):
    """examples/reference-000.yml copied, a passphrase-protected CA made from it, `chpki issue` run."""
    base = tmp_path_factory.mktemp("nodes-dn-ref")
    work = base / "work"
    work.mkdir()
    inventory = work / "cluster.yml"
    shutil.copyfile(REFERENCE, inventory)
    pf = h.write_secret(base / "pass", h.PASSPHRASE + "\n")
    tool = conftest.Chpki(chpki_bin, work)
    ca_dir, refused = make_ca_and_issue(tool, base, inventory, pf)
    assert refused is None, "the reference inventory was refused" + h.describe(refused)
    return SimpleNamespace(base=base, work=work, inventory=inventory, ca_dir=ca_dir, tool=tool)


def test_reference_nodes_dn_are_the_principals_opensearch_computes(reference, java_principal):
    nodes, admin, node_principals, admin_principal = check_against_java(
        reference.tool.run, java_principal, reference.inventory, reference.ca_dir, reference.base / "java", 4)
    # The string of SPEC §3 and reference 000, character for character.
    assert node_principals["backend-1.example.com"] == REFERENCE_BACKEND_1
    assert sorted(nodes) == sorted(REFERENCE_BACKEND_1.replace("backend-1", f"backend-{i}") for i in range(1, 5))
    assert admin == [REFERENCE_ADMIN] and admin_principal == REFERENCE_ADMIN


def test_reference_nodes_dn_yaml_shape(reference):
    """The block pastes into opensearch.yml: the two keys, each followed by its `  - "..."` items."""
    res = h.assert_ok(reference.tool.run("nodes-dn", "--inventory", reference.inventory))
    lines = [line for line in res.stdout.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert f"{NODES_KEY}:" in lines and f"{ADMIN_KEY}:" in lines, h.describe(res)
    i, j = lines.index(f"{NODES_KEY}:"), lines.index(f"{ADMIN_KEY}:")
    assert i < j, h.describe(res)
    assert sorted(lines[i + 1:j]) == [f'  - "{REFERENCE_BACKEND_1.replace("backend-1", f"backend-{n}")}"'
                                      for n in range(1, 5)], h.describe(res)
    assert lines[j + 1:] == [f'  - "{REFERENCE_ADMIN}"'], h.describe(res)


def test_reference_nodes_dn_changes_nothing(reference):
    before = h.snapshot(reference.ca_dir)
    res = h.assert_ok(reference.tool.run("nodes-dn", "--inventory", reference.inventory, "--ca-dir", reference.ca_dir))
    assert REFERENCE_BACKEND_1 in res.stdout
    assert h.snapshot(reference.ca_dir) == before


def test_admin_certificate_is_not_a_node_certificate(reference, java_principal):
    """SPEC §3: the admin DN must not match any nodes_dn entry, and no node is the admin."""
    nodes, admin = nodes_dn(reference.tool.run, reference.inventory, "--ca-dir", reference.ca_dir)
    for a in admin:
        assert not any(opensearch_glob_matches(n, a) for n in nodes), (a, nodes)
        assert a not in nodes


# --------------------------------------------------------------------------------------------
# subjects with characters that need escaping


def special_inventory(subject: dict) -> str:
    """Two backends running OpenSearch only (EC keys, so the case runs fast), and the admin."""
    lines = ["domain: example.com", "subject:"]
    lines += [f"  {k}: {json.dumps(v, ensure_ascii=False)}" for k, v in subject.items()]
    lines += [
        "ca:",
        "  common_name: Test Root CA",
        "  key: ec-p384",
        "defaults:",
        "  key: ec-p256",
        "hosts:",
        "  - name: backend-1.example.com",
        "    ips: [10.0.0.1]",
        "    groups: [backend]",
        "  - name: backend-2.example.com",
        "    ips: [10.0.0.2]",
        "    groups: [backend]",
        "services:",
        "  opensearch:",
        "    hosts: backend",
        "    key: ec-p256",
        "    server_cert_mode: both",
        "    enable_client: false",
        "admin:",
        "  name: admin",
        "",
    ]
    return "\n".join(lines)


# (id, subject attributes, whether the inventory reader refuses it with exit 2). Pinned to what
# docs/issuance.md promises: a leading "#" is escaped (`\#`, as Java's Rdn does) and accepted; a
# leading or trailing space is refused, because Java drops it and OpenSSL keeps it.
SPECIAL_SUBJECTS = [
    ("comma-plus-semicolon-quotes",
     {"OU": 'R+D; "Ops"', "O": "Acme, Inc.", "L": "MyCity", "ST": "MyState", "C": "US"}, False),
    ("leading-hash", {"OU": "#1 Team", "O": "Acme, Inc.", "C": "US"}, False),
    ("inner-hash-equals-angle-backslash", {"OU": r"Bay#2 <a=b> x\y", "O": "Acme", "C": "US"}, False),
    ("utf8", {"OU": "Zürich Ops", "O": "Société Générale", "L": "Łódź", "C": "CH"}, False),
    ("leading-space", {"OU": " Ops", "O": "Acme", "C": "US"}, True),
    ("trailing-space", {"OU": "Ops ", "O": "Acme", "C": "US"}, True),
]


@pytest.mark.parametrize("subject,refused_by_design", [pytest.param(s, r, id=i) for i, s, r in SPECIAL_SUBJECTS])
def test_special_characters_match_java(chpki, java_principal, tmp_path, passphrase_file, subject, refused_by_design):
    inventory = tmp_path / "cluster.yml"
    inventory.write_text(special_inventory(subject))
    ca_dir, refused = make_ca_and_issue(chpki, tmp_path, inventory, passphrase_file)
    assert (refused is not None) == refused_by_design, (
        f"subject {subject}: expected {'a refusal' if refused_by_design else 'acceptance'}"
        + (h.describe(refused) if refused is not None else ""))
    if refused is not None:
        h.assert_refused(refused, "subject", error="inventory.invalid-value")
        res = chpki.run("nodes-dn", "--inventory", inventory)
        h.assert_refused(res, "subject", error="inventory.invalid-value")
        return
    nodes, admin, node_principals, admin_principal = check_against_java(
        chpki.run, java_principal, inventory, ca_dir, tmp_path / "java", 2)
    # Every attribute of the inventory is there, most specific first (encoding order C, ST, L, O, OU, CN).
    order = [t for t in ("CN", "OU", "O", "L", "ST", "C") if t == "CN" or t in subject]
    for principal in [admin_principal, *node_principals.values()]:
        assert [rdn.split("=", 1)[0] for rdn in split_rdns(principal)] == order, principal
    assert split_rdns(admin_principal)[0] == "CN=admin"


def split_rdns(principal: str) -> list[str]:
    """Split at the commas that are not escaped by a backslash."""
    out, cur, i = [], "", 0
    while i < len(principal):
        c = principal[i]
        if c == "\\" and i + 1 < len(principal):
            cur += principal[i:i + 2]
            i += 2
            continue
        if c == ",":
            out.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    return out + [cur]
