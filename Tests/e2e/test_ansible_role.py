"""The Ansible role `ansible/roles/chpki_bundle` and the playbook `ansible/rotate.yml` (SPEC §7,
docs/deployment.md), run by real ansible-core against `ansible_connection=local` hosts whose
roots (`chpki_root`) are scratch directories.

What is installed is checked file by file against the bundle tree with Python (bytes, mode,
owner), which hosts reported a change from Ansible's own recap, and which of the rollout plan's
commands ran from marker lines they append to a log (the site's operations file makes every
service's command such a marker; the plan is computed by `chpki rollout-plan` on the controller).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import helpers as h
from conftest import clean_env
from lifecycle_support import REPO, make_ca
from test_rotate_changes import MOVED, NEW_IP, OLD_IP, SERVICES, bundle_snapshot, changed_services, manifest_path

PLAYBOOK = REPO / "ansible" / "rotate.yml"
HOSTS = ["backend-1.chpki.test", "haproxy-1.chpki.test"]
KNOWN = ["trust", "opensearch", "patroni", "etcd", "minio", "haproxy", "nginx"]


def ansible_playbook() -> str:
    path = shutil.which("ansible-playbook")
    if not path:
        pytest.fail("ansible-playbook is not installed (pip install -r Tests/e2e/requirements.txt)")
    return path


class Site:
    """A CA, its bundles, an Ansible inventory of local hosts with scratch roots, and a log that the
    reload commands and health checks append to."""

    def __init__(self, chpki_bin, tmp_path: Path):
        self.tmp = tmp_path
        self.ca = make_ca(chpki_bin, tmp_path / "ca")
        self.out = tmp_path / "bundles"
        self.roots = tmp_path / "roots"
        self.log = tmp_path / "handlers.log"
        self.bundle()
        inventory = {"all": {
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"},
            "hosts": {host: {"chpki_root": str(self.roots / host.split(".")[0])} for host in HOSTS}}}
        self.inventory = tmp_path / "hosts.yml"
        self.inventory.write_text(json.dumps(inventory))
        log = str(self.log)
        self.state = tmp_path / "installed"
        operations = tmp_path / "operations.yml"
        # The anchors' command also counts the leaves the host has at that moment (trust first: none yet).
        anchors = json.dumps(f'r={self.roots}/${{CHPKI_HOST%%.*}}; n=$(find "$r" -type f \\( -name "server*.pem" -o -name public.crt '
                             f'-o -name full-chain.crt -o -path "*/haproxy/*.pem" \\) 2>/dev/null | wc -l); '
                             f'echo "reload $CHPKI_HOST trust leaves=$n" >> {log}')
        operations.write_text("".join(
            f"{s}: {{on_leaf: [[sh, -c, 'echo \"reload $CHPKI_HOST {s}\" >> {log}']], "
            f"on_trust: [[sh, -c, 'echo \"reload $CHPKI_HOST {s}\" >> {log}']], health: []}}\n" for s in KNOWN if s != "trust")
            + f"trust: {{on_leaf: [[sh, -c, {anchors}]], on_trust: [[sh, -c, {anchors}]], health: []}}\n")
        self.vars = tmp_path / "vars.json"
        self.vars.write_text(json.dumps({
            "chpki_bundle_dir": str(self.out),
            "chpki_state_dir": str(self.state),
            "chpki_operations": str(operations),
            "chpki_binary": str(self.ca.tool.path),
            "chpki_become": False,
            # the health check of a service passes only once its reload ran
            "chpki_health_checks": {s: f"grep -qx 'reload {{{{ inventory_hostname }}}} {s}' {log} && "
                                       f"echo 'healthy {{{{ inventory_hostname }}}} {s}' >> {log}" for s in KNOWN if s != "trust"},
            "chpki_health_retries": 1, "chpki_health_delay": 0,
        }))

    def bundle(self):
        h.assert_ok(self.ca.signed("bundle", "--out", self.out, "--tar"))

    def play(self, *args) -> tuple[subprocess.CompletedProcess, dict[str, int]]:
        env = clean_env({"ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_RETRY_FILES_ENABLED": "0",
                         "ANSIBLE_LOCAL_TEMP": self.tmp / "ansible-local", "ANSIBLE_REMOTE_TEMP": self.tmp / "ansible-remote",
                         "ANSIBLE_CONFIG": self.tmp / "no-ansible.cfg", "ANSIBLE_PIPELINING": "1",
                         # chpki "on the host": the role runs chpki verify --installed when it can
                         "PATH": f"{Path(self.ca.tool.path).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"})
        res = subprocess.run([ansible_playbook(), "-i", str(self.inventory), str(PLAYBOOK), "-e", f"@{self.vars}", *args],
                             cwd=str(self.tmp), env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=900)
        changed = {m.group(1): int(m.group(2))
                   for m in re.finditer(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", res.stdout, re.M)}
        return res, changed

    def ok(self, *args) -> dict[str, int]:
        res, changed = self.play(*args)
        assert res.returncode == 0 and sorted(changed) == HOSTS, h.describe(res)
        self.last = res
        return changed

    def events(self) -> list[tuple]:
        lines = [tuple(l.split()) for l in self.log.read_text().splitlines()] if self.log.exists() else []
        self.log.unlink(missing_ok=True)
        return lines

    def root(self, host: str) -> Path:
        return self.roots / host.split(".")[0]


def owner_here(name: str) -> str:
    """The owner the role must give a file: the manifest's, when that user exists here, else root."""
    try:
        pwd.getpwnam(name)
        return name
    except KeyError:
        return "root"


def check_installed(site: Site, host: str):
    tree, root = site.out / host, site.root(host)
    manifest = json.loads(manifest_path(tree).read_text())
    for f in manifest["files"]:
        target = root / f["path"]
        assert target.is_file() and not target.is_symlink(), f"{host}: {f['path']} not installed"
        assert target.read_bytes() == (tree / f["path"]).read_bytes(), f"{host}: {f['path']} differs from the bundle"
        st = target.stat()
        assert f"{st.st_mode & 0o7777:04o}" == f["mode"], f"{host}: {f['path']} mode {st.st_mode & 0o7777:o}"
        assert pwd.getpwuid(st.st_uid).pw_name == owner_here(f["owner"]), f"{host}: {f['path']} owner"
        if f["path"].endswith((".key", "-key.pem")) or "private" in f["path"]:
            assert st.st_mode & 0o077 == 0, f"{host}: the private key {f['path']} is readable by others"
    for d in manifest.get("directories", []):
        st = (root / d["path"]).stat()
        assert f"{st.st_mode & 0o7777:04o}" == d["mode"], f"{host}: directory {d['path']}"
    installed = root / "var/lib/chpki/MANIFEST.json"
    assert installed.read_bytes() == manifest_path(tree).read_bytes(), f"{host}: the installed manifest"


def test_role_installs_idempotently_and_reloads_what_changed(chpki_bin, tmp_path):
    site = Site(chpki_bin, tmp_path)

    # --check on hosts that never had a bundle: reports the changes, writes nothing, reloads nothing
    changed = site.ok("--check")
    assert all(changed[host] > 0 for host in HOSTS), site.last.stdout
    assert not site.roots.exists(), "--check wrote under the hosts' roots"
    assert site.events() == [], "--check ran a reload command"

    # the first run installs everything and runs the plan's commands for every service of each
    # host (the site's operations: trust too), then checks health, then records the host
    site.ok()
    for host in HOSTS:
        check_installed(site, host)
        assert json.loads((site.state / f"{host}.json").read_text()) == json.loads(manifest_path(site.out / host).read_text())
    events = site.events()
    for host in HOSTS:
        assert {e[2] for e in events if e[:2] == ("reload", host)} == SERVICES[host], events
        assert {e[2] for e in events if e[:2] == ("healthy", host)} == SERVICES[host] - {"trust"}, events
    # trust first: every host's trust step (its anchors' command) before any host's leaves; within a
    # pass, serial: 1: a host is done, health checks included, before the next one starts
    trust_pass = [e for e in events if e[0] == "reload" and e[2] == "trust"]
    first_leaf = next(i for i, e in enumerate(events) if e[0] == "reload" and e[2] != "trust")
    assert len(trust_pass) == len(HOSTS) and all(events.index(e) < first_leaf for e in trust_pass), events
    assert all(e[3:] == ("leaves=0",) for e in trust_pass), f"a leaf was installed before every host trusted its root: {events}"
    leaves_pass = events[first_leaf:]
    assert [e[1] for e in leaves_pass] == sorted(e[1] for e in leaves_pass), events
    if any(owner_here(o) == "root" for o in ("etcd", "minio-user", "opensearch", "postgres")):
        assert "WARNING" in site.last.stdout and "owned by root" in site.last.stdout, "no warning for missing users"

    # a second run: nothing to do
    before = {host: h.snapshot(site.root(host)) for host in HOSTS}
    assert site.ok() == {host: 0 for host in HOSTS}, site.last.stdout
    assert site.events() == []
    assert {host: h.snapshot(site.root(host)) for host in HOSTS} == before

    # backend-2 moves: backend-1 holds its MinIO certificate (CAs/) and names it in etcd's files
    old = bundle_snapshot(site.out)
    text = site.ca.inventory.read_text()
    site.ca.inventory.write_text(text.replace(f"[{OLD_IP}]", f"[{NEW_IP}]"))
    site.ca.issue()
    site.bundle()
    expected = {host: s for host, s in changed_services(old, bundle_snapshot(site.out)).items() if host in HOSTS}
    assert "haproxy-1.chpki.test" not in expected and expected.get("backend-1.chpki.test"), (
        f"scenario: the move changes backend-1's files only: {expected}")
    assert MOVED not in HOSTS

    # --check shows it and changes nothing
    changed = site.ok("--check")
    assert changed["backend-1.chpki.test"] > 0 and changed["haproxy-1.chpki.test"] == 0, site.last.stdout
    assert {host: h.snapshot(site.root(host)) for host in HOSTS} == before, "--check changed an installed file"
    assert site.events() == []

    # the run: the plan's commands for each changed service, on the host whose files changed, and nothing else
    changed = site.ok()
    assert changed["haproxy-1.chpki.test"] == 0, site.last.stdout
    events = site.events()
    assert {(e[1], e[2]) for e in events if e[0] == "reload"} == {("backend-1.chpki.test", s) for s in expected["backend-1.chpki.test"]}
    check_installed(site, "backend-1.chpki.test")
    assert site.ok() == {host: 0 for host in HOSTS}


def test_role_refuses_another_hosts_archive(chpki_bin, tmp_path):
    site = Site(chpki_bin, tmp_path)
    vars_ = json.loads(site.vars.read_text())
    vars_["chpki_archive"] = str(site.out / "frontend-1.chpki.test.tar.gz")
    site.vars.write_text(json.dumps(vars_))
    res, _ = site.play("--limit", "haproxy-1.chpki.test")
    assert res.returncode != 0, h.describe(res)
    assert "no valid chpki manifest for host haproxy-1.chpki.test" in res.stdout, res.stdout
    assert "for host frontend-1.chpki.test" in res.stdout
    assert not site.roots.exists(), "a refused archive installed something"
    assert site.events() == []


SWAP = r'''
import json, os, signal, subprocess, sys
log, config = sys.argv[1], json.load(open(sys.argv[2]))
with open(log, "a") as f:
    f.write("reload " + os.environ.get("CHPKI_HOST", "?") + " patroni\n")
calls = sum(1 for line in open(log) if line.split()[:1] == ["reload"] and line.split()[2:3] == ["patroni"])
if calls == config["fix_on"]:
    os.kill(int(open(config["pidfile"]).read()), signal.SIGKILL)
    p = subprocess.Popen(config["serve"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    open(config["pidfile"], "w").write(str(p.pid))
'''


def test_rotate_waits_for_chpki_checks_and_runs_a_stale_services_commands_once_more(chpki_bin, tmp_path):
    """Patroni's check (chpki's, from the controller: a TLS handshake whose leaf must be the installed
    server-cert.pem) against an openssl s_server that serves backend-1's etcd certificate (same name,
    same root, another leaf): stale. The playbook runs patroni's command once more, which restarts the
    server with the installed certificate; the check then passes and the host is recorded."""
    import signal
    site = Site(chpki_bin, tmp_path)
    host = "backend-1.chpki.test"
    tree = site.out / host
    port = h.free_port()

    def serve(cert: str, key: str) -> list[str]:
        return ["openssl", "s_server", "-quiet", "-www", "-accept", f"127.0.0.1:{port}", "-cert", str(tree / cert),
                "-cert_chain", str(tree / cert), "-key", str(tree / key)]

    pidfile = tmp_path / "server.pid"
    server = subprocess.Popen(serve("etc/etcd/pki/server.pem", "etc/etcd/pki/server-key.pem"), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    pidfile.write_text(str(server.pid))
    try:
        h.wait_listening(port)
        config = tmp_path / "swap.json"
        config.write_text(json.dumps({"fix_on": 2, "pidfile": str(pidfile),
                                      "serve": serve("etc/ssl/server-cert.pem", "etc/ssl/private.key")}))
        script = tmp_path / "swap.py"
        script.write_text(SWAP)
        operations = Path(json.loads(site.vars.read_text())["chpki_operations"])
        lines = [line for line in operations.read_text().splitlines() if not line.startswith("patroni:")]
        python = json.dumps(os.environ.get("CHPKI_TEST_PYTHON", shutil.which("python3") or "python3"))
        lines.append(f"patroni: {{on_leaf: [[{python}, {script}, {site.log}, {config}]], on_trust: [[{python}, {script}, {site.log}, {config}]], "
                     f"health: [{{kind: tls, port: {port}, address: 127.0.0.1, server_name: {host}, cafile: /etc/ssl/root-ca.pem}}]}}")
        operations.write_text("\n".join(lines) + "\n")
        vars_ = json.loads(site.vars.read_text())
        vars_.update({"chpki_stale_grace": "1s", "chpki_health_timeout": "10s", "chpki_health_checks": {}})
        site.vars.write_text(json.dumps(vars_))

        site.ok()
        events = site.events()
        assert [e for e in events if e[:3] == ("reload", host, "patroni")] == [("reload", host, "patroni")] * 2, events
        assert "chpki's health checks of the step again" in site.last.stdout, site.last.stdout
        assert json.loads((site.state / f"{host}.json").read_text()) == json.loads(manifest_path(tree).read_text())
    finally:
        try:
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
        server.wait()
