"""`chpki rollout`'s PostgreSQL health check against a real PostgreSQL (SPEC §7, issue 17): the
server test_bundle_servers.py starts from a backend's bundle (its server certificate, its CA file,
pg_hba.conf requiring client certificates). A rollout of that backend, with the site override
`patroni: health: [{kind: postgres, ...}]`, passes its health check: the SSLRequest, a handshake
verified against the host's installed trust and server name, with the host's Patroni client
certificate, and an answer to the startup packet. The same check naming another host's name, or
trusting another root, fails the step and leaves the host unrecorded. (TLS, etcd and Patroni REST
checks: HealthProbeTests against openssl s_server, test_rollout_etcd.py against etcd.)

A service that answers with another certificate than the one the step installed is stale: the
step's commands for it run once more (then it passes, when that made it take the file), and if it
still serves the old one the step fails, naming both serials, the host unrecorded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import helpers as h
from test_bundle_servers import bundle, inv, pki, postgres  # noqa: F401 (fixtures)

SERVICES = ("opensearch", "patroni", "etcd", "minio", "trust")


def operations(path: Path, pg, server_name: str, cafile: str = "/etc/ssl/root-ca.pem") -> Path:
    lines = [f"{s}: {{on_leaf: [[noop, {s}]], on_trust: [[noop, {s}]], health: []}}" for s in SERVICES if s != "patroni"]
    lines.append(f"patroni: {{on_leaf: [[noop, patroni]], on_trust: [[noop, patroni]], health: [{{kind: postgres, "
                 f"port: {pg.port}, address: 127.0.0.1, server_name: {server_name}, cafile: {cafile}, "
                 f"certfile: /etc/ssl/patroni-client.pem, keyfile: /etc/ssl/patroni-client.key}}]}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_postgres_health_check_passes_against_postgres_and_fails_on_a_wrong_name(postgres, bundle, pki, inv, tmp_path):  # noqa: F811
    host = postgres.host
    root = tmp_path / "roots" / host.fqdn
    root.mkdir(parents=True)
    state = tmp_path / "state"

    def rollout(ops: Path):
        return pki.tool.run("rollout", "--bundles", bundle.out, "--state", state, "--operations", ops, "--hosts", host.short,
                            "--copy", f"tar -xzpf - -C {tmp_path}/roots/{{host}}", "--run", f"{sys.executable} -c pass {{command}}",
                            "--health-timeout", "3s", "--json")

    other = next(x for x in inv.members("patroni") if x.fqdn != host.fqdn)
    res = rollout(operations(tmp_path / "wrong-name.yml", postgres, other.fqdn))
    assert res.returncode == 1, h.describe(res)
    line = h.error_line(res)
    assert "health check" in line and "service patroni" in line and "does not verify" in line and other.fqdn in line, line
    assert not (state / f"{host.fqdn}.json").exists()

    res = rollout(operations(tmp_path / "ok.yml", postgres, host.fqdn))
    assert res.returncode == 0, h.describe(res)
    steps = json.loads(res.stdout)["steps"]
    assert any(s["health"] and s["status"] == "done" for s in steps), steps
    assert json.loads((state / f"{host.fqdn}.json").read_text())["host"] == host.fqdn


# --- A service that answers with its old certificate (stale) --------------------------------------

SWAP = r'''
import json, os, signal, subprocess, sys
log, config = sys.argv[1], json.load(open(sys.argv[2]))
argv = sys.argv[3:]
with open(log, "a") as f:
    f.write(json.dumps(argv) + "\n")
if argv == ["noop", "patroni"]:
    calls = sum(1 for line in open(log) if json.loads(line) == ["noop", "patroni"])
    if calls == config["fix_on"]:
        os.kill(int(open(config["pidfile"]).read()), signal.SIGKILL)
        p = subprocess.Popen(config["serve"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        open(config["pidfile"], "w").write(str(p.pid))
'''


def s_server(tree: Path, port: int, cert: str, key: str) -> list[str]:
    return ["openssl", "s_server", "-quiet", "-www", "-accept", f"127.0.0.1:{port}", "-cert", str(tree / cert),
            "-cert_chain", str(tree / cert), "-key", str(tree / key)]


def serial_hex(path: Path) -> str:
    text = f"{h.load_cert(path).serial_number:X}"
    return text.zfill(len(text) + len(text) % 2)


def stale_rollout(bundle, pki, inv, tmp_path, fix_on: int):
    """Patroni's check (a TLS handshake, leaf: the descriptor's server-cert.pem) against an
    openssl s_server that serves the host's etcd certificate: same name, same root, another leaf.
    Its `on_leaf` (a no-op) is logged; on call `fix_on` the server is restarted with the installed
    certificate, as a second SIGHUP makes Patroni take it."""
    host = inv.members("patroni")[0]
    tree = bundle.tree(host.fqdn)
    port = h.free_port()
    pidfile = tmp_path / "server.pid"
    server = subprocess.Popen(s_server(tree, port, "etc/etcd/pki/server.pem", "etc/etcd/pki/server-key.pem"),
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    pidfile.write_text(str(server.pid))
    try:
        h.wait_listening(port)
        config = tmp_path / "swap.json"
        config.write_text(json.dumps({"fix_on": fix_on, "pidfile": str(pidfile),
                                      "serve": s_server(tree, port, "etc/ssl/server-cert.pem", "etc/ssl/private.key")}))
        script = tmp_path / "swap.py"
        script.write_text(SWAP)
        log = tmp_path / "commands.log"
        ops = tmp_path / "ops.yml"
        lines = [f"{s}: {{on_leaf: [[noop, {s}]], on_trust: [[noop, {s}]], health: []}}" for s in SERVICES if s != "patroni"]
        lines.append(f"patroni: {{on_leaf: [[noop, patroni]], on_trust: [[noop, patroni]], health: [{{kind: tls, port: {port}, "
                     f"address: 127.0.0.1, server_name: {host.fqdn}, cafile: /etc/ssl/root-ca.pem}}]}}")
        ops.write_text("\n".join(lines) + "\n")
        (tmp_path / "roots" / host.fqdn).mkdir(parents=True)
        state = tmp_path / "state"
        res = pki.tool.run("rollout", "--bundles", bundle.out, "--state", state, "--operations", ops, "--hosts", host.short,
                           "--copy", f"tar -xzpf - -C {tmp_path}/roots/{{host}}", "--run", f"{sys.executable} {script} {log} {config} {{command}}",
                           "--health-timeout", "4s", "--stale-grace", "1s", "--json")
        patroni_runs = [line for line in log.read_text().splitlines() if json.loads(line) == ["noop", "patroni"]]
        return res, host, tree, state, len(patroni_runs)
    finally:
        try:
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
        server.wait()


def test_a_stale_leaf_gets_its_commands_run_once_more_and_then_passes(bundle, pki, inv, tmp_path):  # noqa: F811
    res, host, _, state, runs = stale_rollout(bundle, pki, inv, tmp_path, fix_on=2)
    assert res.returncode == 0, h.describe(res)
    assert runs == 2, f"patroni's commands ran {runs} times"
    assert json.loads((state / f"{host.fqdn}.json").read_text())["host"] == host.fqdn


def test_a_leaf_still_stale_after_the_second_run_fails_the_step_naming_both_serials(bundle, pki, inv, tmp_path):  # noqa: F811
    res, host, tree, state, runs = stale_rollout(bundle, pki, inv, tmp_path, fix_on=99)
    assert res.returncode == 1, h.describe(res)
    assert runs == 2, f"patroni's commands ran {runs} times (once more, never a third time)"
    line = h.error_line(res)
    served, installed = serial_hex(tree / "etc/etcd/pki/server.pem"), serial_hex(tree / "etc/ssl/server-cert.pem")
    assert "service patroni" in line and served in line and installed in line and "ran twice" in line, line
    assert "PRIVATE" not in res.stderr and "PRIVATE" not in res.stdout
    failed = [step for step in json.loads(res.stdout)["steps"] if step["status"] == "failed"]
    assert len(failed) == 1 and served in failed[0]["error"], failed
    print(line)
    assert not (state / f"{host.fqdn}.json").exists()

