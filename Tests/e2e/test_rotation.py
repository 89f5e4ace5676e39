"""`chpki rotate-ca` (docs/lifecycle.md), a live HAProxy certificate swap during the overlap, the
`scripts/chpki-rotate` script and the systemd units in `scripts/systemd/`.

Trust is checked with `openssl verify` and with real TLS handshakes (Python ssl against HAProxy on
127.0.0.1); bundles are read file by file, never through chpki.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509

import helpers as h
from conftest import clean_env
from lifecycle_support import (DAY, REPO, CA, certs_in, fp, make_ca, now_s, serial_hex, trust_files, write_pem)

LOOPBACK = "loopback.yml"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
ROTATE = REPO / "scripts" / "chpki-rotate"
SYSTEMD = REPO / "scripts" / "systemd"


def leaf_certs(ca: CA) -> dict[tuple, x509.Certificate]:
    return {h.row_identity(r): h.row_cert(r) for r in ca.valid_leaves().values()}


def verify_all(certs, tmp: Path, *args) -> list[str]:
    """openssl verify `args` for each certificate; the failures."""
    jobs = []
    for i, c in enumerate(certs):
        f = write_pem(tmp / f"c{i}.pem", c)
        jobs.append([*args, f])
    return h.openssl_verify_jobs(jobs)


def verify_fails_all(certs, tmp: Path, *args) -> list[str]:
    """The certificates that `openssl verify args` accepts (should be none)."""
    accepted = []
    for i, c in enumerate(certs):
        f = write_pem(tmp / f"n{i}.pem", c)
        r = h.openssl("verify", *args, f)
        if r.returncode == 0:
            accepted.append(c.subject.rfc4514_string())
    return accepted


def check_trust_files(out: Path, roots: set[str]) -> list[str]:
    """Every trust location of every host tree holds exactly the roots `roots` (fingerprints)."""
    problems = []
    trees = sorted(p for p in out.iterdir() if (p / "var/lib/chpki/MANIFEST.json").exists())
    assert trees, f"no host trees in {out}"
    for tree in trees:
        locations = trust_files(tree)
        assert "etc/pki/ca-trust/source/anchors" in locations, f"{tree.name}: no RHEL anchors"
        for loc, certs in locations.items():
            got = [fp(c) for c in certs]
            if sorted(got) != sorted(roots):
                problems.append(f"{tree.name}/{loc}: {len(got)} CA certificate(s) "
                                f"{[c.subject.rfc4514_string() for c in certs]}, expected {len(roots)}")
    return problems


def rotation_ca(chpki_bin, base, *init_args) -> CA:
    """A CA for the rotation tests: root-signed (--no-intermediate) unless init_args say otherwise
    (`--intermediate`: the default CA, with an intermediate)."""
    init_args = tuple(a for a in init_args if a != "--intermediate") if "--intermediate" in init_args else init_args or ("--no-intermediate",)
    return make_ca(chpki_bin, base, LOOPBACK, init_args=init_args)


# ---------------------------------------------------------------------------------------------
# rotate-ca: start


def test_rotate_ca_start(chpki_bin, tmp_path):
    ca = rotation_ca(chpki_bin, tmp_path / "ca")
    old_root_pem = (ca.ca_dir / "root.pem").read_bytes()
    old = ca.root()
    ca.ok("rotate-ca", signed=True)

    new = ca.root()
    assert (ca.ca_dir / "root.pem").read_bytes() != old_root_pem
    assert (ca.ca_dir / "previous-root.pem").read_bytes() == old_root_pem
    assert (ca.ca_dir / "previous-root.key").exists() and (ca.ca_dir / "root.key").exists()
    assert h.spki(new) != h.spki(old)
    # the new root: self-signed CA, CN suffixed " G2", same key type, name constraints recomputed
    cn = new.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    old_cn = old.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn == f"{old_cn} G2", cn
    assert new.issuer == new.subject and h.ext(new, x509.BasicConstraints).value.ca
    assert h.key_type_of(new.public_key()) == h.key_type_of(old.public_key())
    nc_old, nc_new = h.ext(old, x509.NameConstraints), h.ext(new, x509.NameConstraints)
    assert (nc_old is None) == (nc_new is None)
    if nc_old:
        assert nc_new.value == nc_old.value, "same inventory: same name constraints"
    r = h.openssl("verify", "-CAfile", ca.ca_dir / "root.pem", ca.ca_dir / "root.pem")
    assert r.returncode == 0, h.describe(r)

    # cross-signed: the new root's subject and key, issued and signed by the old root
    cross = h.load_certs(ca.ca_dir / "cross-signed.pem")
    assert len(cross) == 1
    cross = cross[0]
    assert cross.subject == new.subject and cross.issuer == old.subject
    assert h.spki(cross) == h.spki(new)
    assert h.ext(cross, x509.BasicConstraints).value.ca
    aki = h.ext(cross, x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == h.ext(old, x509.SubjectKeyIdentifier).value.digest
    r = h.openssl("verify", "-CAfile", ca.ca_dir / "previous-root.pem", ca.ca_dir / "cross-signed.pem")
    assert r.returncode == 0 and "OK" in r.stdout, h.describe(r)

    # trust bundle: exactly the two roots
    bundle = certs_in(ca.ca_dir / "trust-bundle.pem")
    assert sorted(fp(c) for c in bundle) == sorted([fp(old), fp(new)])
    for f in ("cross-signed.pem", "trust-bundle.pem", "previous-root.pem", "previous-root.key"):
        assert h.mode_of(ca.ca_dir / f) == 0o600, f"{f} is {oct(h.mode_of(ca.ca_dir / f))}"


def test_finish_refused_while_old_leaves_are_live(chpki_bin, tmp_path):
    ca = rotation_ca(chpki_bin, tmp_path / "ca")
    ca.ok("rotate-ca", signed=True)
    before = ca.snapshot()
    res = ca.signed("rotate-ca", "--finish")
    assert res.returncode == 2, h.describe(res)
    h.error_line(res)
    assert h.error_object(res)["code"] == "ca.rotation-unfinished"
    assert ca.snapshot() == before, "a refused --finish changed the CA directory"


def test_finish_allowed_once_old_leaves_expired(chpki_bin, tmp_path):
    # loopback leaves live 90 days: 100 days later no live leaf chains to the old root
    ca = rotation_ca(chpki_bin, tmp_path / "ca")
    ca.ok("rotate-ca", signed=True)
    new = ca.root()
    ca.ok("rotate-ca", "--finish", now=now_s() + 100 * DAY, signed=True)
    assert not (ca.ca_dir / "previous-root.pem").exists()
    assert [fp(c) for c in certs_in(ca.ca_dir / "trust-bundle.pem")] == [fp(new)]


def test_overlap_then_finish(chpki_bin, tmp_path):
    ca = rotation_ca(chpki_bin, tmp_path / "ca")
    old_root = ca.root()
    old_root_pem = (ca.ca_dir / "root.pem").read_bytes()
    ca.ok("bundle", "--out", tmp_path / "old", signed=True)
    old_leaves = leaf_certs(ca)
    old_rows = {h.row_identity(r): r for r in ca.valid_leaves().values()}

    ca.ok("rotate-ca", signed=True)
    new_root = ca.root()
    trust = ca.ca_dir / "trust-bundle.pem"

    # issue re-issues every leaf under the new root, keys kept
    report = ca.issue()
    acts = {(c["kind"], c["host"], c["service"], c["name"]): c for c in report["certificates"]}
    assert set(acts) == set(old_leaves)
    wrong = {i: (c["action"], c["reason"]) for i, c in acts.items()
             if c["action"] != "reissued" or "rotat" not in c["reason"].lower()}
    assert not wrong, f"expected every leaf reissued because the CA rotated: {wrong}"
    new_leaves = leaf_certs(ca)
    rows = ca.by_serial()
    for ident, r in old_rows.items():
        assert rows[r["serial"]]["status"] == "superseded"
        n = new_leaves[ident]
        assert n.issuer == new_root.subject
        assert h.ext(n, x509.AuthorityKeyIdentifier).value.key_identifier == \
            h.ext(new_root, x509.SubjectKeyIdentifier).value.digest
        assert h.spki(n) == h.spki(old_leaves[ident]), f"{ident}: key not kept"

    # both generations verify against the overlap trust bundle
    tmp = tmp_path / "v"
    failures = verify_all(old_leaves.values(), tmp / "old", "-CAfile", trust)
    failures += verify_all(new_leaves.values(), tmp / "new", "-CAfile", trust)
    assert not failures, "\n".join(failures)
    # ... each under its own root; and a new leaf reaches the old root through the cross certificate
    assert not verify_all(new_leaves.values(), tmp / "nr", "-CAfile", ca.ca_dir / "root.pem")
    assert not verify_all(list(new_leaves.values())[:3], tmp / "x", "-CAfile", ca.ca_dir / "previous-root.pem",
                          "-untrusted", ca.ca_dir / "cross-signed.pem")
    assert verify_fails_all(old_leaves.values(), tmp / "on", "-CAfile", ca.ca_dir / "root.pem") == []

    # a bundle laid out during the overlap carries both roots in every trust file
    ca.ok("bundle", "--out", tmp_path / "overlap", signed=True)
    problems = check_trust_files(tmp_path / "overlap", {fp(old_root), fp(new_root)})
    assert not problems, "\n".join(problems)
    h.assert_ok(ca.run("verify", "--bundle", tmp_path / "overlap"))
    h.assert_ok(ca.signed("verify"))
    # the old bundle's trust (old root only) keeps working for old leaves only
    old_anchor = tmp_path / "old" / "haproxy-1.chpki.test" / "etc/pki/ca-trust/source/anchors"
    assert [fp(c) for c in certs_in(old_anchor)] == [fp(old_root)]

    # finish: old root retired, trust only the new root
    ca.ok("rotate-ca", "--finish", signed=True)
    assert not (ca.ca_dir / "previous-root.pem").exists() and not (ca.ca_dir / "previous-root.key").exists()
    retired = ca.ca_dir / "retired"
    assert retired.is_dir() and any(p.read_bytes() == old_root_pem for p in retired.rglob("*") if p.is_file()), \
        "the old root is not kept in ca/retired/"
    assert (ca.ca_dir / "root.pem").read_bytes() == h.pem(new_root)
    assert [fp(c) for c in certs_in(trust)] == [fp(new_root)]

    ca.ok("bundle", "--out", tmp_path / "after", signed=True)
    problems = check_trust_files(tmp_path / "after", {fp(new_root)})
    assert not problems, "\n".join(problems)
    h.assert_ok(ca.run("verify", "--bundle", tmp_path / "after"))
    anchors = tmp_path / "after" / "backend-1.chpki.test" / "etc/opensearch/root-ca.pem"
    assert not verify_all(new_leaves.values(), tmp / "fin", "-CAfile", anchors)
    accepted = verify_fails_all(list(old_leaves.values()), tmp / "finold", "-CAfile", anchors)
    assert accepted == [], f"old leaves still accepted by the new trust files: {accepted}"


def test_rotation_with_intermediate(chpki_bin, tmp_path):
    ca = rotation_ca(chpki_bin, tmp_path / "ca", "--intermediate")
    old_inter = write_pem(tmp_path / "old-intermediate.pem", ca.issuer())
    old_leaves = leaf_certs(ca)
    ca.ok("rotate-ca", signed=True)
    new_root, new_inter = ca.root(), ca.issuer()
    assert new_inter.issuer == new_root.subject, "a new intermediate is made under the new root"
    assert h.spki(new_inter) != h.spki(h.load_cert(old_inter))
    ca.issue()
    new_leaves = leaf_certs(ca)
    for n in new_leaves.values():
        assert n.issuer == new_inter.subject
    trust = ca.ca_dir / "trust-bundle.pem"
    tmp = tmp_path / "v"
    failures = verify_all(old_leaves.values(), tmp / "o", "-CAfile", trust, "-untrusted", old_inter)
    failures += verify_all(new_leaves.values(), tmp / "n", "-CAfile", trust, "-untrusted", ca.ca_dir / "intermediate.pem")
    assert not failures, "\n".join(failures)
    # the CRL is now signed by the new intermediate
    ca.ok("crl", signed=True)
    crl = x509.load_pem_x509_crl((ca.ca_dir / "crl.pem").read_bytes())
    assert crl.issuer == new_inter.subject and crl.is_signature_valid(new_inter.public_key())
    ca.ok("rotate-ca", "--finish", signed=True)


# ---------------------------------------------------------------------------------------------
# a live TLS server whose certificate is swapped during the overlap


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client(threading.Thread):
    """New TLS connection per request (Python ssl, the overlap trust), one HTTP GET each."""

    def __init__(self, port: int, sni: str, cafile: Path, deadline: float, limit: int):
        super().__init__(daemon=True)
        self.port, self.sni, self.deadline, self.limit = port, sni, deadline, limit
        self.ctx = ssl.create_default_context(cafile=str(cafile))
        self.serials: list[int] = []
        self.failures: list[str] = []
        self.stop = threading.Event()

    def one(self) -> int:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw:
            with self.ctx.wrap_socket(raw, server_hostname=self.sni) as tls:
                der = tls.getpeercert(binary_form=True)
                tls.sendall(f"GET / HTTP/1.1\r\nHost: {self.sni}\r\nConnection: close\r\n\r\n".encode())
                data = b""
                while chunk := tls.recv(4096):
                    data += chunk
        if not data.startswith(b"HTTP/1.1 200"):
            raise AssertionError(f"response {data[:60]!r}")
        return x509.load_der_x509_certificate(der).serial_number

    def run(self):
        while not self.stop.is_set() and time.monotonic() < self.deadline and len(self.serials) + len(self.failures) < self.limit:
            try:
                self.serials.append(self.one())
            except Exception as e:  # noqa: BLE001 - every failure is the finding
                self.failures.append(repr(e))
            time.sleep(0.002)

    def count(self, serial: int) -> int:
        return sum(1 for s in list(self.serials) if s == serial)


def wait_for(pred, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def stop_process(p: subprocess.Popen):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


@pytest.mark.skipif(not os.access(HAPROXY, os.X_OK), reason="haproxy is not installed")
def test_haproxy_certificate_swap_during_overlap(chpki_bin, tmp_path):
    ca = rotation_ca(chpki_bin, tmp_path / "ca")
    ca.ok("bundle", "--out", tmp_path / "old", signed=True)
    ca.ok("rotate-ca", signed=True)
    ca.issue()
    ca.ok("bundle", "--out", tmp_path / "new", signed=True)

    vip = "cinc-server-cluster.chpki.test"
    rel = Path("haproxy-1.chpki.test") / "etc/ssl/haproxy" / f"{vip}.pem"
    old_pem, new_pem = tmp_path / "old" / rel, tmp_path / "new" / rel
    old_serial, new_serial = h.load_certs(old_pem)[0].serial_number, h.load_certs(new_pem)[0].serial_number
    assert old_serial != new_serial
    # the client trusts what the overlap bundle installs on a host: both roots
    trust = write_pem(tmp_path / "client-trust.pem",
                      *certs_in(tmp_path / "new" / "haproxy-1.chpki.test" / "etc/pki/ca-trust/source/anchors"))
    old_trust = write_pem(tmp_path / "old-trust.pem",
                          *certs_in(tmp_path / "old" / "haproxy-1.chpki.test" / "etc/pki/ca-trust/source/anchors"))

    run = tmp_path / "haproxy"
    run.mkdir()
    live = run / f"{vip}.pem"
    shutil.copy(old_pem, live)
    os.chmod(live, 0o600)
    sock = run / "admin.sock"
    port = free_port()
    cfg = run / "haproxy.cfg"
    cfg.write_text(f"""\
global
    stats socket {sock} mode 600 level admin expose-fd listeners
    nbthread 1
    maxconn 256
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
    timeout http-request 5s
frontend vip
    bind 127.0.0.1:{port} ssl crt {live}
    http-request return status 200 content-type text/plain string ok
""")
    check = subprocess.run([HAPROXY, "-c", "-f", cfg], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, h.describe(check)

    procs: list[subprocess.Popen] = []
    clients: list[Client] = []

    def start(*extra):
        p = subprocess.Popen([HAPROXY, "-db", "-f", str(cfg), *extra], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        procs.append(p)
        return p

    try:
        first = start()
        probe = Client(port, vip, trust, time.monotonic() + 10, 1)

        def up():
            try:
                probe.one()
                return True
            except OSError:
                return False

        wait_for(up, 10, "haproxy to serve")
        deadline = time.monotonic() + 20
        clients = [Client(port, vip, trust, deadline, 500) for _ in range(4)]
        for c in clients:
            c.start()
        wait_for(lambda: sum(c.count(old_serial) for c in clients) >= 20, 10, "requests served with the old certificate")

        # swap the certificate file atomically and reload seamlessly (listeners passed over the socket)
        tmp_live = run / "live.tmp"
        shutil.copy(new_pem, tmp_live)
        os.chmod(tmp_live, 0o600)
        os.replace(tmp_live, live)
        start("-x", str(sock), "-sf", str(first.pid))
        wait_for(lambda: sum(c.count(new_serial) for c in clients) >= 100, 15, "requests served with the new certificate")
        first.wait(10)  # the old process finishes its connections and leaves
        for c in clients:
            c.stop.set()
        for c in clients:
            c.join(10)

        failures = [f for c in clients for f in c.failures]
        total = sum(len(c.serials) for c in clients)
        assert failures == [], f"{len(failures)} failed requests out of {total + len(failures)}: {failures[:5]}"
        seen = {s for c in clients for s in c.serials}
        assert seen == {old_serial, new_serial}, seen
        # a client that only has the old root would have failed: the overlap bundle is what made it work
        with pytest.raises(ssl.SSLCertVerificationError):
            Client(port, vip, old_trust, time.monotonic() + 5, 1).one()
    finally:
        for c in clients:
            c.stop.set()
        for p in procs:
            stop_process(p)


# ---------------------------------------------------------------------------------------------
# scripts/chpki-rotate


def rotate(ca: CA, *args, now=None, timeout=120) -> subprocess.CompletedProcess:
    env = clean_env({"CHPKI_NOW": h.rfc3339_z(now)} if now else None)
    return subprocess.run(
        [str(ROTATE), "--chpki", str(ca.tool.path), "--ca-dir", str(ca.ca_dir), "--inventory", str(ca.inventory),
         *[str(a) for a in args]],
        cwd=str(ca.base), env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
    )


def expected_services(ca: CA) -> dict[str, list[str]]:
    """host FQDN -> the inventory services it runs, from the YAML."""
    inv = h.load_yaml(ca.inventory)
    out: dict[str, list[str]] = {}
    for hd in inv["hosts"]:
        fqdn = hd["name"].lower()
        out[fqdn] = [s for s, spec in inv["services"].items()
                     if (spec["hosts"] in (hd.get("groups") or []) if isinstance(spec["hosts"], str)
                         else fqdn in spec["hosts"] or fqdn.split(".")[0] in spec["hosts"])]
    return out


def script_setup(chpki_bin, tmp_path):
    ca = rotation_ca(chpki_bin, tmp_path / "ca")
    out = tmp_path / "bundle out"  # a space, to prove the placeholders are quoted
    hosts = tmp_path / "hosts root"
    log = tmp_path / "actions.log"
    copy = f"mkdir -p {shlex.quote(str(hosts))}/{{host}} && cp -a {{tree}}/. {shlex.quote(str(hosts))}/{{host}}/ " \
           f"&& echo copy {{host}} >> {shlex.quote(str(log))}"
    reload = f"echo reload {{host}} {{service}} >> {shlex.quote(str(log))}"
    return ca, out, hosts, log, copy, reload


def log_lines(log: Path) -> list[tuple]:
    return [tuple(line.split()) for line in log.read_text().splitlines()] if log.exists() else []


def test_rotate_script_renews_installs_and_reloads(chpki_bin, tmp_path):
    ca, out, hosts, log, copy, reload = script_setup(chpki_bin, tmp_path)
    old = ca.valid_leaves()
    at = now_s() + 80 * DAY  # loopback: 90d leaves, renew_before 15d -> everything due
    res = rotate(ca, "--out", out, "--passphrase-file", ca.pf, "--copy-cmd", copy, "--reload-cmd", reload, now=at)
    assert res.returncode == 0, h.describe(res)

    # renewed
    rows = ca.by_serial()
    assert all(rows[s]["status"] == "superseded" for s in old), "chpki renew did not run"
    new = ca.valid_leaves()
    assert len(new) == len(old) and not set(new) & set(old)

    # installed: each host's directory is its bundle tree, file for file, modes kept
    services = expected_services(ca)
    trees = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert trees == sorted(services)
    for host in trees:
        assert h.snapshot(hosts / host) == h.snapshot(out / host), f"{host}: installed files differ from the bundle"
        manifest = json.loads((out / host / "var/lib/chpki/MANIFEST.json").read_text())
        assert sorted(manifest["services"]) == sorted(services[host])
    server = h.load_certs(hosts / "backend-1.chpki.test" / "etc/etcd/pki/server.pem")[0]
    assert serial_hex(server) in new, "the installed certificate is not the renewed one"

    # one reload per host x service, after that host's copy and before the next host's
    lines = log_lines(log)
    reloads = [(l[1], l[2]) for l in lines if l[0] == "reload"]
    # (and the trust anchors: every host's tree has them)
    assert sorted(reloads) == sorted((host, s) for host, ss in services.items() for s in [*ss, "trust"])
    current = None
    for l in lines:
        if l[0] == "copy":
            assert current is None or l[1] != current, f"{l[1]} copied twice"
            current = l[1]
        else:
            assert l[1] == current, f"reload of {l[1]} {l[2]} outside its host's turn: {lines}"
    assert [l[1] for l in lines if l[0] == "copy"] == sorted(services)

    # a second run: nothing to renew, nothing changed since the recorded installs: nothing copied
    # or reloaded (test_rotate_changes.py covers what a change reinstalls)
    log.unlink()
    state = [(r["serial"], r["status"]) for r in ca.rows()]
    res = rotate(ca, "--out", out, "--passphrase-file", ca.pf, "--copy-cmd", copy, "--reload-cmd", reload, now=at)
    assert res.returncode == 0, h.describe(res)
    assert [(r["serial"], r["status"]) for r in ca.rows()] == state
    assert log_lines(log) == [], "a run with nothing new must copy and reload nothing"


def test_rotate_script_stops_at_first_failing_reload(chpki_bin, tmp_path):
    ca, out, hosts, log, copy, reload = script_setup(chpki_bin, tmp_path)
    bad = "backend-2.chpki.test"
    failing = reload + f" && test {{host}} != {bad}"
    res = rotate(ca, "--out", out, "--passphrase-file", ca.pf, "--copy-cmd", copy, "--reload-cmd", failing)
    assert res.returncode != 0, h.describe(res)
    assert bad in res.stderr, "stderr must name the failing host" + h.describe(res)
    lines = log_lines(log)
    assert lines[-1][:2] == ("reload", bad), f"the run went on after the failure: {lines}"
    assert len([l for l in lines if l[0] == "reload" and l[1] == bad]) == 1, "later services of the host reloaded"
    copied = [l[1] for l in lines if l[0] == "copy"]
    assert copied[-1] == bad
    not_reached = set(expected_services(ca)) - set(copied)
    assert not_reached, "scenario: some hosts come after the failing one"
    for host in not_reached:
        assert not (hosts / host).exists(), f"{host} installed after the failure"
        assert not [l for l in lines if l[1] == host], f"{host} touched after the failure"


def test_rotate_script_failing_copy(chpki_bin, tmp_path):
    ca, out, hosts, log, copy, reload = script_setup(chpki_bin, tmp_path)
    res = rotate(ca, "--out", out, "--passphrase-file", ca.pf,
                 "--copy-cmd", f"test {{host}} != frontend-1.chpki.test && {copy}", "--reload-cmd", reload)
    assert res.returncode != 0, h.describe(res)
    assert "frontend-1.chpki.test" in res.stderr, h.describe(res)
    assert not [l for l in log_lines(log) if l[1] == "frontend-1.chpki.test"], "reloaded a host whose copy failed"
    assert not (hosts / "haproxy-1.chpki.test").exists()


def test_rotate_script_archive_and_host_filter(chpki_bin, tmp_path):
    ca, out, hosts, log, _, reload = script_setup(chpki_bin, tmp_path)
    copy = f"mkdir -p {shlex.quote(str(hosts))}/{{host}} && tar -xzf {{archive}} --no-same-owner -C " \
           f"{shlex.quote(str(hosts))}/{{host}} && echo copy {{host}} >> {shlex.quote(str(log))}"
    res = rotate(ca, "--out", out, "--passphrase-file", ca.pf, "--copy-cmd", copy, "--reload-cmd", reload,
                 "--hosts", "haproxy-1,frontend-1.chpki.test", "--services", "nginx,haproxy,minicluster")
    assert res.returncode == 0, h.describe(res)
    assert sorted(p.name for p in hosts.iterdir()) == ["frontend-1.chpki.test", "haproxy-1.chpki.test"]
    for host in ("frontend-1.chpki.test", "haproxy-1.chpki.test"):
        manifest = json.loads((out / host / "var/lib/chpki/MANIFEST.json").read_text())
        assert "minicluster" in manifest["services"], "scenario: the minicluster layout was asked for"
        got = {str(p.relative_to(hosts / host)) for p in (hosts / host).rglob("*") if p.is_file()}
        assert got == {f["path"] for f in manifest["files"]} | {"var/lib/chpki/MANIFEST.json"}
        for f in manifest["files"]:
            assert (hosts / host / f["path"]).read_bytes() == (out / host / f["path"]).read_bytes()
    # minicluster is a layout, not a service to reload
    assert sorted((l[1], l[2]) for l in log_lines(log) if l[0] == "reload") == [
        ("frontend-1.chpki.test", "nginx"), ("frontend-1.chpki.test", "trust"),
        ("haproxy-1.chpki.test", "haproxy"), ("haproxy-1.chpki.test", "trust")]

    res = rotate(ca, "--out", out, "--passphrase-file", ca.pf, "--copy-cmd", copy, "--reload-cmd", reload, "--no-renew",
                 "--hosts", "nosuchhost")
    assert res.returncode == 2 and "nosuchhost" in res.stderr, h.describe(res)


def test_rotate_script_dry_run_changes_nothing(chpki_bin, tmp_path):
    ca, out, hosts, log, copy, reload = script_setup(chpki_bin, tmp_path)
    h.assert_ok(ca.signed("bundle", "--out", out, "--tar"))
    at = now_s() + 80 * DAY
    before = (ca.snapshot(), h.snapshot(out))
    res = rotate(ca, "--dry-run", "--out", out, "--passphrase-file", ca.pf, "--copy-cmd", copy,
                 "--reload-cmd", reload, now=at)
    assert res.returncode == 0, h.describe(res)
    assert (ca.snapshot(), h.snapshot(out)) == before, "--dry-run changed the CA or the bundles"
    assert not hosts.exists() and not log.exists(), "--dry-run ran the copy or reload command"
    # it shows what is due, and every command it would run
    some_due = sorted(ca.valid_leaves())[0]
    assert some_due in res.stdout, "the due certificates are not shown" + h.describe(res)
    assert "renew" in res.stdout and "bundle" in res.stdout
    for host, services in expected_services(ca).items():
        assert f"echo copy {host}" in res.stdout, host
        for s in services:
            assert f"echo reload {host} {s}" in res.stdout, (host, s)


def test_rotate_script_help_and_usage_errors(tmp_path):
    res = subprocess.run([str(ROTATE), "--help"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, h.describe(res)
    for word in ("--copy-cmd", "--reload-cmd", "--dry-run", "--passphrase-file", "--hosts", "{tree}", "{archive}",
                 "{host}", "{service}"):
        assert word in res.stdout, word
    for bad in (["--bogus"], ["--out"], ["--passphrase", "secret"]):
        res = subprocess.run([str(ROTATE), *bad], capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL, cwd=tmp_path)
        assert res.returncode == 2 and res.stderr.strip(), h.describe(res)


# ---------------------------------------------------------------------------------------------
# systemd units


UNITS = ("chpki-expiring.service", "chpki-expiring.timer", "chpki-renew.service", "chpki-renew.timer")


def unit_settings(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            k, v = line.split("=", 1)
            out.setdefault(k.strip(), []).append(v.strip())
    return out


def test_systemd_units(tmp_path):
    for u in UNITS:
        assert (SYSTEMD / u).is_file(), u
    for svc in ("chpki-expiring.service", "chpki-renew.service"):
        s = unit_settings(SYSTEMD / svc)
        assert s.get("Type") == ["oneshot"], svc
        assert "-/etc/chpki/chpki.env" in s.get("EnvironmentFile", []), svc
        assert s.get("ProtectSystem") == ["strict"] and s.get("NoNewPrivileges") == ["yes"], svc
        assert s.get("PrivateTmp") == ["yes"] and s.get("UMask") == ["0077"] and s.get("ReadWritePaths"), svc
        assert "SuccessExitStatus" not in s, f"{svc}: exit 1 (something is due / failed) must fail the unit"
    assert "expiring" in unit_settings(SYSTEMD / "chpki-expiring.service")["ExecStart"][0]
    assert "chpki-rotate" in unit_settings(SYSTEMD / "chpki-renew.service")["ExecStart"][0]
    assert unit_settings(SYSTEMD / "chpki-expiring.timer")["OnCalendar"] == ["daily"]
    assert unit_settings(SYSTEMD / "chpki-renew.timer")["OnCalendar"] == ["weekly"]

    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze is not installed")
    # verify copies whose ExecStart points at binaries that exist here
    d = tmp_path / "units"
    d.mkdir()
    for u in UNITS:
        text = (SYSTEMD / u).read_text()
        text = text.replace("/usr/local/bin/chpki-rotate", str(ROTATE)).replace("/usr/local/bin/chpki", "/bin/true")
        (d / u).write_text(text)
    res = subprocess.run([analyze, "verify", *[str(d / u) for u in UNITS]], capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL)
    assert res.returncode == 0 and not res.stderr.strip(), h.describe(res)
