"""`chpki rollout`'s PostgreSQL health check against a real PostgreSQL (SPEC §7, issue 17): the
server test_bundle_servers.py starts from a backend's bundle (its server certificate, its CA file,
pg_hba.conf requiring client certificates). A rollout of that backend, with the site override
`patroni: health: [{kind: postgres, ...}]`, passes its health check: the SSLRequest, a handshake
verified against the host's installed trust and server name, with the host's Patroni client
certificate, and an answer to the startup packet. The same check naming another host's name, or
trusting another root, fails the step and leaves the host unrecorded. (TLS, etcd and Patroni REST
checks: HealthProbeTests against openssl s_server, test_rollout_etcd.py against etcd.)"""

from __future__ import annotations

import json
import sys
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
