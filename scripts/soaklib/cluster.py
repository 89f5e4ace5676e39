"""The soak's cluster: hosts on 127.0.1.x, the inventory chpki reads, one directory root per host
that only the rollout writes into, and how each host's servers start from the files installed
there (never from the bundle directory: what a server serves is what the rollout installed)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

DOMAIN = "soak.test"
# Every VIP on one address: HAProxy picks the certificate by SNI. On one machine two balancers can't
# both bind the VIP, so each binds its own address (the VIP's certificates are the same).
VIP_IP = "127.0.1.100"
VIPS = ["cinc-server-cluster", "cinc-minio-cluster"]


@dataclass(frozen=True)
class Host:
    short: str
    ip: str
    groups: tuple[str, ...]

    @property
    def fqdn(self) -> str:
        return f"{self.short}.{DOMAIN}"


# Every host the run can ever have; which are in the inventory changes with the calendar's events.
ALL_HOSTS = {h.short: h for h in [
    Host("backend-1", "127.0.1.1", ("backend",)),
    Host("backend-2", "127.0.1.2", ("backend",)),
    Host("backend-3", "127.0.1.3", ("backend",)),
    Host("backend-4", "127.0.1.4", ("backend",)),
    Host("frontend-1", "127.0.1.11", ("frontend",)),
    Host("frontend-2", "127.0.1.12", ("frontend",)),
    Host("frontend-3", "127.0.1.13", ("frontend",)),
    Host("haproxy-1", "127.0.1.21", ("balancer",)),
    Host("haproxy-2", "127.0.1.22", ("balancer",)),
]}
INITIAL = ["backend-1", "backend-2", "backend-3", "frontend-1", "frontend-2", "haproxy-1", "haproxy-2"]
# The service each group runs here (the reference cluster's backends also run MinIO and
# OpenSearch; the soak runs what it can start on one machine: etcd, Patroni + PostgreSQL, HAProxy, nginx).
SERVICES = {"backend": ["etcd", "patroni"], "frontend": ["nginx"], "balancer": ["haproxy"]}
ETCD_CLIENT_PORT = 2379
POSTGRES_PORT = 5432
PATRONI_REST_PORT = 8008
SCOPE = "chpki-soak"
PORTS = (ETCD_CLIENT_PORT, 2380, POSTGRES_PORT, PATRONI_REST_PORT, 443)
HTTPS_PORT = 443


@dataclass
class Profile:
    """Lengths in simulated days, turned into seconds of real time by the week's length."""
    weeks: int
    week_seconds: float
    root_days: float          # the first root's validity: it must end inside the run
    leaf_days: float = 397
    renew_days: float = 30
    crl_days: float = 30
    rotate_lead_days: float = 180   # `expiring --within` this before the root ends starts the rotation
    events: dict[int, list[str]] = field(default_factory=dict)

    def seconds(self, days: float) -> int:
        return max(1, round(days * self.week_seconds / 7))

    def period(self, days: float) -> str:
        return f"{self.seconds(days)}s"


def full_profile(weeks: int, week_seconds: float) -> Profile:
    """Five years: growth in year 1, shrinking in year 2, a root that ends in year 4."""
    return Profile(weeks=weeks, week_seconds=week_seconds, root_days=4 * 365,
                   events={26: ["add:frontend-3", "add:backend-4"], 78: ["remove:frontend-2", "remove:backend-2"]})


def ci_profile(week_seconds: float) -> Profile:
    """Twenty weeks with everything in them: growth (week 3), a rotation started when `expiring`
    warns (week 5) and finished once every host runs the new root's leaves, a prune (week 8),
    the first root expiring (week 16), and leaves renewed on their own schedule. Leaves live 10
    weeks and renew 6 weeks before their end: a rollout of every leaf (serial restarts, each
    member healthy before the next) takes longer than one of these short weeks, so the window
    must hold several weekly jobs (production: 397 and 30 days, four jobs)."""
    return Profile(weeks=20, week_seconds=week_seconds, root_days=16 * 7, leaf_days=10 * 7, renew_days=6 * 7,
                   crl_days=14, rotate_lead_days=11 * 7,
                   events={3: ["add:frontend-3", "add:backend-4"], 8: ["remove:frontend-2", "remove:backend-2"]})


def services_of(host: Host) -> list[str]:
    return [s for g in host.groups for s in SERVICES.get(g, [])]


def inventory_text(members: list[str], profile: Profile) -> str:
    """cluster.yml for the hosts in `members`, as an operator would write it."""
    hosts = [ALL_HOSTS[m] for m in members]
    lines = [
        "# Written by scripts/soak: the cluster of one simulated week.",
        f"domain: {DOMAIN}",
        "subject: { O: chpki soak, C: US }",
        "ca:",
        "  common_name: chpki Soak Root CA",
        # rotate-ca's new root: longer than the run (the first root's shorter life is init-ca --validity)
        f"  validity: {profile.period(10 * 365)}",
        "defaults:",
        "  key: ec-p256",
        f"  validity: {profile.period(profile.leaf_days)}",
        f"  renew_before: {profile.period(profile.renew_days)}",
        "hosts:",
    ]
    for h in hosts:
        lines.append(f"  - {{ name: {h.fqdn}, ips: [{h.ip}], groups: [{', '.join(h.groups)}] }}")
    lines.append("vips:")
    for v in VIPS:
        lines.append(f"  - {{ name: {v}, ips: [{VIP_IP}] }}")
    lines += [
        "services:",
        "  etcd:    { hosts: backend, server_cert_mode: both }",
        "  patroni: { hosts: backend, extra_san: [cinc-postgresql-cluster] }",
        "  nginx:   { hosts: frontend, extra_san: [cinc-server-cluster] }",
        "  haproxy: { hosts: balancer }",
    ]
    return "\n".join(lines) + "\n"


def parse_env(path: Path) -> dict[str, str]:
    env = {}
    if not path.is_file():
        return env
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, v = line.split("=", 1)
        env[k.strip()] = v.strip().strip('"')
    return env


def into_root(root: Path, value: str) -> str:
    """An absolute host path of a rendered snippet, pointed into the host's directory root."""
    return str(root / value.lstrip("/")) if value.startswith("/") else value


class Layout:
    """Where everything of a run lives under --out."""

    def __init__(self, out: Path):
        self.out = out
        self.ca = out / "ca"
        self.inventory = out / "cluster.yml"
        self.passphrase = out / "passphrase"
        self.root_passphrase = out / "root-passphrase"
        self.bundles = out / "bundles"
        self.hosts = out / "hosts"
        self.run = out / "run"
        self.endpoints = out / "endpoints.json"
        self.probe_log = out / "probe.jsonl"
        self.actions = out / "actions.jsonl"
        self.weeks = out / "weeks.jsonl"
        self.events = out / "events.jsonl"
        self.stop_file = out / "stop"

    def root(self, short: str) -> Path:
        return self.hosts / ALL_HOSTS[short].fqdn

    def rundir(self, short: str) -> Path:
        # 0755 whatever the umask (chpki runs its commands with 077): the postgres user must reach
        # its member's directory below
        d = self.run / short
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o755)
        return d

    def system_bundle(self, short: str) -> Path:
        return self.root(short) / "etc/ssl/certs/ca-certificates.crt"


def etcd_launch(layout: Layout, short: str) -> dict:
    """etcd's process from the host's installed tls.env (and bootstrap settings, when chpki writes
    them apart), its /etc paths pointed into the host's root and a data directory of its own."""
    root = layout.root(short)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    for name in ("etc/etcd/bootstrap.env", "etc/etcd/tls.env"):
        for k, v in parse_env(root / name).items():
            env[k] = into_root(root, v)
    env["ETCD_DATA_DIR"] = str(layout.rundir(short) / "etcd.data")
    env["ETCD_LOG_OUTPUTS"] = "stderr"
    env["ETCD_LOG_LEVEL"] = "warn"
    env.pop("ETCD_WAL_DIR", None)
    return {"argv": ["etcd"], "env": env}


def haproxy_config(layout: Layout, short: str) -> Path:
    """A TLS frontend built from the host's installed chpki-tls.cfg: its bind lines (the VIP's
    address replaced by the host's own, see VIP_IP) with every crt path inside the host's root."""
    host = ALL_HOSTS[short]
    root = layout.root(short)
    snippet = (root / "etc/haproxy/chpki-tls.cfg").read_text()
    binds = []
    for line in snippet.splitlines():
        line = line.strip()
        if not line.startswith("bind "):
            continue
        words = line.split()
        words[1] = f"{host.ip}:{words[1].rsplit(':', 1)[1]}"
        words = [into_root(root, w) if w.startswith("/") else w for w in words]
        binds.append("    " + " ".join(words))
    run = layout.rundir(short)
    cfg = "\n".join([
        "global",
        f"    pidfile {run}/haproxy.pid",
        "    maxconn 256",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 5s",
        "    timeout server 5s",
        "frontend tls",
        *binds,
        "    http-request return status 200 content-type text/plain string ok",
        "",
    ])
    path = run / "haproxy.cfg"
    path.write_text(cfg)
    return path


def haproxy_launch(layout: Layout, short: str) -> dict:
    cfg = haproxy_config(layout, short)
    # Master-worker: SIGUSR2 to the master rereads the configuration and every crt file, as
    # `systemctl reload haproxy` does on Debian.
    return {"argv": ["haproxy", "-W", "-db", "-f", str(cfg)], "env": {"PATH": os.environ.get("PATH", "")}}


def nginx_config(layout: Layout, short: str) -> Path:
    host = ALL_HOSTS[short]
    root = layout.root(short)
    settings = (root / "etc/cinc-project/cinc-server.rb.tls").read_text()
    found = dict(re.findall(r"nginx\['(ssl_certificate(?:_key)?)'\]\s*=\s*'([^']*)'", settings))
    run = layout.rundir(short)
    cfg = "\n".join([
        f"pid {run}/nginx.pid;",
        f"error_log {run}/nginx-error.log warn;",
        "worker_processes 1;",
        "events { worker_connections 128; }",
        "http {",
        "    access_log off;",
        f"    client_body_temp_path {run}/nginx-body;",
        f"    proxy_temp_path {run}/nginx-proxy;",
        f"    fastcgi_temp_path {run}/nginx-fastcgi;",
        f"    uwsgi_temp_path {run}/nginx-uwsgi;",
        f"    scgi_temp_path {run}/nginx-scgi;",
        "    server {",
        f"        listen {host.ip}:{HTTPS_PORT} ssl;",
        f"        ssl_certificate {into_root(root, found['ssl_certificate'])};",
        f"        ssl_certificate_key {into_root(root, found['ssl_certificate_key'])};",
        "        location / { return 200 'ok'; }",
        "    }",
        "}",
        "",
    ])
    path = run / "nginx.conf"
    path.write_text(cfg)
    return path


def nginx_launch(layout: Layout, short: str) -> dict:
    cfg = nginx_config(layout, short)
    return {"argv": ["nginx", "-c", str(cfg), "-g", "daemon off; master_process on;"],
            "env": {"PATH": os.environ.get("PATH", "")}}


def _into_root_deep(root: Path, value):
    if isinstance(value, dict):
        return {k: _into_root_deep(root, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_into_root_deep(root, v) for v in value]
    if isinstance(value, str) and value.startswith("/etc/"):
        return into_root(root, value)
    return value


def _merge(base: dict, extra: dict) -> dict:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
    return base


def postgres_bin_dir() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if not versions:
        raise RuntimeError("no PostgreSQL in /usr/lib/postgresql (scripts/test installs it)")
    return versions[-1].parent


def patroni_home(layout: Layout, short: str) -> Path:
    """The member's data directory and socket: the postgres user's, not the host root's."""
    import pwd
    home = layout.rundir(short) / "patroni"
    (home / "sock").mkdir(parents=True, exist_ok=True)
    pg = pwd.getpwnam("postgres")
    for p in (home, home / "sock"):
        os.chown(p, pg.pw_uid, pg.pw_gid)
    return home


def patroni_config(layout: Layout, short: str) -> Path:
    """The installed tls.yml, as is (paths into the root), merged into what the operator adds:
    scope, name, data_dir, bin_dir and the socket directory."""
    import yaml
    root = layout.root(short)
    tls = _into_root_deep(root, yaml.safe_load((root / "etc/patroni/tls.yml").read_text()))
    home = patroni_home(layout, short)
    config = _merge({
        "scope": SCOPE, "name": ALL_HOSTS[short].fqdn, "log": {"level": "WARNING"},
        "bootstrap": {"dcs": {"ttl": 20, "loop_wait": 2, "retry_timeout": 5,
                              "postgresql": {"use_pg_rewind": False,
                                             "parameters": {"max_wal_senders": 10, "wal_keep_size": "64MB"}}},
                      "initdb": [{"encoding": "UTF8"}]},
        "postgresql": {"data_dir": str(home / "data"), "bin_dir": str(postgres_bin_dir()), "pg_ctl_timeout": 60,
                       "parameters": {"unix_socket_directories": str(home / "sock"), "fsync": "off",
                                      "shared_buffers": "32MB"}},
    }, tls)
    path = home / "patroni.yml"
    tmp = home / ".patroni.yml.tmp"
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    import pwd
    pg = pwd.getpwnam("postgres")
    os.chown(tmp, pg.pw_uid, pg.pw_gid)
    os.replace(tmp, path)
    return path


def patroni_executable() -> str:
    venv = Path(os.environ.get("CHPKI_PATRONI_VENV", "/opt/chpki-test-venv")) / "bin/patroni"
    return str(venv)


def patroni_launch(layout: Layout, short: str) -> dict:
    cfg = patroni_config(layout, short)
    home = cfg.parent
    return {"argv": [patroni_executable(), str(cfg)], "user": "postgres", "cwd": str(home),
            "env": {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "LANG": "C.UTF-8"}}


def postmaster_pid(layout: Layout, short: str) -> int | None:
    try:
        return int((layout.rundir(short) / "patroni/data/postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


LAUNCHERS = {"etcd": etcd_launch, "patroni": patroni_launch, "haproxy": haproxy_launch, "nginx": nginx_launch}


def endpoints(layout: Layout, members: list[str]) -> list[dict]:
    """What the probe checks, each verified against the trust installed on the host it calls from:
    etcd from backend-1 (its etcd CA file and client certificate), the VIPs through each balancer
    from frontend-1 (its activated system bundle), each frontend's nginx from haproxy-1 (idem)."""
    out = []
    caller = layout.root("backend-1")
    pki = caller / "etc/etcd/pki"
    for m in members:
        h = ALL_HOSTS[m]
        if "etcd" in services_of(h):
            out.append({"name": f"etcd@{m}", "address": h.ip, "port": ETCD_CLIENT_PORT, "protocol": "etcd",
                        "server_name": h.fqdn, "cafile": str(pki / "ca.pem"),
                        "certfile": str(pki / "client.pem"), "keyfile": str(pki / "client-key.pem")})
    ssl_dir = caller / "etc/ssl"
    for m in members:
        h = ALL_HOSTS[m]
        if "patroni" in services_of(h):
            for protocol, port in (("postgres", POSTGRES_PORT), ("patroni-rest", PATRONI_REST_PORT)):
                out.append({"name": f"{protocol}@{m}", "address": h.ip, "port": port, "protocol": protocol,
                            "server_name": h.fqdn, "cafile": str(ssl_dir / "root-ca.pem"),
                            "certfile": str(ssl_dir / "patroni-client.pem"), "keyfile": str(ssl_dir / "patroni-client.key")})
    for m in members:
        h = ALL_HOSTS[m]
        if "haproxy" in services_of(h):
            for v in VIPS:
                out.append({"name": f"{v}@{m}", "address": h.ip, "port": HTTPS_PORT, "protocol": "tls",
                            "server_name": f"{v}.{DOMAIN}", "cafile": str(layout.system_bundle("frontend-1")),
                            "certfile": None, "keyfile": None})
        if "nginx" in services_of(h):
            out.append({"name": f"nginx@{m}", "address": h.ip, "port": HTTPS_PORT, "protocol": "tls",
                        "server_name": h.fqdn, "cafile": str(layout.system_bundle("haproxy-1")),
                        "certfile": None, "keyfile": None})
    return out


def write_json_atomically(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
