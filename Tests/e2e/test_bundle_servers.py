"""`chpki bundle` (SPEC §4, docs/bundles.md) proven against the real servers.

A CA is made for the loopback example (examples/loopback.yml: every host on a 127.0.0.0/8 address),
every certificate is issued, and `chpki bundle` lays out one tree per host. Each server below is
then started by the test itself, on loopback only, on free ports, with its own data directory and
configuration in a temporary directory, reading its TLS files ONLY from the bundle trees (the
`/etc/...` paths of the rendered snippets rewritten to the tree). Nothing of the machine's own
services is used or touched; every process started here is stopped (its process group killed)
when the module's tests are done.

- etcd: a 3-member cluster, one member per backend, each configured from its own `etc/etcd/tls.env`
  (client and peer certificate authentication), forms quorum; etcdctl with a chpki client
  certificate writes and reads; a client certificate of another CA, or none, is refused.
- PostgreSQL: `ssl=on` with the Patroni tree's server certificate and key, the bundle's
  `pg_hba.conf`/`pg_ident.conf`; psql with `sslmode=verify-full` and the `patroni@backend-1` client
  certificate logs in as the role the map gives; no certificate, another service's certificate,
  or a wrong host name are refused.
- HAProxy: serves every VIP from the bundle's PEM files (a crt directory, each file alone, and the
  rendered `chpki-tls.cfg` bind lines); curl verifies with the bundle's trust anchor by VIP name
  and fails for a name not in the SANs.
- nginx: serves the frontend certificate; `openssl s_client -verify_return_error -verify_hostname`.
- OpenSearch semantics: java/OpenSearchTLS.java loads the PKCS#8 keys and completes mutual TLS
  between two nodes with JSSE; each peer principal is in the rendered `nodes_dn`.
- MinIO semantics: one PEM block in `private.key`; every FQDN of `MINIO_VOLUMES` verifies against
  `CAs/` with `openssl verify -verify_hostname`.
- `--tar`: owners and modes of var/lib/chpki/MANIFEST.json (files and directories) in the tar
  headers; `tar -xzpf` gives the same bytes.

The whole module runs twice: on a root-only CA and on a CA with an intermediate (so every chain
file is really a chain, and every server must be given the intermediate by the bundle).
A server whose Debian package is missing skips its tests, naming the package (scripts/test
installs them).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import grp
import hashlib
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import conftest
import helpers as h

HERE = Path(__file__).resolve().parent
LOOPBACK = conftest.REPO / "examples" / "loopback.yml"
JAVA_SOURCES = [HERE / "java" / "OpenSearchTLS.java", HERE / "java" / "OpenSearchPrincipal.java"]

MANIFEST = "var/lib/chpki/MANIFEST.json"  # inside every host tree and archive (docs/bundles.md)
NODES_KEY = "plugins.security.nodes_dn"
ADMIN_KEY = "plugins.security.authcz.admin_dn"

START_TIMEOUT = 40  # seconds for a server to come up
CMD_TIMEOUT = 30


# =============================================================================================
# processes: started in their own session, output to a log file, always killed by group


def need(binary: str, package: str) -> str:
    path = shutil.which(binary) or next((p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}") if os.access(p, os.X_OK)), None)
    if not path:
        pytest.skip(f"{binary} not found: install the Debian package {package} (scripts/test does)")
    return path


def need_root(what: str):
    if os.geteuid() != 0:
        pytest.skip(f"{what} needs root (the tests run as root on CI)")


def tool_env(extra: dict | None = None) -> dict:
    """A clean environment for the tools the tests run (no proxies, no client defaults)."""
    drop = re.compile(r"^(CHPKI_|ETCD|PG|SSL_CERT_|CURL_|JAVA_TOOL_OPTIONS$|JDK_JAVA_OPTIONS$)|_proxy$|_PROXY$")
    env = {k: v for k, v in os.environ.items() if not drop.search(k)}
    env["LANG"] = "C.UTF-8"
    env["TZ"] = "UTC"
    env.update(extra or {})
    return env


def cmd(argv, *, env=None, input=None, timeout=CMD_TIMEOUT, cwd=None, user=None) -> subprocess.CompletedProcess:
    kw = {}
    if user is not None:
        kw = dict(user=user, group=pwd.getpwnam(user).pw_gid, extra_groups=[])
    return subprocess.run(
        [str(a) for a in argv],
        env=env if env is not None else tool_env(),
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        start_new_session=True,
        **kw,
    )


class Server:
    """A server process in its own session (process group), stdout+stderr to `log`."""

    def __init__(self, name, argv, log: Path, *, env=None, cwd=None, user=None, stop_signal=signal.SIGTERM):
        self.name = name
        self.log = Path(log)
        self.stop_signal = stop_signal
        self._logf = open(self.log, "wb")
        kw = {}
        if user is not None:
            kw = dict(user=user, group=pwd.getpwnam(user).pw_gid, extra_groups=[])
        self.proc = subprocess.Popen(
            [str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=self._logf, stderr=subprocess.STDOUT,
            env=env if env is not None else tool_env(), cwd=cwd, start_new_session=True, **kw,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, n=40) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])

    def describe(self) -> str:
        state = "running" if self.alive() else f"exited {self.proc.returncode}"
        return f"\n--- {self.name} ({state}), last lines of {self.log} ---\n{self.log_tail()}"

    def stop(self):
        pgid = self.proc.pid  # the session leader: its pid is the group id
        if self.alive():
            try:
                os.kill(self.proc.pid, self.stop_signal)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except (ProcessLookupError, PermissionError):
                break
            time.sleep(0.2)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._logf.close()


def wait_until(what: str, check, servers, timeout=START_TIMEOUT, interval=0.2):
    """Poll `check()` (truthy = done) until `timeout`; fail early when a server has died."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = check()
            if last and not isinstance(last, subprocess.CompletedProcess):
                return last
            if isinstance(last, subprocess.CompletedProcess) and last.returncode == 0:
                return last
        except (OSError, subprocess.TimeoutExpired) as e:
            last = e
        dead = [s for s in servers if not s.alive()]
        if dead or time.monotonic() > deadline:
            detail = h.describe(last) if isinstance(last, subprocess.CompletedProcess) else repr(last)
            why = "died" if dead else f"not ready after {timeout}s"
            pytest.fail(f"{what}: {why}; last check: {detail}" + "".join(s.describe() for s in servers))
        time.sleep(interval)


def port_open(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=1):
            return True
    except OSError:
        return False


_taken: set[int] = set()


def free_port(*ips: str) -> int:
    """A TCP port free on every address in `ips` (and not handed out before in this run)."""
    ips = ips or ("127.0.0.1",)
    for _ in range(200):
        with socket.socket() as s:
            s.bind((ips[0], 0))
            port = s.getsockname()[1]
        if port in _taken or port < 20000:
            continue
        ok = True
        for ip in ips:
            try:
                with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET) as s:
                    s.bind((ip, port))
            except OSError:
                ok = False
                break
        if ok:
            _taken.add(port)
            return port
    raise RuntimeError(f"no free port on {ips}")


# =============================================================================================
# the inventory, the CA and the bundle


def inventory_model(path: Path) -> SimpleNamespace:
    inv = h.load_yaml(path)
    domain = str(inv["domain"]).lower()
    hosts = {}
    for hd in inv["hosts"]:
        fqdn = str(hd["name"]).lower()
        hosts[fqdn] = SimpleNamespace(fqdn=fqdn, short=fqdn.split(".")[0], ips=[str(i) for i in hd["ips"]],
                                      groups=list(hd.get("groups") or []))

    def members(service: str) -> list:
        sel = (inv["services"].get(service) or {})["hosts"]
        if isinstance(sel, str):
            return [x for x in hosts.values() if sel in x.groups]
        return [next(x for x in hosts.values() if str(n).lower() in (x.fqdn, x.short)) for n in sel]

    vips = [SimpleNamespace(fqdn=h._qualify(v["name"], domain), ips=[str(i) for i in v["ips"]]) for v in inv.get("vips") or []]
    return SimpleNamespace(raw=inv, domain=domain, hosts=hosts, members=members, vips=vips)


@pytest.fixture(scope="module")
def inv() -> SimpleNamespace:
    return inventory_model(LOOPBACK)


@pytest.fixture(scope="module", params=["root", "intermediate"], ids=["root-ca", "intermediate-ca"])
def pki(request, chpki_bin, tmp_path_factory):
    """The loopback example's CA (root only, or with an intermediate), every certificate issued."""
    base = tmp_path_factory.mktemp(f"bundle-servers-{request.param}")
    work = base / "work"
    work.mkdir()
    inventory = work / "loopback.yml"
    shutil.copyfile(LOOPBACK, inventory)
    pf = h.write_secret(base / "pass", h.PASSPHRASE + "\n")
    tool = conftest.Chpki(chpki_bin, work)
    ca_dir = base / "ca"
    extra = [] if request.param == "intermediate" else ["--no-intermediate"]
    h.assert_ok(tool.run("init-ca", "--ca-dir", ca_dir, "--inventory", inventory, "--passphrase-file", pf, *extra))
    h.assert_ok(tool.run("issue", "--ca-dir", ca_dir, "--inventory", inventory, "--passphrase-file", pf))
    help_text = tool.run("bundle", "--help").stdout
    pass_args = ["--passphrase-file", pf] if "--passphrase-file" in help_text else []

    def bundle(out: Path, *args):
        res = tool.run("bundle", "--ca-dir", ca_dir, "--inventory", inventory, *pass_args, "--out", out, *args)
        h.assert_ok(res)
        return res

    return SimpleNamespace(base=base, work=work, inventory=inventory, pf=pf, tool=tool, ca_dir=ca_dir,
                           kind=request.param, bundle=bundle, root=h.load_cert(ca_dir / "root.pem"))


@pytest.fixture(scope="module")
def bundle(pki, inv):
    """`chpki bundle --out OUT` of every host; tree(fqdn) is that host's filesystem root."""
    out = pki.base / "out"
    pki.bundle(out)
    for fqdn in inv.hosts:
        assert (out / fqdn / MANIFEST).is_file(), f"no tree for {fqdn} in {sorted(os.listdir(out))}"

    def tree(fqdn: str) -> Path:
        return out / fqdn

    def manifest(fqdn: str) -> dict:
        data = json.loads((out / fqdn / MANIFEST).read_text())
        return {f["path"].lstrip("/"): f for f in data["files"]}

    return SimpleNamespace(out=out, tree=tree, manifest=manifest)


def in_tree(tree: Path, path: str) -> Path:
    """Where an absolute host path (`/etc/...`) of a snippet is in the bundle tree."""
    assert path.startswith("/"), f"not an absolute path: {path!r}"
    return tree / path.lstrip("/")


def rewrite_paths(text: str, tree: Path) -> str:
    """Every absolute /etc or /home path in `text` that exists in the tree, pointed into the tree."""

    def sub(m):
        p = in_tree(tree, m.group(0))
        return str(p) if p.exists() else m.group(0)

    return re.sub(r"(?<![\w./-])/(?:etc|home|usr)/[A-Za-z0-9._/@+-]+", sub, text)


def trust_anchor(tree: Path, root: x509.Certificate) -> Path:
    """The Debian trust anchor of a host tree: exactly one file, the CA's root."""
    anchors = sorted((tree / "usr/local/share/ca-certificates").glob("*.crt"))
    assert len(anchors) == 1, f"expected one trust anchor in {tree}, got {anchors}"
    assert h.load_cert(anchors[0]) == root, f"{anchors[0]} is not the CA's root"
    return anchors[0]


def check_manifest(bundle, fqdn: str, path: str, mode: str, owner: str, group: str | None = None):
    entry = bundle.manifest(fqdn).get(path)
    assert entry is not None, f"MANIFEST.json of {fqdn} does not list {path}"
    assert (entry["mode"], entry["owner"], entry["group"]) == (mode, owner, group or owner), (
        f"{fqdn}:{path}: MANIFEST.json says {entry['mode']} {entry['owner']}:{entry['group']}, "
        f"docs/bundles.md says {mode} {owner}:{group or owner}")
    f = bundle.tree(fqdn) / path
    assert f.is_file(), f"{f} missing"
    assert oct(stat.S_IMODE(f.stat().st_mode)) == oct(int(mode, 8)), f"{f}: mode {oct(f.stat().st_mode)} on disk"
    assert hashlib.sha256(f.read_bytes()).hexdigest() == entry["sha256"].lower().replace(":", ""), f"{f}: sha256 differs from MANIFEST.json"


def parse_env_file(path: Path) -> dict:
    """A shell/systemd EnvironmentFile: NAME=value lines (optionally `export`, quoted), # comments."""
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith("export "):
            s = s[len("export "):].strip()
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", s)
        assert m, f"{path}:{n}: not a NAME=value line: {line!r}"
        words = shlex.split(m.group(2)) if m.group(2) else [""]
        assert len(words) == 1, f"{path}:{n}: value is not one shell word: {line!r}"
        out[m.group(1)] = words[0]
    return out


def foreign_client(tmp: Path, cn: str) -> SimpleNamespace:
    """A client certificate (clientAuth, CN `cn`) from a CA that is not chpki's, made by cryptography."""
    tmp.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Foreign Root CA")])
    now = h.utcnow()
    root = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    leaf, leaf_key = h.sign_leaf(root, key, cn=cn, eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    (tmp / "foreign-root.pem").write_bytes(h.pem(root))
    (tmp / "foreign-client.pem").write_bytes(h.pem(leaf))
    h.write_secret(tmp / "foreign-client.key", leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode())
    return SimpleNamespace(root=tmp / "foreign-root.pem", cert=tmp / "foreign-client.pem", key=tmp / "foreign-client.key")


def pem_blocks(text: str) -> list[str]:
    return re.findall(r"-----BEGIN ([A-Z0-9 ]+)-----", text)


# =============================================================================================
# the snippets: every /etc or /home path a rendered snippet names is a file of the bundle

SNIPPETS = {
    "opensearch": ["etc/opensearch/opensearch-security.yml"],
    "minio": ["etc/default/minio.tls"],
    "patroni": ["etc/patroni/tls.yml"],
    "etcd": ["etc/etcd/tls.env", "etc/etcd/bootstrap.env"],
    "haproxy": ["etc/haproxy/chpki-tls.cfg"],
    "nginx": ["etc/cinc-project/cinc-server.rb.tls"],
}


def test_snippet_paths_exist_in_the_bundle(bundle, inv):
    missing = []
    for service, snippets in SNIPPETS.items():
        for host in inv.members(service):
            tree = bundle.tree(host.fqdn)
            for rel in snippets:
                # settings only: the comments name the files the snippet is to be merged into
                text = "\n".join(line for line in (tree / rel).read_text().splitlines() if not line.lstrip().startswith("#"))
                for p in re.findall(r"(?<![\w./-])/(?:etc|home)/[A-Za-z0-9._/@+-]+", text):
                    if not in_tree(tree, p.rstrip("/.")).exists():
                        missing.append(f"{host.fqdn}:{rel} names {p}, not in the bundle")
    assert not missing, "\n".join(missing)


# =============================================================================================
# 1. etcd: a 3-member cluster with client and peer certificate authentication


ETCD_URL_VARS = ("ETCD_LISTEN_CLIENT_URLS", "ETCD_ADVERTISE_CLIENT_URLS", "ETCD_LISTEN_PEER_URLS",
                 "ETCD_INITIAL_ADVERTISE_PEER_URLS", "ETCD_INITIAL_CLUSTER")


def test_etcd_tls_env_contract(bundle, inv):
    members = inv.members("etcd")
    names = set()
    for host in members:
        tree = bundle.tree(host.fqdn)
        env = parse_env_file(tree / "etc/etcd/tls.env")
        # the first-start settings live apart (growth never changes tls.env): a new cluster here
        assert not any(k.startswith("ETCD_INITIAL_CLUSTER") for k in env), f"{host.fqdn}: {env}"
        bootstrap = parse_env_file(tree / "etc/etcd/bootstrap.env")
        assert bootstrap["ETCD_INITIAL_CLUSTER_STATE"] == "new", f"{host.fqdn}: {bootstrap}"
        env |= bootstrap
        assert env.get("ETCD_CLIENT_CERT_AUTH", "").lower() == "true", f"{host.fqdn}: {env}"
        assert env.get("ETCD_PEER_CLIENT_CERT_AUTH", "").lower() == "true", f"{host.fqdn}: {env}"
        for var, want in (("ETCD_CERT_FILE", "server.pem"), ("ETCD_KEY_FILE", "server-key.pem"),
                          ("ETCD_TRUSTED_CA_FILE", "ca.pem"), ("ETCD_PEER_CERT_FILE", "peer.pem"),
                          ("ETCD_PEER_KEY_FILE", "peer-key.pem"), ("ETCD_PEER_TRUSTED_CA_FILE", "ca.pem")):
            assert env.get(var) == f"/etc/etcd/pki/{want}", f"{host.fqdn}: {var}={env.get(var)!r}"
        for var in ETCD_URL_VARS[:4]:
            urls = [urllib.parse.urlsplit(u) for u in env[var].split(",")]
            assert all(u.scheme == "https" for u in urls), f"{host.fqdn}: {var}={env[var]} (not all https)"
            assert host.ips[0] in {u.hostname for u in urls}, f"{host.fqdn}: {var}={env[var]} not on {host.ips[0]}"
        cluster = dict(item.split("=", 1) for item in env["ETCD_INITIAL_CLUSTER"].split(","))
        assert len(cluster) == len(members), f"{host.fqdn}: ETCD_INITIAL_CLUSTER={env['ETCD_INITIAL_CLUSTER']}"
        assert env["ETCD_NAME"] in cluster
        names.add(env["ETCD_NAME"])
        for f, mode in (("ca.pem", "0644"), ("server.pem", "0644"), ("server-key.pem", "0600"), ("peer.pem", "0644"),
                        ("peer-key.pem", "0600"), ("client.pem", "0644"), ("client-key.pem", "0600")):
            check_manifest(bundle, host.fqdn, f"etc/etcd/pki/{f}", mode, "etcd")
    assert len(names) == len(members), f"ETCD_NAME not distinct: {names}"


def etcd_settings(tree: Path) -> dict:
    """What etcd reads on the host: tls.env, then bootstrap.env (the Debian drop-in's order)."""
    return parse_env_file(tree / "etc/etcd/tls.env") | parse_env_file(tree / "etc/etcd/bootstrap.env")


def etcd_env(tls_env: dict, tree: Path, inv, own_ip: str, cport: int, pport: int, data_dir: Path) -> dict:
    """The process environment of one member: tls.env as rendered, its /etc paths pointed into the
    tree, its ports replaced by the test's, host names of URLs replaced by the host's IP (no DNS
    here), and a private data directory. A member listens only on its own address (tls.env adds a
    127.0.0.1 client listener on hosts whose address is not loopback, which is right on a real
    host and would collide here; for these loopback hosts it adds none)."""
    by_name = {x.fqdn: x.ips[0] for x in inv.hosts.values()} | {x.short: x.ips[0] for x in inv.hosts.values()}

    def url(u: str, port: int) -> str:
        p = urllib.parse.urlsplit(u)
        host = by_name.get(p.hostname, p.hostname)
        host = f"[{host}]" if ":" in host else host
        return f"{p.scheme}://{host}:{port}"

    env = tool_env()
    for k, v in tls_env.items():
        if k in ETCD_URL_VARS:
            port = cport if "CLIENT" in k else pport
            if k == "ETCD_INITIAL_CLUSTER":
                v = ",".join(f"{n}={url(u, port)}" for n, u in (i.split("=", 1) for i in v.split(",")))
            else:
                urls = [url(u, port) for u in v.split(",")]
                if k.startswith("ETCD_LISTEN_"):
                    urls = [u for u in urls if urllib.parse.urlsplit(u).hostname == own_ip] or urls
                v = ",".join(urls)
        elif v.startswith("/"):
            p = in_tree(tree, v)
            v = str(p) if p.exists() else v
        env[k] = v
    env["ETCD_DATA_DIR"] = str(data_dir)
    env.setdefault("ETCD_INITIAL_CLUSTER_STATE", "new")
    env.pop("ETCD_WAL_DIR", None)
    env["ETCD_LOG_OUTPUTS"] = "stderr"
    return env


def etcdctl(c, *args, cert=None, key=None, cacert=None, endpoints=None, timeout="5s"):
    argv = [c.etcdctl, f"--endpoints={','.join(endpoints or c.endpoints)}", f"--cacert={cacert or c.cacert}",
            "--dial-timeout=3s", f"--command-timeout={timeout}"]
    if cert:
        argv += [f"--cert={cert}", f"--key={key}"]
    return cmd([*argv, *args], env=tool_env({"ETCDCTL_API": "3"}))


@pytest.fixture(scope="module")
def etcd_cluster(bundle, inv, pki):
    etcd = need("etcd", "etcd-server")
    etcdctl_bin = need("etcdctl", "etcd-client")
    members = inv.members("etcd")
    ips = [m.ips[0] for m in members]
    cport, pport = free_port(*ips), free_port(*ips)
    base = pki.base / "etcd"
    base.mkdir()
    servers = []
    try:
        for m in members:
            tree = bundle.tree(m.fqdn)
            env = etcd_env(etcd_settings(tree), tree, inv, m.ips[0], cport, pport, base / f"{m.short}.etcd")
            servers.append(Server(f"etcd {m.fqdn}", [etcd], base / f"{m.short}.log", env=env, cwd=base))
        first = bundle.tree(members[0].fqdn) / "etc/etcd/pki"
        c = SimpleNamespace(etcdctl=etcdctl_bin, servers=servers, members=members, base=base,
                            endpoints=[f"https://{ip}:{cport}" for ip in ips], cacert=first / "ca.pem")
        wait_until("etcd quorum",
                   lambda: etcdctl(c, "endpoint", "health", cert=first / "client.pem", key=first / "client-key.pem"),
                   servers)
        yield c
    finally:
        for s in servers:
            s.stop()


def test_etcd_cluster_forms_quorum_with_cert_auth(etcd_cluster, bundle):
    c = etcd_cluster
    pki_dir = bundle.tree(c.members[0].fqdn) / "etc/etcd/pki"
    res = etcdctl(c, "endpoint", "health", cert=pki_dir / "client.pem", key=pki_dir / "client-key.pem")
    assert res.returncode == 0, h.describe(res)
    for ep in c.endpoints:
        assert re.search(rf"^{re.escape(ep)} is healthy", res.stdout + res.stderr, re.M), h.describe(res)
    res = etcdctl(c, "member", "list", "-w", "json", cert=pki_dir / "client.pem", key=pki_dir / "client-key.pem")
    assert res.returncode == 0, h.describe(res)
    listed = json.loads(res.stdout)["members"]
    assert len(listed) == len(c.members) and all(m.get("name") for m in listed), res.stdout
    # every member is reached through its advertised client URL (the rendered advertise URLs)
    res = etcdctl(c, "endpoint", "health", "--cluster", cert=pki_dir / "client.pem", key=pki_dir / "client-key.pem")
    assert res.returncode == 0 and (res.stdout + res.stderr).count("is healthy") == len(c.members), h.describe(res)


def test_etcd_put_get_with_chpki_client_certs(etcd_cluster, bundle):
    c = etcd_cluster
    writer = bundle.tree(c.members[0].fqdn) / "etc/etcd/pki"
    reader = bundle.tree(c.members[-1].fqdn) / "etc/etcd/pki"
    res = etcdctl(c, "put", "/chpki/e2e", "written-by-backend-1", cert=writer / "client.pem", key=writer / "client-key.pem")
    assert res.returncode == 0 and "OK" in res.stdout, h.describe(res)
    # read back through the last member only, with that host's own client certificate
    res = etcdctl(c, "get", "/chpki/e2e", "--print-value-only", cert=reader / "client.pem", key=reader / "client-key.pem",
                  cacert=reader / "ca.pem", endpoints=[c.endpoints[-1]])
    assert res.returncode == 0 and res.stdout.strip() == "written-by-backend-1", h.describe(res)


def test_etcd_refuses_foreign_and_missing_client_certs(etcd_cluster, bundle, pki):
    c = etcd_cluster
    good = bundle.tree(c.members[0].fqdn) / "etc/etcd/pki"
    foreign = foreign_client(pki.base / "foreign-etcd", f"etcd@{c.members[0].short}")
    res = etcdctl(c, "put", "/chpki/foreign", "x", cert=foreign.cert, key=foreign.key, endpoints=c.endpoints[:1], timeout="3s")
    assert res.returncode != 0, "a client certificate from another CA was accepted" + h.describe(res)
    res = etcdctl(c, "put", "/chpki/anonymous", "x", endpoints=c.endpoints[:1], timeout="3s")
    assert res.returncode != 0, "a client without a certificate was accepted" + h.describe(res)
    # refused by the TLS layer for the right reason (etcd logs each rejected handshake)
    log = c.servers[0].log.read_text(errors="replace")
    assert "certificate signed by unknown authority" in log, c.servers[0].describe()
    assert "didn't provide a certificate" in log, c.servers[0].describe()
    for k in ("/chpki/foreign", "/chpki/anonymous"):
        res = etcdctl(c, "get", k, "--print-value-only", cert=good / "client.pem", key=good / "client-key.pem")
        assert res.returncode == 0 and res.stdout.strip() == "", f"{k} was written" + h.describe(res)
    assert all(s.alive() for s in c.servers), "".join(s.describe() for s in c.servers)


# =============================================================================================
# 2. PostgreSQL: ssl=on from the Patroni tree, hostssl ... cert map=chpki


def postgres_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if not found:
        pytest.skip(f"{name} not found under /usr/lib/postgresql: install the Debian package postgresql")
    return str(found[-1])


@pytest.fixture(scope="module")
def postgres(bundle, inv, pki):
    need_root("PostgreSQL (initdb/postgres run as the postgres user)")
    initdb, postgres_exe = postgres_bin("initdb"), postgres_bin("postgres")
    psql = need("psql", "postgresql-client")
    try:
        pg_user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres user: install the Debian package postgresql")
    host = inv.members("patroni")[0]
    tree = bundle.tree(host.fqdn)
    for f, mode in (("etc/ssl/server-cert.pem", "0644"), ("etc/ssl/private.key", "0600"), ("etc/ssl/root-ca.pem", "0644"),
                    ("etc/ssl/patroni-client.pem", "0644"), ("etc/ssl/patroni-client.key", "0600"),
                    ("etc/patroni/pg_hba.conf", "0644"), ("etc/patroni/pg_ident.conf", "0644")):
        check_manifest(bundle, host.fqdn, f, mode, "postgres")

    # /tmp, not pytest's 0700 tmp tree: the postgres user must reach it
    d = Path(tempfile.mkdtemp(prefix="chpki-e2e-pg-", dir="/tmp"))
    server = None
    try:
        os.chown(d, pg_user.pw_uid, pg_user.pw_gid)
        (d / "ssl").mkdir()
        for f in ("server-cert.pem", "private.key", "root-ca.pem"):
            shutil.copy2(tree / "etc/ssl" / f, d / "ssl" / f)  # keeps the bundle's modes
        shutil.copy2(tree / "etc/patroni/pg_ident.conf", d / "pg_ident.conf")
        # the bundle's pg_hba.conf, after one line for the test's own setup over the Unix socket
        (d / "pg_hba.conf").write_text("local all postgres trust\n" + (tree / "etc/patroni/pg_hba.conf").read_text())
        (d / "sock").mkdir()
        for p in [d / "ssl", d / "sock", *d.glob("*.conf"), *(d / "ssl").iterdir()]:
            os.chown(p, pg_user.pw_uid, pg_user.pw_gid)
        assert stat.S_IMODE((d / "ssl/private.key").stat().st_mode) == 0o600

        res = cmd([initdb, "-D", d / "data", "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync",
                   "--no-instructions"], user="postgres", cwd=d, timeout=120)
        assert res.returncode == 0, "initdb failed" + h.describe(res)
        port = free_port("127.0.0.1")
        settings = {
            "listen_addresses": "127.0.0.1", "port": port, "unix_socket_directories": d / "sock",
            "ssl": "on", "ssl_cert_file": d / "ssl/server-cert.pem", "ssl_key_file": d / "ssl/private.key",
            "ssl_ca_file": d / "ssl/root-ca.pem", "hba_file": d / "pg_hba.conf", "ident_file": d / "pg_ident.conf",
            "fsync": "off", "logging_collector": "off", "log_connections": "on", "shared_buffers": "16MB",
            "max_connections": "20",
        }
        argv = [postgres_exe, "-D", d / "data"] + [a for k, v in settings.items() for a in ("-c", f"{k}={v}")]
        server = Server("postgres", argv, d / "postgres.log", user="postgres", cwd=d, stop_signal=signal.SIGINT)
        local = [psql, "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-h", d / "sock", "-p", port, "-U", "postgres", "-d", "postgres"]
        wait_until("postgres", lambda: cmd([*local, "-c", "SELECT 1"], user="postgres", cwd=d), [server])
        res = cmd([*local, "-c", "CREATE ROLE patroni LOGIN"], user="postgres", cwd=d)
        assert res.returncode == 0, h.describe(res)
        home = pki.base / "psql-home"  # no ~/.postgresql/postgresql.crt to fall back on
        home.mkdir()
        yield SimpleNamespace(port=port, server=server, tree=tree, host=host, psql=psql, dir=d,
                              env=tool_env({"HOME": str(home), "PGCONNECT_TIMEOUT": "10"}))
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(d, ignore_errors=True)


def pg_connect(pg, host_name: str, user: str = "patroni", cert: Path | None = None, key: Path | None = None,
               rootcert: Path | None = None, sql="SELECT current_user"):
    ssl = pg.tree / "etc/ssl"
    conninfo = {
        "hostaddr": "127.0.0.1", "host": host_name, "port": pg.port, "dbname": "postgres", "user": user,
        "sslmode": "verify-full", "sslrootcert": rootcert or ssl / "root-ca.pem",
        "sslcert": cert or pg.dir / "no-such-client.pem", "sslkey": key or pg.dir / "no-such-client.key",
    }
    dsn = " ".join(f"{k}={v}" for k, v in conninfo.items())
    return cmd([pg.psql, "-X", "-tA", "-v", "ON_ERROR_STOP=1", "-c", sql, dsn], env=pg.env)


def test_postgres_patroni_client_cert_logs_in_as_mapped_role(postgres):
    pg = postgres
    ssl = pg.tree / "etc/ssl"
    res = pg_connect(pg, pg.host.fqdn, cert=ssl / "patroni-client.pem", key=ssl / "patroni-client.key",
                     sql="SELECT current_user || ' ' || (SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid())")
    assert res.returncode == 0, h.describe(res) + pg.server.describe()
    assert res.stdout.strip() == "patroni true", h.describe(res)


def test_postgres_refuses_without_client_cert(postgres):
    res = pg_connect(postgres, postgres.host.fqdn)
    assert res.returncode != 0, "logged in without a client certificate" + h.describe(res)
    assert "connection requires a valid client certificate" in res.stderr, h.describe(res)


def test_postgres_maps_only_the_certificates_service(postgres, bundle):
    """etcd@backend-1 is a valid chpki client certificate, but the map gives role etcd, not patroni."""
    pki_dir = postgres.tree / "etc/etcd/pki"
    res = pg_connect(postgres, postgres.host.fqdn, cert=pki_dir / "client.pem", key=pki_dir / "client-key.pem")
    assert res.returncode != 0, "etcd@... logged in as patroni" + h.describe(res)
    assert "certificate authentication failed" in res.stderr, h.describe(res)


def test_postgres_verify_full_rejects_wrong_host_name(postgres, inv):
    ssl = postgres.tree / "etc/ssl"
    other = next(x for x in inv.hosts.values() if x.fqdn != postgres.host.fqdn)
    res = pg_connect(postgres, other.fqdn, cert=ssl / "patroni-client.pem", key=ssl / "patroni-client.key")
    assert res.returncode != 0, f"verify-full accepted {other.fqdn}" + h.describe(res)
    assert "does not match host name" in res.stderr, h.describe(res)


# =============================================================================================
# 3. HAProxy: the VIP PEMs (leaf, chain, key) served by SNI


def haproxy_config(frontends: list[tuple[str, list[str]]]) -> str:
    lines = ["global", "    maxconn 64", "defaults", "    mode http", "    timeout connect 5s",
             "    timeout client 10s", "    timeout server 10s"]
    for name, binds in frontends:
        lines += [f"frontend {name}", *[f"    {b}" for b in binds],
                  f'    http-request return status 200 content-type text/plain string "{name}"']
    return "\n".join(lines) + "\n"


def start_haproxy(exe: str, cfg_text: str, base: Path, name: str, ready: list[tuple[str, int]]) -> Server:
    cfg = base / f"{name}.cfg"
    cfg.write_text(cfg_text)
    res = cmd([exe, "-c", "-f", cfg])
    assert res.returncode == 0, f"haproxy refuses the configuration:\n{cfg_text}" + h.describe(res)
    s = Server(name, [exe, "-db", "-f", cfg], base / f"{name}.log", cwd=base)
    try:
        wait_until(name, lambda: all(port_open(ip, p) for ip, p in ready), [s])
    except BaseException:
        s.stop()
        raise
    return s


@pytest.fixture(scope="module")
def haproxy(bundle, inv, pki):
    exe = need("haproxy", "haproxy")
    balancer = inv.members("haproxy")[0]
    tree = bundle.tree(balancer.fqdn)
    pem_dir = tree / "etc/ssl/haproxy"
    base = pki.base / "haproxy"
    base.mkdir()
    servers = []
    try:
        # the crt directory (reference 000: `bind ... ssl crt /etc/ssl/haproxy`), and each PEM alone
        dir_port = free_port("127.0.0.1")
        frontends = [("crt_dir", [f"bind 127.0.0.1:{dir_port} ssl crt {pem_dir}"])]
        file_ports = {}
        for i, vip in enumerate(inv.vips):
            file_ports[vip.fqdn] = free_port("127.0.0.1")
            frontends.append((f"vip_{i}", [f"bind 127.0.0.1:{file_ports[vip.fqdn]} ssl crt {pem_dir / (vip.fqdn + '.pem')}"]))
        ready = [("127.0.0.1", dir_port), *[("127.0.0.1", p) for p in file_ports.values()]]
        servers.append(start_haproxy(exe, haproxy_config(frontends), base, "haproxy-files", ready))

        # the rendered chpki-tls.cfg bind lines, as they are (the test's port instead of :443), each
        # in the frontend its `# frontend NAME` comment names (as the snippet says to do)
        snippet = (tree / "etc/haproxy/chpki-tls.cfg").read_text()
        snippet_port = free_port(*sorted({ip for v in inv.vips for ip in v.ips}))
        groups: dict[str, list[str]] = {}
        current = "snippet"
        for line in snippet.splitlines():
            s = line.strip()
            m = re.fullmatch(r"#\s*frontend\s+(\S+)", s)
            if m:
                current = re.sub(r"\W", "_", m.group(1))
            elif s.startswith("bind "):
                s = re.sub(r"^bind\s+(\S+):443\b", lambda m: f"bind {m.group(1)}:{snippet_port}", s)
                groups.setdefault(current, []).append(rewrite_paths(s, tree))
        binds = [b for g in groups.values() for b in g]
        assert binds, f"no bind line in chpki-tls.cfg:\n{snippet}"
        snippet_ready = sorted({(ip, snippet_port) for v in inv.vips for ip in v.ips})
        servers.append(start_haproxy(exe, haproxy_config(list(groups.items())), base, "haproxy-snippet", snippet_ready))
        yield SimpleNamespace(tree=tree, dir_port=dir_port, file_ports=file_ports, snippet_port=snippet_port,
                              snippet=snippet, binds=binds, servers=servers,
                              anchor=trust_anchor(tree, pki.root), base=base)
    finally:
        for s in servers:
            s.stop()


def curl(name: str, port: int, ip: str, cacert: Path):
    return cmd(["curl", "-sS", "--noproxy", "*", "--max-time", "10", "--cacert", cacert,
                "--resolve", f"{name}:{port}:{ip}", f"https://{name}:{port}/"])


def test_haproxy_pem_files_contract(bundle, inv):
    for balancer in inv.members("haproxy"):
        tree = bundle.tree(balancer.fqdn)
        pems = sorted(p.name for p in (tree / "etc/ssl/haproxy").glob("*.pem"))
        assert pems == sorted(f"{v.fqdn}.pem" for v in inv.vips), f"{balancer.fqdn}: {pems}"
        for v in inv.vips:
            check_manifest(bundle, balancer.fqdn, f"etc/ssl/haproxy/{v.fqdn}.pem", "0600", "root")
            text = (tree / f"etc/ssl/haproxy/{v.fqdn}.pem").read_text()
            blocks = pem_blocks(text)
            assert blocks[0] == "CERTIFICATE" and blocks[-1] == "PRIVATE KEY" and blocks.count("PRIVATE KEY") == 1, blocks
        cfg = (tree / "etc/haproxy/chpki-tls.cfg").read_text()
        binds = [line.split() for line in cfg.splitlines() if line.strip().startswith("bind ")]
        for v in inv.vips:
            for ip in v.ips:
                # a bind on the VIP's address:443 with ssl, whose crt is the VIP's PEM or the PEM directory
                ok = any(b[1] == f"{ip}:443" and "ssl" in b
                         and any(b[i] == "crt" and b[i + 1].rstrip("/") in (f"/etc/ssl/haproxy/{v.fqdn}.pem", "/etc/ssl/haproxy")
                                 for i in range(len(b) - 1))
                         for b in binds)
                assert ok, f"no bind line serving {v.fqdn} on {ip}:443 in chpki-tls.cfg:\n{cfg}"


def test_haproxy_serves_every_vip_by_sni_from_the_crt_dir(haproxy, inv):
    for v in inv.vips:
        res = curl(v.fqdn, haproxy.dir_port, "127.0.0.1", haproxy.anchor)
        assert res.returncode == 0 and res.stdout == "crt_dir", v.fqdn + h.describe(res) + "".join(s.describe() for s in haproxy.servers)


def test_haproxy_serves_each_vip_pem_alone(haproxy, inv):
    for i, v in enumerate(inv.vips):
        res = curl(v.fqdn, haproxy.file_ports[v.fqdn], "127.0.0.1", haproxy.anchor)
        assert res.returncode == 0 and res.stdout == f"vip_{i}", v.fqdn + h.describe(res)


def test_haproxy_fails_for_a_name_not_in_the_sans(haproxy, inv):
    wrong = f"not-a-vip.{inv.domain}"
    res = curl(wrong, haproxy.dir_port, "127.0.0.1", haproxy.anchor)
    assert res.returncode == 60, f"expected curl exit 60 (certificate verification) for {wrong}" + h.describe(res)
    # one VIP's PEM does not serve another VIP's name
    a, b = inv.vips[0], inv.vips[1]
    res = curl(b.fqdn, haproxy.file_ports[a.fqdn], "127.0.0.1", haproxy.anchor)
    assert res.returncode == 60, f"{a.fqdn}.pem served {b.fqdn}" + h.describe(res)


def test_haproxy_rendered_bind_lines_serve_every_vip(haproxy, inv):
    """The bind lines of chpki-tls.cfg, used verbatim in the frontends it names (port changed): every
    VIP, by its own name on its own IP, gets its certificate, every time. Several VIPs may share an
    IP (they do in the loopback and reference-000 examples): HAProxy chooses a certificate by SNI
    only among the `crt` of one bind line, so separate bind lines on one address:port are separate
    sockets the kernel picks from at random, whatever the SNI."""
    failures = []
    for v in inv.vips:
        for ip in v.ips:
            for _ in range(6):
                res = curl(v.fqdn, haproxy.snippet_port, ip, haproxy.anchor)
                if res.returncode != 0:
                    failures.append(f"{v.fqdn} on {ip}: " + h.describe(res))
                    break
    assert not failures, "bind lines:\n" + "\n".join(haproxy.binds) + "\n" + "\n".join(failures)


# =============================================================================================
# 4. nginx: the frontend's server.pem / server.key


@pytest.fixture(scope="module")
def nginx(bundle, inv, pki):
    exe = need("nginx", "nginx-light")
    host = inv.members("nginx")[0]
    tree = bundle.tree(host.fqdn)
    rb = (tree / "etc/cinc-project/cinc-server.rb.tls").read_text()
    settings = dict(re.findall(r"""^\s*nginx\[['"](ssl_certificate(?:_key)?)['"]\]\s*=\s*['"]([^'"]+)['"]""", rb, re.M))
    assert settings.get("ssl_certificate") == "/etc/cinc-project/server.pem", rb
    assert settings.get("ssl_certificate_key") == "/etc/cinc-project/server.key", rb
    check_manifest(bundle, host.fqdn, "etc/cinc-project/server.pem", "0644", "root")
    check_manifest(bundle, host.fqdn, "etc/cinc-project/server.key", "0600", "root")
    prefix = pki.base / "nginx"
    prefix.mkdir()
    ip = host.ips[0]
    port = free_port(ip)
    temps = "\n".join(f"    {t}_temp_path {prefix}/{t}_temp;" for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (prefix / "nginx.conf").write_text(f"""\
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
worker_processes 1;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/access.log;
{temps}
    server {{
        listen {ip}:{port} ssl;
        server_name {host.fqdn};
        ssl_certificate {in_tree(tree, settings['ssl_certificate'])};
        ssl_certificate_key {in_tree(tree, settings['ssl_certificate_key'])};
        location / {{ return 200 "frontend ok\\n"; }}
    }}
}}
""")
    base_args = [exe, "-p", f"{prefix}/", "-c", prefix / "nginx.conf", "-e", prefix / "error.log"]
    res = cmd([*base_args, "-t"])
    assert res.returncode == 0, "nginx -t" + h.describe(res)
    server = Server("nginx", [*base_args, "-g", "daemon off;"], prefix / "stdout.log", cwd=prefix)
    try:
        wait_until("nginx", lambda: port_open(ip, port), [server])
        yield SimpleNamespace(ip=ip, port=port, host=host, tree=tree, anchor=trust_anchor(tree, pki.root), server=server)
    finally:
        server.stop()


def s_client(ng, name: str):
    return cmd(["openssl", "s_client", "-connect", f"{ng.ip}:{ng.port}", "-servername", name, "-verify_return_error",
                "-verify_hostname", name, "-CAfile", ng.anchor], input="")


def test_nginx_s_client_verifies_frontend(nginx, inv):
    for name in (nginx.host.fqdn, f"cinc-server-cluster.{inv.domain}"):
        res = s_client(nginx, name)
        assert res.returncode == 0, name + h.describe(res) + nginx.server.describe()
        assert "Verify return code: 0 (ok)" in res.stdout, name + h.describe(res)
    res = curl(nginx.host.fqdn, nginx.port, nginx.ip, nginx.anchor)
    assert res.returncode == 0 and res.stdout == "frontend ok\n", h.describe(res)


def test_nginx_s_client_rejects_other_host_name(nginx, inv):
    other = next(x for x in inv.hosts.values() if x.fqdn != nginx.host.fqdn)
    res = s_client(nginx, other.fqdn)
    assert res.returncode != 0, f"{other.fqdn} verified against the frontend certificate" + h.describe(res)
    assert "hostname mismatch" in (res.stdout + res.stderr), h.describe(res)


# =============================================================================================
# 5. OpenSearch: PKCS#8 keys in JSSE, mutual TLS between two nodes, principals in nodes_dn


@pytest.fixture(scope="module")
def java_tls(tmp_path_factory):
    javac, java = shutil.which("javac"), shutil.which("java")
    if not javac or not java:
        pytest.skip("javac/java not on PATH: install the Debian package openjdk-17-jdk-headless")
    out = tmp_path_factory.mktemp("java-tls-classes")
    res = cmd([javac, "-d", out, *JAVA_SOURCES], timeout=300)
    assert res.returncode == 0, "javac failed" + h.describe(res)

    def handshake(server: tuple, client: tuple, protocols=None):
        args = ["--protocols", ",".join(protocols)] if protocols else []
        return cmd([java, "-cp", out, "OpenSearchTLS", *args, *server, *client], timeout=120,
                   env=tool_env({"LANG": "C.UTF-8"}))

    return handshake


def yml_get(data: dict, dotted: str):
    """A setting of opensearch.yml, written flat (`a.b.c: v`) or nested."""
    if dotted in data:
        return data[dotted]
    node = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def opensearch_node(tree: Path) -> SimpleNamespace:
    data = yaml.safe_load((tree / "etc/opensearch/opensearch-security.yml").read_text())
    assert isinstance(data, dict), "opensearch-security.yml is not a YAML mapping"

    def path_of(setting):
        value = yml_get(data, f"plugins.security.ssl.transport.{setting}")
        assert isinstance(value, str) and value, f"plugins.security.ssl.transport.{setting} missing"
        # relative paths are relative to the config directory, /etc/opensearch
        return in_tree(tree, value) if value.startswith("/") else tree / "etc/opensearch" / value

    node = SimpleNamespace(
        cert=path_of("pemcert_filepath"), key=path_of("pemkey_filepath"), ca=path_of("pemtrustedcas_filepath"),
        protocols=yml_get(data, "plugins.security.ssl.transport.enabled_protocols"),
        nodes_dn=yml_get(data, NODES_KEY), admin_dn=yml_get(data, ADMIN_KEY), data=data)
    assert node.cert.name == "full-chain.crt" and node.key.name == "private.key" and node.ca.name == "root-ca.pem", node
    assert isinstance(node.nodes_dn, list) and node.nodes_dn, f"{NODES_KEY} missing or empty"
    assert isinstance(node.admin_dn, list) and node.admin_dn, f"{ADMIN_KEY} missing or empty"
    return node


def nodes_dn_match(principal: str, patterns: list[str]) -> bool:
    """WildcardMatcher of the plugin: `/regex/` a case-insensitive whole-string regex, else a
    case-insensitive glob (`*`, `?`) over the whole string."""
    p = principal.lower()
    for pat in map(str, patterns):
        if len(pat) > 1 and pat.startswith("/") and pat.endswith("/"):
            if re.fullmatch(pat[1:-1], principal, re.IGNORECASE):
                return True
        elif fnmatch.fnmatchcase(p, pat.lower().replace("[", "[[]")):
            return True
    return False


def test_opensearch_mutual_tls_principals_in_nodes_dn(bundle, inv, java_tls):
    hosts = inv.members("opensearch")
    a, b = hosts[0], hosts[1]
    na, nb = opensearch_node(bundle.tree(a.fqdn)), opensearch_node(bundle.tree(b.fqdn))
    for host, node in ((a, na), (b, nb)):
        assert "BEGIN PRIVATE KEY" in node.key.read_text()
        check_manifest(bundle, host.fqdn, "etc/opensearch/private.key", "0600", "opensearch")
        check_manifest(bundle, host.fqdn, "etc/opensearch/full-chain.crt", "0644", "opensearch")
        # one entry per naming rule (backend-<n>): a node added by the rule is already covered
        assert 1 <= len(node.nodes_dn) <= len(hosts), f"{host.fqdn}: nodes_dn {node.nodes_dn}"
    assert na.nodes_dn == nb.nodes_dn, "the nodes' nodes_dn differ"
    protocols = na.protocols if isinstance(na.protocols, list) and na.protocols else None
    res = java_tls((na.cert, na.key, na.ca), (nb.cert, nb.key, nb.ca), protocols)
    assert res.returncode == 0, "mutual TLS between the nodes failed" + h.describe(res)
    seen = dict(line.split(": ", 1) for line in res.stdout.splitlines() if ": " in line)
    # node a (server) saw b's certificate, node b (client) saw a's
    assert seen["server-peer"].startswith(f"CN={b.fqdn},"), res.stdout
    assert seen["client-peer"].startswith(f"CN={a.fqdn},"), res.stdout
    assert nodes_dn_match(seen["server-peer"], na.nodes_dn), f"{seen['server-peer']!r} not in {a.fqdn}'s nodes_dn {na.nodes_dn}"
    assert nodes_dn_match(seen["client-peer"], nb.nodes_dn), f"{seen['client-peer']!r} not in {b.fqdn}'s nodes_dn {nb.nodes_dn}"


def test_opensearch_admin_cert_is_admin_dn_not_a_node(bundle, inv, java_tls):
    host = inv.members("opensearch")[0]
    tree = bundle.tree(host.fqdn)
    node = opensearch_node(tree)
    check_manifest(bundle, host.fqdn, "etc/opensearch/admin.pem", "0644", "opensearch")
    check_manifest(bundle, host.fqdn, "etc/opensearch/admin-key.pem", "0600", "opensearch")
    admin = (tree / "etc/opensearch/admin.pem", tree / "etc/opensearch/admin-key.pem", node.ca)
    res = java_tls((node.cert, node.key, node.ca), admin)
    assert res.returncode == 0, "mutual TLS with the admin certificate failed" + h.describe(res)
    seen = dict(line.split(": ", 1) for line in res.stdout.splitlines() if ": " in line)
    assert seen["server-peer"] in [str(x) for x in node.admin_dn], f"{seen['server-peer']!r} not in admin_dn {node.admin_dn}"
    assert not nodes_dn_match(seen["server-peer"], node.nodes_dn), f"the admin principal matches nodes_dn {node.nodes_dn}"


# =============================================================================================
# 6. MinIO: one PEM block per key, MINIO_VOLUMES peers verified against CAs/


def expand_ellipses(text: str) -> list[str]:
    """MinIO's `{1...4}` ellipsis notation, expanded (several ranges multiply)."""
    m = re.search(r"\{(\d+)\.\.\.(\d+)\}", text)
    if not m:
        return [text]
    lo, hi = m.group(1), m.group(2)
    width = len(lo) if lo.startswith("0") else 0
    out = []
    for n in range(int(lo), int(hi) + 1):
        out += expand_ellipses(text[: m.start()] + str(n).zfill(width) + text[m.end():])
    return out


def test_minio_keys_and_peers_verify_against_cas(bundle, inv):
    hosts = inv.members("minio")
    fqdns = {x.fqdn for x in hosts}
    failures = []
    for host in hosts:
        tree = bundle.tree(host.fqdn)
        certs = tree / "home/minio-user/.minio/certs"
        key_text = (certs / "private.key").read_text()
        assert pem_blocks(key_text) == ["PRIVATE KEY"], f"{host.fqdn}: private.key blocks {pem_blocks(key_text)}"
        check_manifest(bundle, host.fqdn, "home/minio-user/.minio/certs/private.key", "0600", "minio-user")
        check_manifest(bundle, host.fqdn, "home/minio-user/.minio/certs/public.crt", "0644", "minio-user")
        key = serialization.load_pem_private_key(key_text.encode(), None)
        assert h.spki(key) == h.spki(h.load_certs(certs / "public.crt")[0]), f"{host.fqdn}: key does not match public.crt"
        cas = {p.name for p in (certs / "CAs").iterdir()}
        peers_files = {f"{x.short}.crt" for x in hosts if x is not host}
        assert {"root-ca.crt", *peers_files} <= cas, f"{host.fqdn}: CAs/ {sorted(cas)}"
        for extra in sorted(cas - peers_files - {"root-ca.crt"}):  # e.g. the intermediate: CA certificates only
            c = h.load_cert(certs / "CAs" / extra)
            assert h.ext(c, x509.BasicConstraints) and h.ext(c, x509.BasicConstraints).value.ca, f"{host.fqdn}: CAs/{extra} is not a CA"

        env = parse_env_file(tree / "etc/default/minio.tls")
        urls = [u for word in env["MINIO_VOLUMES"].split() for u in expand_ellipses(word)]
        peers = {urllib.parse.urlsplit(u).hostname for u in urls}
        assert peers == fqdns, f"{host.fqdn}: MINIO_VOLUMES={env['MINIO_VOLUMES']!r} names {peers}, want {fqdns}"
        assert all(urllib.parse.urlsplit(u).scheme == "https" for u in urls), env["MINIO_VOLUMES"]
        opts = shlex.split(env.get("MINIO_OPTS", ""))
        for flag in ("--certs-dir", "-S"):
            if flag in opts:
                assert opts[opts.index(flag) + 1].rstrip("/") == "/home/minio-user/.minio/certs", env["MINIO_OPTS"]
        for peer in sorted(peers):
            short = peer.split(".")[0]
            cert = certs / "public.crt" if peer == host.fqdn else certs / "CAs" / f"{short}.crt"
            # the intermediate (if any) as MinIO gets it in the TLS handshake: the chain in public.crt
            r = h.openssl("verify", "-CAfile", certs / "CAs/root-ca.crt", "-untrusted", certs / "public.crt",
                          "-purpose", "sslserver", "-verify_hostname", peer, cert)
            if not (r.returncode == 0 and r.stdout.strip().endswith(": OK")):
                failures.append(f"{host.fqdn}: {peer}" + h.describe(r))
            if peer != host.fqdn:
                theirs = h.load_certs(bundle.tree(peer) / "home/minio-user/.minio/certs/public.crt")[0]
                assert h.load_certs(cert)[0] == theirs, f"{host.fqdn}: CAs/{short}.crt is not {peer}'s public.crt"
    assert not failures, "\n".join(failures)


# =============================================================================================
# 7. --tar: owners and modes in the headers, the same bytes when extracted


TAR_LINE = re.compile(r"^(\S{10})\s+([^/\s]+)/(\S+)\s+(\d+)\s+\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)?\s+(.+)$")


def test_tar_keeps_owners_modes_and_bytes(pki, inv):
    out = pki.base / "out-tar"
    pki.bundle(out, "--tar")
    for fqdn in inv.hosts:
        tarball = out / f"{fqdn}.tar.gz"
        assert tarball.is_file(), f"no {tarball.name} in {sorted(os.listdir(out))}"
        data = json.loads((out / fqdn / MANIFEST).read_text())
        manifest = {f["path"]: f for f in data["files"]}
        dirs = {d["path"]: d for d in data["directories"]}
        res = cmd(["tar", "-tvzf", tarball])
        assert res.returncode == 0, h.describe(res)
        listed, listed_dirs = {}, {}
        for line in res.stdout.splitlines():
            m = TAR_LINE.match(line)
            assert m, f"unexpected tar -tv line: {line!r}"
            perms, owner, group, _size, name = m.groups()
            name = name[2:] if name.startswith("./") else name
            assert not name.startswith("/") and ".." not in Path(name).parts, f"unsafe member {name!r}"
            if perms.startswith("-"):
                listed[name] = (perms, owner, group)
            else:
                assert perms.startswith("d"), f"{fqdn}: unexpected member type: {line!r}"
                listed_dirs[name.rstrip("/")] = (perms, owner, group)
        # the manifest itself (and its directory) travel in the archive but do not list themselves
        assert listed.pop(MANIFEST) == ("-rw-r--r--", "root", "root"), f"{fqdn}: {MANIFEST} in the archive"
        assert listed_dirs.pop("var/lib/chpki") == ("drwxr-xr-x", "root", "root"), f"{fqdn}: var/lib/chpki in the archive"
        assert set(listed) == set(manifest), (
            f"{fqdn}: tar files != MANIFEST.json: only in tar {sorted(set(listed) - set(manifest))}, "
            f"only in manifest {sorted(set(manifest) - set(listed))}")
        assert set(listed_dirs) == set(dirs), f"{fqdn}: tar directories {sorted(listed_dirs)} != MANIFEST.json {sorted(dirs)}"
        for path, e in manifest.items():
            want = (stat.filemode(stat.S_IFREG | int(e["mode"], 8)), e["owner"], e["group"])
            assert listed[path] == want, f"{fqdn}:{path}: tar says {listed[path]}, MANIFEST.json {want}"
        for path, e in dirs.items():
            want = (stat.filemode(stat.S_IFDIR | int(e["mode"], 8)), e["owner"], e["group"])
            assert listed_dirs[path] == want, f"{fqdn}:{path}/: tar says {listed_dirs[path]}, MANIFEST.json {want}"

        dest = pki.base / "extract" / fqdn
        dest.mkdir(parents=True)
        res = cmd(["tar", "-xzpf", tarball, "-C", dest])
        assert res.returncode == 0, h.describe(res)
        extracted = {str(p.relative_to(dest)) for p in dest.rglob("*") if not p.is_dir()}
        assert extracted == set(manifest) | {MANIFEST}, f"{fqdn}: extracted {sorted(extracted ^ set(manifest))} differ"
        assert (dest / MANIFEST).read_bytes() == (out / fqdn / MANIFEST).read_bytes(), f"{fqdn}: the archive's manifest differs"
        for path, e in dirs.items():
            assert stat.S_IMODE((dest / path).stat().st_mode) == int(e["mode"], 8), f"{fqdn}:{path}/: mode"
        for path, e in manifest.items():
            got = dest / path
            data = got.read_bytes()
            assert data == (out / fqdn / path).read_bytes(), f"{fqdn}:{path}: extracted bytes differ from the tree"
            assert hashlib.sha256(data).hexdigest() == e["sha256"].lower().replace(":", ""), f"{fqdn}:{path}: sha256"
            st = got.stat()
            assert stat.S_IMODE(st.st_mode) == int(e["mode"], 8), f"{fqdn}:{path}: mode {oct(st.st_mode)}"
            if os.geteuid() == 0:  # tar -p as root restores owners by name where the user exists here
                try:
                    assert st.st_uid == pwd.getpwnam(e["owner"]).pw_uid, f"{fqdn}:{path}: uid {st.st_uid}, want {e['owner']}"
                except KeyError:
                    pass
                try:
                    assert st.st_gid == grp.getgrnam(e["group"]).gr_gid, f"{fqdn}:{path}: gid {st.st_gid}, want {e['group']}"
                except KeyError:
                    pass
