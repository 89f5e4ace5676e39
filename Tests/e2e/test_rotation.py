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
from test_rotate_changes import Rig

LOOPBACK = "loopback.yml"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
ROTATE = REPO / "scripts" / "chpki-rotate"
SYSTEMD = REPO / "scripts" / "systemd"


MANIFEST = "var/lib/chpki/MANIFEST.json"


def record_installs(ca: CA, bundles: Path, hosts, state: Path | None = None):
    """What a rollout records after a host's steps: the host's MANIFEST.json as <state>/<fqdn>.json
    (default state: <ca-dir>/installed)."""
    state = state or ca.ca_dir / "installed"
    state.mkdir(mode=0o700, exist_ok=True)
    for host in hosts:
        shutil.copyfile(bundles / host / MANIFEST, state / f"{host}.json")
        (state / f"{host}.json").chmod(0o600)  # as every file under the CA directory


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
    # no host was installed through chpki's rollout here: the operator vouches for the hosts
    ca.ok("rotate-ca", "--finish", "--force-unrecorded", now=now_s() + 100 * DAY, signed=True)
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

    # finish waits for the hosts: a host whose record still shows the old bundle (old trust, old
    # leaves) is named, and nothing changes; once every host recorded the overlap bundle, it goes.
    hosts = sorted(p.name for p in (tmp_path / "overlap").iterdir() if (p / MANIFEST).is_file())
    record_installs(ca, tmp_path / "overlap", hosts)
    lagging = hosts[1]
    record_installs(ca, tmp_path / "old", [lagging])
    before = ca.snapshot()
    res = ca.signed("rotate-ca", "--finish")
    assert res.returncode == 2, h.describe(res)
    line = h.error_line(res)
    assert lagging in line and "trust without the new root" in line and "from another root" in line, line
    assert not any(other in line for other in hosts if other != lagging), line
    assert ca.snapshot() == before, "a refused --finish changed the CA directory"
    (ca.ca_dir / "installed" / f"{lagging}.json").unlink()
    res = ca.signed("rotate-ca", "--finish")
    assert res.returncode == 2 and f"{lagging} has no record" in h.error_line(res), h.describe(res)
    record_installs(ca, tmp_path / "overlap", [lagging])

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
    # the hosts' records, as a rollout writes them, under --state
    ca.ok("bundle", "--out", tmp_path / "overlap", signed=True)
    state = tmp_path / "records"
    hosts = sorted(p.name for p in (tmp_path / "overlap").iterdir() if (p / MANIFEST).is_file())
    record_installs(ca, tmp_path / "overlap", hosts, state=state)
    ca.ok("rotate-ca", "--finish", "--state", state, signed=True)


# ---------------------------------------------------------------------------------------------
# a live TLS server whose certificate is swapped during the overlap


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
    port = h.free_port()
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


def test_rotate_script_renews_installs_and_reloads(chpki_bin, tmp_path):
    rig = Rig(chpki_bin, tmp_path)
    old = rig.ca.valid_leaves()
    at = {"CHPKI_NOW": h.rfc3339_z(now_s() + 80 * DAY)}  # loopback: 90d leaves, renew_before 15d -> everything due
    rig.ok(env=at)

    # renewed
    rows = rig.ca.by_serial()
    assert all(rows[s]["status"] == "superseded" for s in old), "chpki renew did not run"
    new = rig.ca.valid_leaves()
    assert len(new) == len(old) and not set(new) & set(old)

    # installed: each host's root holds its bundle tree's files, byte for byte, and its manifest
    services = expected_services(rig.ca)
    assert sorted(p.name for p in rig.out.iterdir() if p.is_dir()) == sorted(services)
    for host in services:
        manifest = json.loads((rig.out / host / "var/lib/chpki/MANIFEST.json").read_text())
        assert sorted(manifest["services"]) == sorted(services[host])
        for f in manifest["files"]:
            assert (rig.roots / host / f["path"]).read_bytes() == (rig.out / host / f["path"]).read_bytes(), (host, f["path"])
    server = h.load_certs(rig.roots / "backend-1.chpki.test" / "etc/etcd/pki/server.pem")[0]
    assert serial_hex(server) in new, "the installed certificate is not the renewed one"
    copies, reloads = rig.actions()
    assert reloads == {(host, s) for host, ss in services.items() for s in [*ss, "trust"]}

    # a second run: nothing to renew, nothing changed since the recorded installs: nothing runs
    state = [(r["serial"], r["status"]) for r in rig.ca.rows()]
    rig.ok(env=at)
    assert [(r["serial"], r["status"]) for r in rig.ca.rows()] == state
    assert rig.actions() == ([], set()), "a run with nothing new must copy and run nothing"


def test_rotate_script_stops_at_the_first_failure(chpki_bin, tmp_path):
    rig = Rig(chpki_bin, tmp_path)
    (rig.roots / "fail").write_text("patroni\n")
    res = rig.run()
    assert res.returncode == 1, h.describe(res)
    first = "backend-1.chpki.test"
    assert first in h.error_line(res) and "patroni" in h.error_line(res), h.describe(res)
    _, reloads = rig.actions()
    later = [(host, s) for host, s in reloads if host != first and s != "trust"]
    assert not later, f"hosts touched after the failure: {later}"
    assert not (rig.state / f"{first}.json").exists()


def test_rotate_script_host_and_service_filter(chpki_bin, tmp_path):
    rig = Rig(chpki_bin, tmp_path)
    rig.ok("--hosts", "haproxy-1,frontend-1.chpki.test", "--services", "nginx,haproxy,minicluster")
    assert sorted(p.name for p in rig.roots.iterdir()) == ["frontend-1.chpki.test", "haproxy-1.chpki.test"]
    for host in ("frontend-1.chpki.test", "haproxy-1.chpki.test"):
        manifest = json.loads((rig.out / host / "var/lib/chpki/MANIFEST.json").read_text())
        assert "minicluster" in manifest["services"], "scenario: the minicluster layout was asked for"
        got = {str(p.relative_to(rig.roots / host)) for p in (rig.roots / host).rglob("*") if p.is_file()}
        assert got == {f["path"] for f in manifest["files"]} | {"var/lib/chpki/MANIFEST.json"}
    # minicluster is a layout, not a service: nothing runs for it
    assert sorted(rig.actions()[1]) == [("frontend-1.chpki.test", "nginx"), ("frontend-1.chpki.test", "trust"),
                                        ("haproxy-1.chpki.test", "haproxy"), ("haproxy-1.chpki.test", "trust")]
    res = rig.run("--no-renew", "--hosts", "nosuchhost")
    assert res.returncode == 2 and "nosuchhost" in res.stderr, h.describe(res)


def test_rotate_script_dry_run_changes_nothing(chpki_bin, tmp_path):
    rig = Rig(chpki_bin, tmp_path)
    h.assert_ok(rig.ca.signed("bundle", "--out", rig.out, "--tar"))
    at = {"CHPKI_NOW": h.rfc3339_z(now_s() + 80 * DAY)}
    before = (rig.ca.snapshot(), h.snapshot(rig.out))
    res = rig.ok("--dry-run", env=at)
    assert (rig.ca.snapshot(), h.snapshot(rig.out)) == before, "--dry-run changed the CA or the bundles"
    assert not rig.log.exists() and not rig.state.exists(), "--dry-run ran a command or recorded"
    # it shows what is due, and every command the real run then runs
    some_due = sorted(rig.ca.valid_leaves())[0]
    assert some_due in res.stdout, "the due certificates are not shown" + h.describe(res)
    for host, services in expected_services(rig.ca).items():
        assert f"run {host} reload trust" in res.stdout, host
        for s in services:
            assert f"run {host} reload {s}" in res.stdout, (host, s)


def test_rotate_script_help_and_usage_errors(tmp_path):
    res = subprocess.run([str(ROTATE), "--help"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, h.describe(res)
    for word in ("--copy", "--run", "--operations", "--dry-run", "--passphrase-file", "--hosts", "{host}", "{command_sh}",
                 "<ca-dir>/installed"):
        assert word in res.stdout, word
    for bad in (["--bogus"], ["--out"], ["--passphrase", "secret"], ["--reload-cmd", "x"]):
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
