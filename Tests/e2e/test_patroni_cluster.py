"""A real Patroni 4 cluster, started only from what `chpki bundle patroni etcd --tar` lays out.

Three members on 127.0.0.11-13 (`patroni-N.chpki.test`, added to /etc/hosts for the test and
removed after, the file restored byte for byte), each with:
- its host archive extracted as root into a scratch root (`tar -xzpf`: owners by name, as on a
  real host), then `chpki verify --installed` on that root;
- etcd 3.4 (Debian) from the tree's `etc/etcd/tls.env` (client and peer certificate auth);
- Patroni (PyPI, in a virtualenv the postgres user can read) with PostgreSQL 15 (Debian), from the
  tree's `etc/patroni/tls.yml` merged as is into a config that adds only scope, name, data_dir,
  bin_dir and the socket directory; `pg_hba.conf`/`pg_ident.conf` are the bundle's.
The /etc paths of the snippets are pointed into the scratch root and the default ports replaced
by free ones; nothing else is changed.

Checked: `patroni --validate-config` accepts the merged config; a leader and two replicas that
stream from it, logged in with their own `patroni@patroni-N` certificates (pg_stat_replication
joined with pg_stat_ssl); `patronictl list` over TLS; REST `/primary` 200 on the leader and 503 on
replicas with the ctl client certificate, refused without one; a switchover; and what a member or a
client with certificates of another CA tries (replication login, REST call, etcd) is refused.
Every process is killed at the end, also on failure.
"""
from __future__ import annotations

import http.client
import json
import os
import pwd
import re
import shutil
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

import conftest
import helpers as h
from test_bundle_servers import (Server, cmd, etcd_env, etcd_settings, etcdctl, foreign_client, free_port, inventory_model, need,
                                 need_root, parse_env_file, postgres_bin, rewrite_paths, tool_env, wait_until)

VENV = Path(os.environ.get("CHPKI_PATRONI_VENV", "/opt/chpki-test-venv"))
DOMAIN = "chpki.test"
MEMBERS = [(f"patroni-{n}.{DOMAIN}", f"127.0.0.{10 + n}") for n in (1, 2, 3)]
SCOPE = "chpki-e2e"
CLUSTER_TIMEOUT = 120  # seconds for leader election, replica bootstrap, a switchover

INVENTORY = f"""\
domain: {DOMAIN}
subject: {{O: chpki test, C: US}}
ca: {{common_name: chpki Patroni Test Root CA, validity: 2y}}
defaults: {{key: ec-p256, validity: 90d, renew_before: 15d}}
hosts:
""" + "".join(f"  - {{name: {fqdn}, ips: [{ip}], groups: [db]}}\n" for fqdn, ip in MEMBERS) + """\
services:
  patroni: { hosts: db }
  etcd: { hosts: db, server_cert_mode: both }
"""


def deep_merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = value
    return base


@pytest.fixture(scope="module")
def etc_hosts():
    """The members' names in /etc/hosts for the module; the file is restored exactly afterwards."""
    need_root("editing /etc/hosts")
    path = Path("/etc/hosts")
    original = path.read_bytes()
    added = "".join(f"{ip} {fqdn} {fqdn.split('.')[0]}  # chpki e2e\n" for fqdn, ip in MEMBERS)
    try:
        path.write_bytes(original + (b"" if original.endswith(b"\n") or not original else b"\n") + added.encode())
        yield
    finally:
        path.write_bytes(original)
        assert path.read_bytes() == original


class Rest:
    """HTTPS to a member's REST API, no proxy, with (or without) a client certificate."""

    def __init__(self, cafile: Path, cert: Path | None = None, key: Path | None = None):
        self.context = ssl.create_default_context(cafile=str(cafile))
        if cert:
            self.context.load_cert_chain(str(cert), str(key))

    def get(self, ip: str, port: int, path: str) -> int:
        conn = http.client.HTTPSConnection(ip, port, context=self.context, timeout=5)
        try:
            conn.request("GET", path)
            return conn.getresponse().status
        finally:
            conn.close()


@pytest.fixture(scope="module")
def cluster(chpki_bin, etc_hosts):
    need_root("PostgreSQL and Patroni run as the postgres user")
    etcd_bin = need("etcd", "etcd-server")
    need("etcdctl", "etcd-client")
    bin_dir = Path(postgres_bin("postgres")).parent
    patroni, patronictl = VENV / "bin/patroni", VENV / "bin/patronictl"
    if not (os.access(patroni, os.X_OK) and os.access(patronictl, os.X_OK)):
        pytest.skip(f"no Patroni in {VENV}: scripts/test creates it (python3 -m venv; pip install patroni[etcd3] psycopg2-binary)")
    try:
        pg_user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres user: install the Debian package postgresql")

    # /tmp, not pytest's 0700 tmp tree: the postgres user must reach the members' files
    base = Path(tempfile.mkdtemp(prefix="chpki-e2e-patroni-", dir="/tmp"))
    base.chmod(0o755)
    servers: list[Server] = []
    try:
        work = base / "ca-work"
        work.mkdir()
        inventory = work / "cluster.yml"
        inventory.write_text(INVENTORY)
        pf = h.write_secret(work / "pass", h.PASSPHRASE + "\n")
        tool = conftest.Chpki(chpki_bin, work)
        h.assert_ok(tool.run("init-ca", "--intermediate", "--passphrase-file", pf))
        h.assert_ok(tool.run("issue", "--passphrase-file", pf))
        help_text = tool.run("bundle", "--help").stdout
        pass_args = ["--passphrase-file", pf] if "--passphrase-file" in help_text else []
        out = work / "out"
        h.assert_ok(tool.run("bundle", "patroni", "etcd", "--tar", "--out", out, *pass_args))
        inv = inventory_model(inventory)

        ips = [ip for _, ip in MEMBERS]
        cport, pport, pg_port, rest_port = (free_port(*ips) for _ in range(4))
        members = []
        for n, (fqdn, ip) in enumerate(MEMBERS, 1):
            root = base / f"root-{n}"
            root.mkdir()
            res = cmd(["tar", "-xzpf", out / f"{fqdn}.tar.gz", "-C", root])
            assert res.returncode == 0, h.describe(res)
            res = tool.run("verify", "--installed", "--bundle", root)
            assert res.returncode == 0 and "no violation" in res.stdout and not res.stderr, h.describe(res)
            home = base / f"member-{n}"
            (home / "sock").mkdir(parents=True)
            for p in (home, home / "sock"):
                os.chown(p, pg_user.pw_uid, pg_user.pw_gid)
            members.append(SimpleNamespace(n=n, fqdn=fqdn, short=fqdn.split(".")[0], ip=ip, root=root, home=home,
                                           ssl=root / "etc/ssl", config=home / "patroni.yml"))

        # etcd, one per member, from its tls.env (loopback hosts: no extra 127.0.0.1 listener)
        for m in members:
            tls_env = etcd_settings(m.root)
            assert tls_env["ETCD_LISTEN_CLIENT_URLS"] == f"https://{m.ip}:2379", tls_env["ETCD_LISTEN_CLIENT_URLS"]
            env = etcd_env(tls_env, m.root, inv, m.ip, cport, pport, base / f"etcd-{m.n}")
            servers.append(Server(f"etcd {m.fqdn}", [etcd_bin], base / f"etcd-{m.n}.log", env=env, cwd=base))
        first = members[0].root / "etc/etcd/pki"
        etcd = SimpleNamespace(etcdctl=need("etcdctl", "etcd-client"), endpoints=[f"https://{ip}:{cport}" for ip in ips],
                               cacert=first / "ca.pem")
        wait_until("etcd quorum", lambda: etcdctl(etcd, "endpoint", "health", cert=first / "client.pem",
                                                  key=first / "client-key.pem"), servers)

        # Patroni: the bundle's tls.yml as is, its paths in the scratch root, free ports
        for m in members:
            tls_text = (m.root / "etc/patroni/tls.yml").read_text()
            tls = yaml.safe_load(rewrite_paths(tls_text, m.root))
            assert tls["restapi"]["connect_address"] == f"{m.ip}:8008" and tls["postgresql"]["connect_address"] == f"{m.ip}:5432"
            for section, port in (("restapi", rest_port), ("postgresql", pg_port)):
                for key in ("listen", "connect_address"):
                    tls[section][key] = f"{m.ip}:{port}"
            tls["etcd3"]["hosts"] = tls["etcd3"]["hosts"].replace(":2379", f":{cport}")
            config = deep_merge({
                "scope": SCOPE, "name": m.fqdn,
                "log": {"level": "INFO"},
                "bootstrap": {"dcs": {"ttl": 20, "loop_wait": 2, "retry_timeout": 5,
                                      "postgresql": {"use_pg_rewind": False,
                                                     "parameters": {"max_wal_senders": 10, "wal_keep_size": "64MB"}}},
                              "initdb": [{"encoding": "UTF8"}]},
                "postgresql": {"data_dir": str(m.home / "data"), "bin_dir": str(bin_dir), "pg_ctl_timeout": 60,
                               "parameters": {"unix_socket_directories": str(m.home / "sock"), "fsync": "off",
                                              "shared_buffers": "32MB"}},
            }, tls)
            m.config.write_text(yaml.safe_dump(config, sort_keys=False))
            os.chown(m.config, pg_user.pw_uid, pg_user.pw_gid)
            res = cmd([patroni, "--validate-config", m.config], user="postgres", cwd=m.home)
            assert res.returncode == 0, f"patroni --validate-config refuses the bundle's tls.yml:\n{m.config.read_text()}" + h.describe(res)
        for m in members:
            servers.append(Server(f"patroni {m.fqdn}", [patroni, m.config], m.home / "patroni.log", user="postgres",
                                  cwd=m.home, env=tool_env({"HOME": str(m.home)})))
        c = SimpleNamespace(members=members, servers=servers, base=base, rest_port=rest_port, pg_port=pg_port,
                            patronictl=patronictl, cport=cport, etcd=etcd, out=out)
        wait_for_cluster(c)
        yield c
    finally:
        for s in reversed(servers):
            s.stop()
        shutil.rmtree(base, ignore_errors=True)


def rest(m) -> Rest:
    return Rest(m.ssl / "root-ca.pem", m.ssl / "patroni-client.pem", m.ssl / "patroni-client.key")


def role_of(c, m) -> int | None:
    try:
        return rest(m).get(m.ip, c.rest_port, "/primary")
    except (OSError, ssl.SSLError):
        return None


def leader(c):
    leaders = [m for m in c.members if role_of(c, m) == 200]
    return leaders[0] if len(leaders) == 1 else None


def local_sql(c, m, sql: str) -> subprocess.CompletedProcess:
    """psql as the superuser over the member's Unix socket (pg_hba.conf: local all postgres peer)."""
    psql = str(Path(postgres_bin("postgres")).parent / "psql")
    return cmd([psql, "-X", "-tA", "-F", "|", "-h", m.home / "sock", "-p", c.pg_port, "-U", "postgres", "-d", "postgres",
                "-c", sql], user="postgres", cwd=m.home)


STREAMING_SQL = ("SELECT r.application_name, r.usename, r.state, s.ssl, s.client_dn FROM pg_stat_replication r "
                 "JOIN pg_stat_ssl s USING (pid) ORDER BY 1")


def streaming(c, primary) -> list[list[str]]:
    """The members replicating from `primary` (Patroni names each connection after its member;
    a replica's pg_basebackup, while it bootstraps, is not counted)."""
    res = local_sql(c, primary, STREAMING_SQL)
    if res.returncode != 0:
        return []
    names = {m.fqdn for m in c.members}
    return [row for row in (line.split("|") for line in res.stdout.splitlines() if line.strip()) if row[0] in names]


def wait_for_cluster(c, want_leader=None):
    """One leader (want_leader when given), both others streaming from it over TLS."""
    def ready():
        primary = leader(c)
        if primary is None or (want_leader is not None and primary is not want_leader):
            return None
        rows = streaming(c, primary)
        return primary if len([r for r in rows if r[2] == "streaming"]) == len(c.members) - 1 else None
    return wait_until("patroni cluster (a leader, two streaming replicas)", ready, c.servers, timeout=CLUSTER_TIMEOUT,
                      interval=1)


def patronictl(c, m, *args):
    return cmd([c.patronictl, "-c", m.config, *args], user="postgres", cwd=m.home, timeout=90)


def test_replicas_stream_with_their_own_client_certificates(cluster):
    c = cluster
    primary = wait_for_cluster(c)
    rows = streaming(c, primary)
    replicas = sorted(m.fqdn for m in c.members if m is not primary)
    assert [r[0] for r in rows] == replicas, rows
    for name, user, state, tls, client_dn in rows:
        short = name.split(".")[0]
        assert (user, state, tls) == ("patroni", "streaming", "t"), rows
        assert client_dn == f"/CN=patroni@{short}", f"{name} did not log in with its own certificate: {rows}"


def test_patronictl_list_over_tls(cluster):
    c = cluster
    primary = wait_for_cluster(c)
    res = patronictl(c, c.members[-1], "list", "-f", "json")
    assert res.returncode == 0, h.describe(res)
    listed = {row["Member"]: row for row in json.loads(res.stdout)}
    assert sorted(listed) == sorted(m.fqdn for m in c.members), res.stdout
    assert listed[primary.fqdn]["Role"] == "Leader", res.stdout
    for m in c.members:
        if m is not primary:
            assert listed[m.fqdn]["Role"] == "Replica" and listed[m.fqdn]["State"] == "streaming", res.stdout


def test_rest_primary_with_client_certificates(cluster, tmp_path):
    c = cluster
    primary = wait_for_cluster(c)
    for m in c.members:
        assert role_of(c, m) == (200 if m is primary else 503), m.fqdn
    # verify_client: required: no certificate, or one of another CA, is refused in the handshake
    for client in (Rest(primary.ssl / "root-ca.pem"),
                   Rest(primary.ssl / "root-ca.pem", *foreign_files(tmp_path, f"patroni@{primary.short}"))):
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            client.get(primary.ip, c.rest_port, "/primary")


def foreign_files(tmp_path: Path, cn: str):
    f = foreign_client(tmp_path / re.sub(r"\W", "_", cn), cn)
    return f.cert, f.key


def replication_login(c, m, primary, cert: Path, key: Path) -> subprocess.CompletedProcess:
    """What a joining member does first: a replication connection (IDENTIFY_SYSTEM) over TLS."""
    psql = str(Path(postgres_bin("postgres")).parent / "psql")
    dsn = (f"host={primary.fqdn} hostaddr={primary.ip} port={c.pg_port} user=patroni dbname=postgres replication=database "
           f"sslmode=verify-full sslrootcert={m.ssl / 'root-ca.pem'} sslcert={cert} sslkey={key}")
    return cmd([psql, "-X", "-tA", "-c", "IDENTIFY_SYSTEM", dsn], env=tool_env({"HOME": str(c.base), "PGCONNECT_TIMEOUT": "10"}))


def test_foreign_member_and_clients_are_refused(cluster, tmp_path):
    c = cluster
    primary = wait_for_cluster(c)
    replica = next(m for m in c.members if m is not primary)
    # the member's own certificate is admitted for replication (the control)
    key_copy = tmp_path / "own.key"  # libpq wants the key owned by the user running psql (root here), 0600
    shutil.copyfile(replica.ssl / "patroni-client.key", key_copy)
    key_copy.chmod(0o600)
    res = replication_login(c, replica, primary, replica.ssl / "patroni-client.pem", key_copy)
    assert res.returncode == 0, h.describe(res)
    # a would-be member patroni@patroni-4 with a certificate of another CA
    cert, key = foreign_files(tmp_path, "patroni@patroni-4")
    res = replication_login(c, replica, primary, cert, key)
    assert res.returncode != 0, "a replication login with a foreign certificate was accepted" + h.describe(res)
    assert re.search(r"certificate|SSL|alert", res.stderr, re.I), h.describe(res)
    # ... and with another CA's certificate for an existing member's name
    cert, key = foreign_files(tmp_path, f"patroni@{replica.short}")
    res = replication_login(c, replica, primary, cert, key)
    assert res.returncode != 0, h.describe(res)
    # it cannot reach the DCS either
    res = etcdctl(c.etcd, "get", "/service/", "--prefix", "--keys-only", cert=cert, key=key, timeout="3s")
    assert res.returncode != 0, "etcd accepted a foreign client certificate" + h.describe(res)
    assert all(s.alive() for s in c.servers), "".join(s.describe() for s in c.servers)


def test_switchover(cluster):
    c = cluster
    old = wait_for_cluster(c)
    candidate = next(m for m in c.members if m is not old)
    res = patronictl(c, old, "switchover", "--leader", old.fqdn, "--candidate", candidate.fqdn, "--force", SCOPE)
    assert res.returncode == 0, h.describe(res)
    assert wait_for_cluster(c, want_leader=candidate) is candidate
    rows = streaming(c, candidate)
    assert old.fqdn in [r[0] for r in rows if r[2] == "streaming"], f"the old leader does not stream from the new one: {rows}"
    assert role_of(c, old) == 503
