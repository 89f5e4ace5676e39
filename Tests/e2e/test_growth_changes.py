"""Growth of a running cluster (SPEC §7 Growth, issue 18 "Membership done as each server needs it").

- docs/growth.md's table "What changes on which hosts" is checked against a real bundle diff: a
  cluster is issued, bundled and recorded (`<ca-dir>/installed/<fqdn>.json`, the manifests the hosts
  installed), then for each row group (a backend, a frontend, an etcd member, a MinIO pool) the
  inventory grows, `issue` and `bundle` run again into the same `--out`, and every existing host's
  changed files must be exactly what the table says.
- etcd: a joiner gets `existing` and the members plus itself, members keep their bootstrap bytes,
  `next:` prints `member add` with the joiner's exact peer URL and `member remove` for a leaver; and
  a real 3-member etcd (client and peer certificate auth) takes a 4th member from the bundle.
- MinIO pools: a server joining a running pool, a pool too small or not one number range is
  refused (exit 2, file, field, reason); pools become one `{x...y}` expansion each.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path
from types import SimpleNamespace

import pytest

import helpers as h
from conftest import Chpki
from test_bundle_servers import (Server, etcd_env, etcd_settings, etcdctl, free_port, inventory_model, need,
                                 parse_env_file, wait_until)

DOC = Path(__file__).resolve().parents[2] / "docs" / "growth.md"
MANIFEST = "var/lib/chpki/MANIFEST.json"

BASE = """\
domain: example.com
subject: {OU: Ops, O: MyCompany, C: US}
ca: {common_name: Growth Root CA, key: ec-p384, validity: 10y}
defaults: {key: ec-p256, validity: 397d, renew_before: 30d}
hosts:
  - {name: backend-1.example.com, ips: [10.0.0.1], groups: [backend, etcd, storage]}
  - {name: backend-2.example.com, ips: [10.0.0.2], groups: [backend, etcd, storage]}
  - {name: backend-3.example.com, ips: [10.0.0.3], groups: [backend, etcd, storage]}
  - {name: backend-4.example.com, ips: [10.0.0.4], groups: [backend, storage]}
  - {name: frontend-1.example.com, ips: [10.0.0.11], groups: [frontend]}
  - {name: frontend-2.example.com, ips: [10.0.0.12], groups: [frontend]}
  - {name: haproxy-1.example.com, ips: [10.0.0.21], groups: [balancer]}
#ADD
vips:
  - {name: cinc-opensearch-cluster, ips: [10.0.0.100]}
  - {name: cinc-server-cluster, ips: [10.0.0.101]}
services:
  opensearch: {hosts: backend, key: rsa-2048, server_cert_mode: both, enable_client: false, extra_san: [cinc-opensearch-cluster]}
  patroni: {hosts: backend}
  etcd: {hosts: etcd, server_cert_mode: both}
  minio: {hosts: storage, pools: [[backend-1, backend-2, backend-3, backend-4]#POOL]}
  nginx: {hosts: frontend, extra_san: [cinc-server-cluster]}
  haproxy: {hosts: balancer}
admin: {name: admin}
"""

# The table's "added" column -> (host lines, a pool to append): the doc's own examples.
SCENARIOS = {
    "a backend": ("  - {name: backend-5.example.com, ips: [10.0.0.5], groups: [backend]}", ""),
    "a frontend": ("  - {name: frontend-3.example.com, ips: [10.0.0.13], groups: [frontend]}", ""),
    "an etcd member": ("  - {name: etcd-5.example.com, ips: [10.0.0.5], groups: [etcd]}", ""),
    "a MinIO pool": ("\n".join(f"  - {{name: storage-{i}.example.com, ips: [10.0.1.{i}], groups: [storage]}}" for i in range(1, 5)),
                     ", [storage-1, storage-2, storage-3, storage-4]"),
}

# "every X host" in the table -> the service X
HOST_CLASSES = {"every patroni host": "patroni", "every minio host": "minio", "every etcd host": "etcd",
                "every opensearch host": "opensearch", "every nginx host": "nginx", "every haproxy host": "haproxy"}


def ok(res):
    return h.assert_ok(res)


def inventory(add: str = "", pool: str = "") -> str:
    return BASE.replace("#ADD", add).replace("#POOL", pool)


def tree_files(tree: Path) -> dict[str, bytes]:
    return {str(p.relative_to(tree)): p.read_bytes() for p in tree.rglob("*") if p.is_file()}


def record_installed(work: Path, out: Path):
    """What the rollout records after installing every host: its MANIFEST.json as <ca-dir>/installed/<fqdn>.json."""
    state = work / "ca" / "installed"
    state.mkdir(exist_ok=True)
    for tree in out.iterdir():
        if tree.is_dir():
            shutil.copyfile(tree / MANIFEST, state / f"{tree.name}.json")


@pytest.fixture(scope="module")
def base(chpki_bin, tmp_path_factory):
    """BASE issued, bundled and recorded as installed on every host."""
    work = tmp_path_factory.mktemp("growth-changes") / "base"
    work.mkdir()
    tool = Chpki(chpki_bin, work)
    h.write_secret(work / "pass", h.PASSPHRASE + "\n")
    (work / "cluster.yml").write_text(inventory())
    ok(tool.run("init-ca", "--passphrase-file", "pass"))
    ok(tool.run("issue", "--passphrase-file", "pass"))
    ok(tool.run("bundle", "--out", "bundles", "--passphrase-file", "pass"))
    record_installed(work, work / "bundles")
    return SimpleNamespace(work=work, chpki_bin=chpki_bin)


def grow(base, name: str, text: str):
    """A copy of the base work directory (CA, records, bundles), the inventory replaced, issue and bundle run."""
    work = base.work.parent / re.sub(r"\W+", "-", name)
    shutil.copytree(base.work, work, symlinks=True)
    tool = Chpki(base.chpki_bin, work)
    (work / "cluster.yml").write_text(text)
    ok(tool.run("issue", "--passphrase-file", "pass"))
    res = tool.run("bundle", "--out", "bundles", "--passphrase-file", "pass")
    return work, tool, res


def services_of(tree: Path) -> set[str]:
    return set(json.loads((tree / MANIFEST).read_text())["services"])


def doc_table() -> dict[str, list[tuple[str, list[str]]]]:
    """{added: [(hosts, [files])]} from docs/growth.md's checked table."""
    text = DOC.read_text()
    m = re.search(r"<!-- growth-changes: begin.*?-->\n(.*?)<!-- growth-changes: end -->", text, re.S)
    assert m, "docs/growth.md has no growth-changes table"
    table: dict[str, list[tuple[str, list[str]]]] = {}
    current = None
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[0] == "added" or set(cells[0]) <= {"-"} and set(cells[1]) <= {"-"}:
            continue
        if cells[0]:
            current = re.sub(r"\s*\(.*", "", cells[0])
            table[current] = []
        files = re.findall(r"`([^`]+)`", cells[2])
        table[current].append((cells[1].lower(), files if files else [cells[2].lower()]))
    return table


def test_doc_table_names_every_scenario():
    assert sorted(doc_table()) == sorted(SCENARIOS), f"docs/growth.md's table rows: {sorted(doc_table())}"


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_growth_changes_exactly_what_docs_growth_lists(base, scenario):
    add, pool = SCENARIOS[scenario]
    work, _, res = grow(base, scenario, inventory(add, pool))
    ok(res)
    before, after = base.work / "bundles", work / "bundles"
    rows = doc_table()[scenario]
    new_hosts = sorted(t.name for t in after.iterdir() if t.is_dir() and not (before / t.name).exists())
    assert new_hosts, f"{scenario}: no new host tree"
    assert any(hosts.startswith("the new host") for hosts, _ in rows), rows
    problems = []
    for tree in sorted(t for t in after.iterdir() if t.is_dir() and t.name not in new_hosts):
        old, new = tree_files(before / tree.name), tree_files(tree)
        changed = {p for p in set(old) | set(new) if old.get(p) != new.get(p)}
        services = services_of(tree)
        expected: set[str] = set()
        for hosts, files in rows:
            service = HOST_CLASSES.get(hosts)
            if service in services:
                expected |= set(files)
        if expected:
            expected.add(MANIFEST)
        if changed != expected:
            problems.append(f"{tree.name} ({', '.join(sorted(services))}): changed {sorted(changed)}, "
                            f"docs/growth.md says {sorted(expected)}")
    assert not problems, f"{scenario}:\n" + "\n".join(problems)


def test_etcd_joiner_gets_existing_and_members_keep_their_bytes(base):
    work, _, res = grow(base, "etcd-join", inventory(SCENARIOS["an etcd member"][0]))
    ok(res)
    members = ["backend-1.example.com", "backend-2.example.com", "backend-3.example.com"]
    for member in members:
        for rel in ("etc/etcd/bootstrap.env", "etc/etcd/tls.env"):
            assert (work / "bundles" / member / rel).read_bytes() == (base.work / "bundles" / member / rel).read_bytes(), f"{member}:{rel} changed"
    joiner = parse_env_file(work / "bundles/etcd-5.example.com/etc/etcd/bootstrap.env")
    assert joiner["ETCD_INITIAL_CLUSTER_STATE"] == "existing", joiner
    listed = dict(item.split("=", 1) for item in joiner["ETCD_INITIAL_CLUSTER"].split(","))
    assert listed == {**{m: f"https://10.0.0.{m[8]}:2380" for m in members}, "etcd-5.example.com": "https://10.0.0.5:2380"}, listed
    # the member's own files keep saying 'new': bootstrap.env is the one it started with
    assert parse_env_file(work / "bundles/backend-1.example.com/etc/etcd/bootstrap.env")["ETCD_INITIAL_CLUSTER_STATE"] == "new"
    manifest = json.loads((work / "bundles/etcd-5.example.com" / MANIFEST).read_text())
    assert any(f["path"] == "etc/etcd/bootstrap.env" for f in manifest["files"])
    # next: member add on a member, with the joiner's exact peer URL, after verify
    lines = res.stdout.splitlines()
    add = [line for line in lines if " member add " in line]
    assert len(add) == 1, res.stdout
    assert "member add etcd-5.example.com --peer-urls=https://10.0.0.5:2380" in add[0], add[0]
    assert "--endpoints https://10.0.0.1:2379,https://10.0.0.2:2379,https://10.0.0.3:2379" in add[0], add[0]
    assert "--cert /etc/etcd/pki/client.pem --key /etc/etcd/pki/client-key.pem" in add[0], add[0]


def test_etcd_joiners_in_one_run_each_list_the_ones_before(base):
    hosts = "\n".join(f"  - {{name: etcd-{i}.example.com, ips: [10.0.0.{i}], groups: [etcd]}}" for i in (5, 6))
    work, _, res = grow(base, "etcd-two", inventory(hosts))
    ok(res)
    first = parse_env_file(work / "bundles/etcd-5.example.com/etc/etcd/bootstrap.env")["ETCD_INITIAL_CLUSTER"]
    second = parse_env_file(work / "bundles/etcd-6.example.com/etc/etcd/bootstrap.env")["ETCD_INITIAL_CLUSTER"]
    assert "etcd-5" in first and "etcd-6" not in first, first
    assert "etcd-5" in second and "etcd-6" in second, second
    adds = [line for line in res.stdout.splitlines() if " member add " in line]
    assert [re.search(r"member add (\S+)", a).group(1) for a in adds] == ["etcd-5.example.com", "etcd-6.example.com"], res.stdout


def test_etcd_leaver_gets_member_remove_before_the_joiners(base):
    # backend-3 leaves etcd, etcd-5 joins: remove first, then add
    text = inventory(SCENARIOS["an etcd member"][0]).replace(
        "backend-3.example.com, ips: [10.0.0.3], groups: [backend, etcd, storage]",
        "backend-3.example.com, ips: [10.0.0.3], groups: [backend, storage]")
    work, _, res = grow(base, "etcd-replace", text)
    ok(res)
    lines = [line for line in res.stdout.splitlines() if "etcdctl" in line]
    assert len(lines) == 2 and " member remove " in lines[0] and " member add " in lines[1], res.stdout
    assert '$3 == "backend-3.example.com"' in lines[0], lines[0]
    # the joiner lists the members that stay: backend-3 is removed (first step) before it starts
    joiner = parse_env_file(work / "bundles/etcd-5.example.com/etc/etcd/bootstrap.env")["ETCD_INITIAL_CLUSTER"]
    assert "backend-3" not in joiner and "backend-1" in joiner and "etcd-5" in joiner, joiner


def test_replacing_every_etcd_member_at_once_is_refused(base):
    # etcd moves from backend-1..3 to three new hosts in one change: they would bootstrap an empty cluster
    text = inventory("\n".join(f"  - {{name: etcd-{i}.example.com, ips: [10.0.0.{i}], groups: [etcd]}}" for i in (5, 6, 7)))
    text = text.replace("groups: [backend, etcd, storage]", "groups: [backend, storage]")
    work = base.work.parent / "etcd-all-replaced"
    shutil.copytree(base.work, work, symlinks=True)
    tool = Chpki(base.chpki_bin, work)
    (work / "cluster.yml").write_text(text)
    ok(tool.run("issue", "--passphrase-file", "pass"))
    before = tree_files(work / "bundles")
    line = h.assert_refused(tool.run("bundle", "--out", "bundles", "--passphrase-file", "pass"),
                            "cluster.yml", "services.etcd.hosts", "backend-1.example.com", "empty cluster", error="inventory.conflict")
    assert "installed" in line, line
    assert tree_files(work / "bundles") == before, "a refused bundle changed the bundle directory"
    # keeping one member: the others are replaced around it
    kept = text.replace("backend-1.example.com, ips: [10.0.0.1], groups: [backend, storage]",
                        "backend-1.example.com, ips: [10.0.0.1], groups: [backend, etcd, storage]")
    (work / "cluster.yml").write_text(kept)
    ok(tool.run("issue", "--passphrase-file", "pass"))
    res = ok(tool.run("bundle", "--out", "bundles", "--passphrase-file", "pass"))
    assert sum(" member add " in line for line in res.stdout.splitlines()) == 3, res.stdout
    assert sum(" member remove " in line for line in res.stdout.splitlines()) == 2, res.stdout


def test_new_cluster_without_records_bootstraps_as_before(tmp_path, chpki_bin):
    tool = Chpki(chpki_bin, tmp_path)
    h.write_secret(tmp_path / "pass", h.PASSPHRASE + "\n")
    (tmp_path / "cluster.yml").write_text(inventory(SCENARIOS["an etcd member"][0]))
    ok(tool.run("init-ca", "--passphrase-file", "pass"))
    ok(tool.run("issue", "--passphrase-file", "pass"))
    res = ok(tool.run("bundle", "--out", "bundles", "--passphrase-file", "pass"))
    assert "member add" not in res.stdout
    envs = [parse_env_file(tmp_path / f"bundles/{n}/etc/etcd/bootstrap.env")
            for n in ("backend-1.example.com", "etcd-5.example.com")]
    assert envs[0] == envs[1] and envs[0]["ETCD_INITIAL_CLUSTER_STATE"] == "new", envs
    assert envs[0]["ETCD_INITIAL_CLUSTER"].count("=https://") == 4
    assert envs[0]["ETCD_INITIAL_CLUSTER_TOKEN"] == "chpki-example.com"


# ---------------------------------------------------------------------------------------------
# MinIO pools


def test_minio_pools_are_one_expansion_each(base):
    add, pool = SCENARIOS["a MinIO pool"]
    work, _, res = grow(base, "pool-volumes", inventory(add, pool))
    ok(res)
    assert "restart MinIO on all of them at once" in res.stdout and "all 8 MinIO servers" in res.stdout, res.stdout
    for host in ("backend-1.example.com", "storage-3.example.com"):
        env = parse_env_file(work / f"bundles/{host}/etc/default/minio.tls")
        assert env["MINIO_VOLUMES"] == ("https://backend-{1...4}.example.com:9900/data/minio "
                                        "https://storage-{1...4}.example.com:9900/data/minio"), env
    # the existing servers keep their certificate, key and root in CAs/
    for rel in ("home/minio-user/.minio/certs/public.crt", "home/minio-user/.minio/certs/private.key",
                "home/minio-user/.minio/certs/CAs/root-ca.crt"):
        assert (work / "bundles/backend-2.example.com" / rel).read_bytes() == (base.work / "bundles/backend-2.example.com" / rel).read_bytes(), rel


def test_inventory_without_pools_keeps_the_server_list(base):
    env = parse_env_file(base.work / "bundles/backend-1.example.com/etc/default/minio.tls")
    assert env["MINIO_VOLUMES"] == "https://backend-{1...4}.example.com:9900/data/minio", env
    plain = inventory().replace(", pools: [[backend-1, backend-2, backend-3, backend-4]]", "")
    assert "pools" not in plain
    work, _, res = grow(base, "no-pools", plain)
    ok(res)
    env = parse_env_file(work / "bundles/backend-1.example.com/etc/default/minio.tls")
    assert env["MINIO_VOLUMES"] == " ".join(f"https://backend-{i}.example.com:9900/data/minio" for i in range(1, 5)), env


def test_a_server_joining_a_running_pool_is_refused(base):
    # without pools: backend-5 would be a fifth server of the one running pool
    plain = inventory("  - {name: backend-5.example.com, ips: [10.0.0.5], groups: [storage]}").replace(
        ", pools: [[backend-1, backend-2, backend-3, backend-4]]", "")
    work = base.work.parent / "pool-join"
    shutil.copytree(base.work, work, symlinks=True)
    tool = Chpki(base.chpki_bin, work)
    (work / "cluster.yml").write_text(plain)
    ok(tool.run("issue", "--passphrase-file", "pass"))
    before = tree_files(work / "bundles")
    res = tool.run("bundle", "--out", "bundles", "--passphrase-file", "pass")
    line = h.assert_refused(res, "cluster.yml", "services.minio.hosts", "backend-5.example.com", "running pool", "new pool of at least 4",
                            error="inventory.conflict")
    assert "installed" in line
    assert tree_files(work / "bundles") == before, "a refused bundle changed the bundle directory"
    # with pools: the same server put into the running pool
    (work / "cluster.yml").write_text(inventory("  - {name: backend-5.example.com, ips: [10.0.0.5], groups: [storage]}").replace(
        "[[backend-1, backend-2, backend-3, backend-4]]", "[[backend-1, backend-2, backend-3, backend-4, backend-5]]"))
    h.assert_refused(tool.run("bundle", "--out", "bundles", "--passphrase-file", "pass"),
                     "services.minio.pools[0]", "backend-5.example.com would join the running pool", error="inventory.conflict")


@pytest.mark.parametrize("pools, field, why", [
    ("[[backend-1, backend-2, backend-3, backend-4], [storage-1]]", "services.minio.pools[1]", "a new pool needs at least 4"),
    ("[[backend-1, backend-2, backend-3, backend-4], [storage-1, storage-2, storage-3]]", "services.minio.pools[1]", "a new pool needs at least 4"),
    ("[[backend-1, backend-2, backend-3, backend-4], [storage-1, storage-3, storage-2, storage-4]]", "services.minio.pools[1]", "one {x...y} range"),
    ("[[backend-1, backend-2, backend-3, backend-4]]", "services.minio.pools", "storage-1.example.com runs minio but is in no pool"),
    ("[[backend-1, backend-2, backend-3, backend-4], [storage-1, storage-2, storage-3, storage-4, backend-4]]", "services.minio.pools[1][4]", "already in pools[0]"),
    ("[[backend-1, backend-2, backend-3, backend-4], [storage-1, storage-2, storage-3, storage-4, frontend-1]]", "services.minio.pools[1][4]", "not a host of the minio service"),
])
def test_bad_pools_are_refused_with_file_field_and_reason(tmp_path, chpki_bin, pools, field, why):
    add = SCENARIOS["a MinIO pool"][0]
    text = inventory(add).replace("[[backend-1, backend-2, backend-3, backend-4]]", pools)
    (tmp_path / "cluster.yml").write_text(text)
    tool = Chpki(chpki_bin, tmp_path)
    res = tool.run("nodes-dn")  # any command that reads the inventory
    h.assert_refused(res, "cluster.yml", field, why, error="inventory.invalid-value")


def test_pools_only_on_minio(tmp_path, chpki_bin):
    (tmp_path / "cluster.yml").write_text(inventory().replace("etcd: {hosts: etcd,", "etcd: {hosts: etcd, pools: [[backend-1, backend-2]],"))
    h.assert_refused(Chpki(chpki_bin, tmp_path).run("nodes-dn"), "services.etcd.pools", "only the minio service", error="inventory.invalid-value")


# ---------------------------------------------------------------------------------------------
# OpenSearch: a node added by the naming rule is covered by the running nodes' nodes_dn


def test_nodes_dn_pattern_covers_the_new_node_and_not_the_admin(base):
    work, _, res = grow(base, "opensearch-node", inventory(SCENARIOS["a backend"][0]))
    ok(res)
    rel = "etc/opensearch/opensearch-security.yml"
    old = (base.work / "bundles/backend-1.example.com" / rel).read_text()
    assert (work / "bundles/backend-1.example.com" / rel).read_text() == old
    assert (work / "bundles/backend-5.example.com" / rel).read_text().split("plugins.security.nodes_dn:")[1] == old.split("plugins.security.nodes_dn:")[1]
    entries = re.findall(r'^  - "(.*)"$', old.split("plugins.security.nodes_dn:")[1].split("plugins.security.authcz")[0], re.M)
    assert entries == ["/CN=backend-[0-9]+\\\\.example\\\\.com,OU=Ops,O=MyCompany,C=US/"], entries
    pattern = entries[0].replace("\\\\", "\\")[1:-1]
    assert re.fullmatch(pattern, "CN=backend-5.example.com,OU=Ops,O=MyCompany,C=US", re.I)
    assert not re.fullmatch(pattern, "CN=admin,OU=Ops,O=MyCompany,C=US", re.I)
    assert not re.fullmatch(pattern, "CN=backend-5Xexample.com,OU=Ops,O=MyCompany,C=US", re.I)


def test_nodes_dn_falls_back_to_exact_entries_when_the_rule_names_a_non_node(base):
    # etcd-only host named by the OpenSearch nodes' rule: no pattern may make it a node
    work, _, res = grow(base, "opensearch-outsider", inventory("  - {name: backend-9.example.com, ips: [10.0.0.9], groups: [etcd]}"))
    ok(res)
    text = (work / "bundles/backend-1.example.com/etc/opensearch/opensearch-security.yml").read_text()
    nodes = text.split("plugins.security.nodes_dn:")[1].split("plugins.security.authcz")[0]
    assert "[0-9]+" not in nodes and nodes.count("  - ") == 4 and "backend-9" not in nodes, nodes


# ---------------------------------------------------------------------------------------------
# a real etcd cluster takes a member from the bundle

LOOPBACK = """\
domain: example.com
subject: {O: MyCompany}
hosts:
  - {name: etcd-1.example.com, ips: [127.0.0.61], groups: [etcd]}
  - {name: etcd-2.example.com, ips: [127.0.0.62], groups: [etcd]}
  - {name: etcd-3.example.com, ips: [127.0.0.63], groups: [etcd]}
#ADD
services:
  etcd: {hosts: etcd, server_cert_mode: both}
"""


def retry_unhealthy(run, timeout: float = 30):
    """`run()` again while etcd answers 'unhealthy cluster' (its reconfiguration guard), up to `timeout` s."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        res = run()
        if res.returncode == 0 or "unhealthy cluster" not in res.stderr or time.monotonic() > deadline:
            return res
        time.sleep(1)


def test_real_etcd_member_joins_from_the_bundle(chpki_bin, tmp_path):
    etcd = need("etcd", "etcd-server")
    etcdctl_bin = need("etcdctl", "etcd-client")
    tool = Chpki(chpki_bin, tmp_path)
    h.write_secret(tmp_path / "pass", h.PASSPHRASE + "\n")
    inv_path = tmp_path / "cluster.yml"
    inv_path.write_text(LOOPBACK.replace("#ADD", ""))
    ok(tool.run("init-ca", "--passphrase-file", "pass"))
    ok(tool.run("issue", "--passphrase-file", "pass"))
    ok(tool.run("bundle", "--out", "bundles", "--passphrase-file", "pass"))
    out = tmp_path / "bundles"
    ips = ["127.0.0.61", "127.0.0.62", "127.0.0.63", "127.0.0.64"]
    cport, pport = free_port(*ips), free_port(*ips)
    servers = []

    def start(fqdn: str, inv):
        tree = out / fqdn
        ip = inv.hosts[fqdn].ips[0]
        env = etcd_env(etcd_settings(tree), tree, inv, ip, cport, pport, tmp_path / f"{fqdn}.etcd")
        servers.append(Server(f"etcd {fqdn}", [etcd], tmp_path / f"{fqdn}.log", env=env, cwd=tmp_path))

    try:
        inv = inventory_model(inv_path)
        for n in (1, 2, 3):
            start(f"etcd-{n}.example.com", inv)
        pki = out / "etcd-1.example.com/etc/etcd/pki"
        c = SimpleNamespace(etcdctl=etcdctl_bin, endpoints=[f"https://{ip}:{cport}" for ip in ips[:3]], cacert=pki / "ca.pem")
        wait_until("etcd quorum", lambda: etcdctl(c, "endpoint", "health", cert=pki / "client.pem", key=pki / "client-key.pem"), servers)
        record_installed(tmp_path, out)

        inv_path.write_text(LOOPBACK.replace("#ADD", "  - {name: etcd-4.example.com, ips: [127.0.0.64], groups: [etcd]}"))
        ok(tool.run("issue", "--passphrase-file", "pass"))
        res = ok(tool.run("bundle", "--out", "bundles", "--passphrase-file", "pass"))
        add = next(line for line in res.stdout.splitlines() if " member add " in line)
        peer_url = re.search(r"--peer-urls=(\S+)", add).group(1)
        assert peer_url == "https://127.0.0.64:2380", add
        # the printed step, on the test's ports
        url = urllib.parse.urlsplit(peer_url)
        # etcd refuses reconfiguration until every member has been connected a few seconds
        # ("etcdserver: unhealthy cluster"): as an operator would, try again
        res = retry_unhealthy(lambda: etcdctl(c, "member", "add", "etcd-4.example.com", f"--peer-urls=https://{url.hostname}:{pport}",
                                              cert=pki / "client.pem", key=pki / "client-key.pem"))
        assert res.returncode == 0, h.describe(res)
        inv = inventory_model(inv_path)
        start("etcd-4.example.com", inv)
        c4 = SimpleNamespace(etcdctl=etcdctl_bin, endpoints=[f"https://127.0.0.64:{cport}"], cacert=pki / "ca.pem")
        joiner_pki = out / "etcd-4.example.com/etc/etcd/pki"
        wait_until("the 4th member", lambda: etcdctl(c4, "endpoint", "health", cert=joiner_pki / "client.pem",
                                                      key=joiner_pki / "client-key.pem"), servers)
        res = etcdctl(c, "member", "list", "-w", "json", cert=pki / "client.pem", key=pki / "client-key.pem")
        assert res.returncode == 0, h.describe(res)
        members = json.loads(res.stdout)["members"]
        assert sorted(m.get("name", "") for m in members) == [f"etcd-{n}.example.com" for n in (1, 2, 3, 4)], res.stdout
        c.endpoints.append(f"https://127.0.0.64:{cport}")
        res = etcdctl(c, "endpoint", "health", cert=pki / "client.pem", key=pki / "client-key.pem")
        assert res.returncode == 0 and (res.stdout + res.stderr).count("is healthy") == 4, h.describe(res)
        assert all(s.alive() for s in servers), "".join(s.describe() for s in servers)

        # etcd-3 leaves: the printed `member remove` (it finds the ID by name in `member list`),
        # run as printed but for the test's ports and the tree's certificate paths
        record_installed(tmp_path, out)
        inv_path.write_text(LOOPBACK.replace("#ADD", "  - {name: etcd-4.example.com, ips: [127.0.0.64], groups: [etcd]}").replace(
            "  - {name: etcd-3.example.com, ips: [127.0.0.63], groups: [etcd]}\n", ""))
        res = ok(tool.run("bundle", "--out", "bundles", "--passphrase-file", "pass"))
        remove = next(line for line in res.stdout.splitlines() if " member remove " in line)
        command = remove.split("then ", 1)[1].split("    # ")[0]
        command = command.replace(":2379", f":{cport}").replace(" /etc/etcd/pki/", f" {out}/etcd-1.example.com/etc/etcd/pki/")
        res = retry_unhealthy(lambda: subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60,
                                                     env={k: v for k, v in os.environ.items() if not k.startswith("ETCD")}))
        assert res.returncode == 0 and "removed from cluster" in res.stdout, h.describe(res)
        res = etcdctl(c, "member", "list", "-w", "json", cert=pki / "client.pem", key=pki / "client-key.pem", endpoints=c.endpoints[:1])
        assert sorted(m.get("name", "") for m in json.loads(res.stdout)["members"]) == [
            "etcd-1.example.com", "etcd-2.example.com", "etcd-4.example.com"], res.stdout
    finally:
        for s in servers:
            s.stop()


# ---------------------------------------------------------------------------------------------
# the nodes_dn pattern, checked by the JVM: the principal OpenSearch computes for the new node's
# certificate matches the running nodes' pattern in Java's regex engine; the admin's does not

JAVA_DIR = Path(__file__).resolve().parent / "java"


def test_nodes_dn_pattern_matches_in_java(base, tmp_path):
    javac, java = shutil.which("javac"), shutil.which("java")
    if not javac or not java:
        pytest.skip("javac/java not on PATH: install a JDK (scripts/test does)")
    import subprocess

    import yaml
    from conftest import clean_env
    res = subprocess.run([javac, "-d", str(tmp_path), str(JAVA_DIR / "OpenSearchPrincipal.java"), str(JAVA_DIR / "NodesDnMatch.java")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, "javac failed" + h.describe(res)
    env = clean_env({"LANG": "C.UTF-8", "JAVA_TOOL_OPTIONS": None})
    work, _, res = grow(base, "opensearch-java", inventory(SCENARIOS["a backend"][0]))
    ok(res)
    new_leaf = tmp_path / "new-node.pem"
    chain = (work / "bundles/backend-5.example.com/etc/opensearch/full-chain.crt").read_text()
    new_leaf.write_text(chain.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n")
    admin = work / "bundles/backend-1.example.com/etc/opensearch/admin.pem"
    admin_leaf = tmp_path / "admin.pem"
    admin_leaf.write_text(admin.read_text().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n")
    res = subprocess.run([java, "-cp", str(tmp_path), "OpenSearchPrincipal", str(new_leaf), str(admin_leaf)],
                         capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, h.describe(res)
    node_principal, admin_principal = res.stdout.splitlines()
    text = (base.work / "bundles/backend-1.example.com/etc/opensearch/opensearch-security.yml").read_text()
    entry = yaml.safe_load(text)["plugins.security.nodes_dn"][0]
    res = subprocess.run([java, "-cp", str(tmp_path), "NodesDnMatch", entry, node_principal, admin_principal,
                          node_principal.replace("backend-5", "backend-x")],
                         capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, h.describe(res)
    assert res.stdout.split() == ["true", "false", "false"], f"{entry!r} vs {node_principal!r}, {admin_principal!r}: {res.stdout}"
