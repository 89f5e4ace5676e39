"""The simulated weeks. Week 0 builds the CA and the cluster; each week after, at its time on the
real clock, the operator's scheduled events happen (hosts join or leave, the root's rotation as
docs/lifecycle.md prescribes) and then the real weekly job runs: what the systemd timer runs on a
controller (scripts/chpki-rotate: renew what is due, bundle, roll out what changed)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from . import cluster, hostctl

SCRIPTS = Path(__file__).resolve().parent.parent
SOAK = SCRIPTS / "soak"
ROTATE = SCRIPTS / "chpki-rotate"


class Run:
    def __init__(self, layout: cluster.Layout, profile: cluster.Profile, chpki: str):
        self.layout = layout
        self.profile = profile
        self.chpki = chpki
        self.members = list(cluster.INITIAL)
        self.serving = set(cluster.INITIAL)
        self.week = 0
        self.rotation = None  # None, "started" (new root, overlap) or "finished"
        self.old_root_not_after = None
        self.probe = None
        self.t0 = 0.0
        self.t0_epoch = time.time()

    # -- tools ------------------------------------------------------------------------------

    def log(self, text: str) -> None:
        stamp = datetime.now(timezone.utc).strftime("%H:%M:%S")
        print(f"soak [{stamp} week {self.week}] {text}", flush=True)

    def chpki_run(self, *args, check=True) -> subprocess.CompletedProcess:
        l = self.layout
        argv = [self.chpki, *args, "--ca-dir", str(l.ca), "--inventory", str(l.inventory)]
        res = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
        if check and res.returncode != 0:
            raise RuntimeError(f"chpki {' '.join(args)} failed ({res.returncode}): {res.stderr.strip()}")
        return res

    def event(self, kind: str, **detail) -> None:
        with open(self.layout.events, "a") as f:
            f.write(json.dumps({"week": self.week, "t": time.time(), "kind": kind, **detail}) + "\n")
        self.log(f"event {kind} {detail or ''}")

    def etcdctl(self, *args) -> subprocess.CompletedProcess:
        """etcdctl as the operator runs it on backend-1, with its installed client certificate."""
        pki = self.layout.root("backend-1") / "etc/etcd/pki"
        eps = ",".join(f"https://{cluster.ALL_HOSTS[m].ip}:{cluster.ETCD_CLIENT_PORT}"
                       for m in self.members if "etcd" in cluster.services_of(cluster.ALL_HOSTS[m]))
        argv = ["etcdctl", f"--endpoints={eps}", f"--cacert={pki / 'ca.pem'}", f"--cert={pki / 'client.pem'}",
                f"--key={pki / 'client-key.pem'}", "--dial-timeout=3s", "--command-timeout=10s", *args]
        return subprocess.run(argv, capture_output=True, text=True, env={"ETCDCTL_API": "3", "PATH": os.environ["PATH"]},
                              timeout=60)

    # -- week 0 -----------------------------------------------------------------------------

    HOSTS_FILE = Path("/etc/hosts")
    HOSTS_MARK = "# chpki soak"

    def names_in_etc_hosts(self, present: bool) -> None:
        """The soak's host names resolve while it runs (an operator has DNS: a health check a site
        writes without an address goes to the host's name); lines marked as the soak's, left by a
        run that was killed, are dropped too."""
        kept = [l for l in self.HOSTS_FILE.read_text().splitlines(keepends=True) if self.HOSTS_MARK not in l]
        if kept and not kept[-1].endswith("\n"):
            kept[-1] += "\n"
        if present:
            kept += [f"{h.ip} {h.fqdn} {h.short}  {self.HOSTS_MARK}\n" for h in cluster.ALL_HOSTS.values()]
        self.HOSTS_FILE.write_text("".join(kept))

    def setup(self) -> None:
        l = self.layout
        self.names_in_etc_hosts(True)
        for d in (l.out, l.hosts, l.run):
            d.mkdir(parents=True, exist_ok=True)
        for path in (l.passphrase, l.root_passphrase):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, (secrets.token_urlsafe(24) + "\n").encode())
            os.close(fd)
        self.write_inventory()
        # The first root ends inside the run; the one rotate-ca makes lasts (the inventory's ca.validity).
        self.chpki_run("init-ca", "--validity", self.profile.period(self.profile.root_days),
                       "--passphrase-file", str(l.passphrase), "--root-passphrase-file", str(l.root_passphrase))
        self.chpki_run("issue", "--passphrase-file", str(l.passphrase))
        self.old_root_not_after = self.root_not_after()
        self.weekly_job(first=True)
        for m in self.members:
            for service in cluster.services_of(cluster.ALL_HOSTS[m]):
                if hostctl.pid_of(l, m, service) is None:
                    raise RuntimeError(f"week 0: the rollout did not start {service} on {m}")
        self.wait_healthy()
        self.prepare_database()
        self.wait_serving(self.members)
        self.publish_endpoints()
        self.probe = subprocess.Popen([sys.executable, str(SOAK), "probe", "--out", str(l.out)],
                                      stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_healthy(self, timeout=60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            res = self.etcdctl("endpoint", "health")
            if res.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"etcd not healthy: {res.stdout}{res.stderr}")
            time.sleep(0.5)

    def wait_serving(self, hosts: list[str], timeout=180) -> bool:
        """Until every endpoint of `hosts` passes the probe's own check (a replica that is still
        copying its data answers 503: it is not serving yet, and the probe starts counting when
        the operator would: once the host is up)."""
        from . import probe
        wanted = [e for e in cluster.endpoints(self.layout, self.members) if e["name"].split("@")[-1] in hosts]
        deadline = time.monotonic() + timeout
        while True:
            failing = [(e["name"], why) for e in wanted if (why := probe.check(e)) is not None]
            if not failing:
                return True
            if time.monotonic() > deadline:
                self.event("not-serving", endpoints=[f"{n}: {w}" for n, w in failing])
                return False
            time.sleep(1)

    def publish_endpoints(self) -> None:
        """endpoints.json: what the probe checks, only hosts that have served once (see wait_serving)."""
        live = [e for e in cluster.endpoints(self.layout, self.members) if e["name"].split("@")[-1] in self.serving]
        cluster.write_json_atomically(self.layout.endpoints, live)

    def patroni_members(self) -> list[str]:
        return [m for m in self.members if "patroni" in cluster.services_of(cluster.ALL_HOSTS[m])]

    def leader(self) -> str | None:
        """The member whose REST API says it is the primary (with backend-1's ctl certificate)."""
        import ssl, http.client
        pki = self.layout.root("backend-1") / "etc/ssl"
        ctx = ssl.create_default_context(cafile=str(pki / "root-ca.pem"))
        ctx.load_cert_chain(str(pki / "patroni-client.pem"), str(pki / "patroni-client.key"))
        for m in self.patroni_members():
            host = cluster.ALL_HOSTS[m]
            try:
                conn = http.client.HTTPSConnection(host.ip, cluster.PATRONI_REST_PORT, context=ctx, timeout=3)
                conn.request("GET", "/primary")
                if conn.getresponse().status == 200:
                    return m
            except (OSError, ssl.SSLError, http.client.HTTPException):
                continue
        return None

    def psql(self, short: str, sql: str) -> subprocess.CompletedProcess:
        """psql as the superuser over the member's Unix socket (pg_hba.conf: local ... peer)."""
        home = self.layout.rundir(short) / "patroni"
        import pwd
        pg = pwd.getpwnam("postgres")
        return subprocess.run([str(cluster.postgres_bin_dir() / "psql"), "-X", "-tA", "-h", str(home / "sock"),
                               "-p", str(cluster.POSTGRES_PORT), "-U", "postgres", "-d", "postgres", "-c", sql],
                              capture_output=True, text=True, user=pg.pw_uid, group=pg.pw_gid, extra_groups=[],
                              cwd=home, timeout=60)

    def prepare_database(self, timeout=180) -> None:
        """Waits for a leader, then makes the probe's table (role patroni may write it)."""
        deadline = time.monotonic() + timeout
        while (leader := self.leader()) is None:
            if time.monotonic() > deadline:
                raise RuntimeError("no Patroni leader")
            time.sleep(1)
        res = self.psql(leader, "CREATE TABLE IF NOT EXISTS soak_probe (seq bigint, at timestamptz DEFAULT now()); "
                                "GRANT INSERT, SELECT ON soak_probe TO patroni;")
        if res.returncode != 0:
            raise RuntimeError(f"psql on {leader}: {res.stderr.strip()}")

    # What a host has before chpki installs anything: the OS's and the service packages'
    # directories (0755, root). chpki's archive carries only its own directories, so the others
    # must exist, as on a real host; a copy command run with chpki's umask (077) would make them
    # private.
    SKELETON = ["etc/ssl/certs", "etc/ssl/private", "etc/pki/ca-trust/source/anchors", "usr/local/share/ca-certificates",
                "var/lib", "etc/etcd", "etc/haproxy", "etc/cinc-project", "etc/opscode"]

    def write_inventory(self) -> None:
        for m in self.members:
            root = self.layout.root(m)
            for d in self.SKELETON:
                path = root / d
                path.mkdir(parents=True, exist_ok=True)
                for p in [path, *path.parents]:
                    if p == root.parent:
                        break
                    p.chmod(0o700 if p.name == "private" else 0o755)
        tmp = self.layout.inventory.with_name(".cluster.yml.tmp")
        tmp.write_text(cluster.inventory_text(self.members, self.profile))
        os.replace(tmp, self.layout.inventory)

    def root_not_after(self) -> float:
        res = self.chpki_run("list", "--json")
        roots = [c for c in json.loads(res.stdout) if c.get("kind") == "ca" and c.get("status") == "valid"]
        ends = [datetime.fromisoformat(c["not_after"].replace("Z", "+00:00")).timestamp() for c in roots]
        return max(ends) if ends else 0.0

    # -- the weekly job ---------------------------------------------------------------------

    def weekly_job(self, first=False, issue=False) -> dict:
        """scripts/chpki-rotate as the timer runs it, its copy and run commands pointed at the
        hosts' directory roots and their stand-in for systemctl (soaklib/hostctl.py)."""
        l = self.layout
        argv = [str(ROTATE), "--chpki", self.chpki, "--ca-dir", str(l.ca), "--inventory", str(l.inventory),
                "--out", str(l.bundles), "--passphrase-file", str(l.passphrase),
                "--copy", f"tar -xzpf - -C {l.hosts}/{{host}}",
                "--run", f"{sys.executable} {SOAK} hostctl --out {l.out} {{host}} {{command}}",
                "--operations", str(self.operations_file()),
                # Its Patroni acts on a SIGHUP within its loop_wait of 2 s (cluster.patroni_config),
                # not the default 10 s the rollout's default grace allows for.
                "--stale-grace", "4s"]
        if issue:
            argv.append("--issue")
        before = self.snapshot()
        started = time.monotonic()
        actions_before = self.count_actions()
        res = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=900)
        seconds = time.monotonic() - started
        after = self.snapshot()
        week = {"week": self.week, "t": time.time(), "seconds": round(seconds, 2), "exit": res.returncode,
                "renewed": len(set(after["serials"]) - set(before["serials"])),
                "copied": sum(1 for h, d in after["records"].items() if before["records"].get(h) != d),
                "reloaded": self.count_actions() - actions_before}
        with open(l.weeks, "a") as f:
            f.write(json.dumps(week) + "\n")
        (l.run / f"week-{self.week:03d}.log").write_text(res.stdout + res.stderr)
        if res.returncode != 0:
            self.log(f"weekly job failed ({res.returncode}): {res.stderr.strip()[-400:]}")
            self.event("weekly-job-failed", exit=res.returncode)
        else:
            self.log(f"weekly job: renewed {week['renewed']}, copied {week['copied']}, reloaded {week['reloaded']} in {seconds:.1f}s")
        return week

    def operations_file(self) -> Path:
        """The soak's site overrides (docs/rollout.md): its balancers serve the VIPs on their own
        addresses (two can't bind one VIP on one machine), so their health check leaves the
        address to each host. Patroni's on_leaf is the descriptor's (one reload, then PostgreSQL's),
        written out: the soak's must not depend on a default it tests."""
        path = self.layout.out / "operations.yml"
        if not path.exists():
            path.write_text("haproxy:\n  health:\n" + "".join(
                f"    - {{kind: tls, port: {cluster.HTTPS_PORT}, server_name: {v}.{cluster.DOMAIN}}}\n" for v in cluster.VIPS)
                # One reload: when it applied only patroni.yml, the rollout's check sees the old
                # certificate and runs these once more (the weekly job's --stale-grace).
                + "patroni:\n  on_leaf:\n    - [systemctl, reload, patroni]\n"
                "    - [runuser, -u, postgres, --, psql, -X, -q, -c, SELECT pg_reload_conf()]\n")
        return path

    def snapshot(self) -> dict:
        serials = []
        if (self.layout.ca / "ca.db").exists():
            res = self.chpki_run("list", "--json", check=False)
            if res.returncode == 0:
                serials = [c["serial"] for c in json.loads(res.stdout)]
        records = {}
        for state in (self.layout.ca / "installed",):
            if state.is_dir():
                for p in state.glob("*.json"):
                    records[p.stem] = p.read_bytes()
        return {"serials": serials, "records": records}

    def count_actions(self) -> int:
        try:
            return sum(1 for _ in open(self.layout.actions))
        except OSError:
            return 0

    def patronictl(self, short: str, *args) -> None:
        res = hostctl.patronictl(self.layout, short, list(args))
        if res.returncode != 0:
            raise RuntimeError(f"patronictl {' '.join(args)}: {res.stderr.strip()[-300:]}")

    # -- the operator's events --------------------------------------------------------------

    def add_host(self, short: str) -> None:
        host = cluster.ALL_HOSTS[short]
        self.members.append(short)
        self.write_inventory()
        # growth beyond the intermediate's name constraints: the root signs a new one (docs/growth.md)
        self.chpki_run("issue", "--passphrase-file", str(self.layout.passphrase),
                       "--root-passphrase-file", str(self.layout.root_passphrase))
        if "etcd" in cluster.services_of(host):
            # docs/growth.md: the member is added before it first starts
            res = self.etcdctl("member", "add", host.fqdn, f"--peer-urls=https://{host.ip}:2380")
            if res.returncode != 0:
                raise RuntimeError(f"etcdctl member add {host.fqdn}: {res.stderr.strip()}")
        self.event("host-added", host=host.fqdn)

    def remove_host(self, short: str) -> None:
        host = cluster.ALL_HOSTS[short]
        if "patroni" in cluster.services_of(host) and self.leader() == short:
            # the operator moves the leader away before taking its host down
            candidate = next(m for m in self.patroni_members() if m != short)
            started = time.time()
            self.patronictl(short, "switchover", "--leader", host.fqdn, "--candidate",
                            cluster.ALL_HOSTS[candidate].fqdn, "--force")
            # A switchover has a moment with no primary (demote, then promote): the report counts
            # the writes that fail in it apart (report.switchover_gaps), not as the rollout's.
            self.event("leader-switchover", host=host.fqdn, started=started)
        if "etcd" in cluster.services_of(host):
            res = self.etcdctl("member", "list", "-w", "json")
            ids = [m["ID"] for m in json.loads(res.stdout or "{}").get("members", []) if m.get("name") == host.fqdn]
            for member_id in ids:
                res = self.etcdctl("member", "remove", format(member_id, "x"))
                if res.returncode != 0:
                    raise RuntimeError(f"etcdctl member remove {host.fqdn}: {res.stderr.strip()}")
        self.members.remove(short)
        self.serving.discard(short)
        self.publish_endpoints()
        for service in cluster.services_of(host):
            hostctl.stop(self.layout, short, service)
        self.write_inventory()
        self.chpki_run("issue", "--prune", "--passphrase-file", str(self.layout.passphrase))
        self.event("host-removed", host=host.fqdn)

    def root_policy(self) -> bool:
        """docs/lifecycle.md: `expiring` warns of the root; rotate-ca; the overlap rollout (trust
        everywhere, then leaves from the new root); --finish once every host runs them. Returns
        True when this week's job must re-issue (rotation started)."""
        l = self.layout
        if self.rotation is None:
            res = self.chpki_run("expiring", "--within", self.profile.period(self.profile.rotate_lead_days), "--json",
                                 check=False)
            listed = json.loads(res.stdout or "{}").get("certificates", []) if res.returncode in (0, 1) else []
            due = [c for c in listed if c.get("kind") == "ca"]
            if due:
                self.chpki_run("rotate-ca", "--passphrase-file", str(l.passphrase),
                               "--root-passphrase-file", str(l.root_passphrase))
                self.rotation = "started"
                self.event("rotate-ca-start")
                return True
        elif self.rotation == "started":
            res = self.chpki_run("rotate-ca", "--finish", "--passphrase-file", str(l.passphrase),
                                 "--root-passphrase-file", str(l.root_passphrase), check=False)
            if res.returncode == 0:
                self.rotation = "finished"
                self.event("rotate-ca-finish")
            else:
                self.log(f"rotate-ca --finish not yet: {res.stderr.strip()}")
        return False

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> None:
        # Week 0 is the setup: the first leaves' lifetimes start there, so the calendar does too.
        self.t0 = time.monotonic()
        self.t0_epoch = time.time()
        self.setup()
        expired_seen = False
        for week in range(1, self.profile.weeks + 1):
            wait = self.t0 + week * self.profile.week_seconds - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self.week = week
            for ev in self.profile.events.get(week, []):
                verb, short = ev.split(":")
                self.add_host(short) if verb == "add" else self.remove_host(short)
            issue = self.root_policy()
            self.weekly_job(issue=issue)
            joined = [m for m in self.members if m not in self.serving]
            if joined:
                self.wait_serving(joined)
                self.serving.update(joined)
            self.publish_endpoints()
            if not expired_seen and time.time() > self.old_root_not_after:
                expired_seen = True
                self.event("root-expired")

    def stop(self) -> None:
        self.layout.stop_file.touch()
        self.names_in_etc_hosts(False)
        if self.probe is not None:
            try:
                self.probe.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.probe.kill()
        # Patroni before etcd (it keeps its leader key there), then the rest
        for service in ("patroni", "haproxy", "nginx", "etcd"):
            for short in cluster.ALL_HOSTS:
                if (self.layout.run / short / f"{service}.json").exists():
                    hostctl.stop(self.layout, short, service)
