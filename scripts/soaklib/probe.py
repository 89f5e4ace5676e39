"""The probe: a process of its own, apart from the rollout, that every second makes a TLS handshake
with every endpoint in endpoints.json (re-read each round, so it follows the files the rollout
replaces), verifying the server against the trust installed on the host it calls from, and writes
and reads a key through etcd. One JSON line per attempt in probe.jsonl. Anyone can run it against
a soak's endpoints.json: `scripts/soak probe --out DIR`."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import cluster

TIMEOUT = 3.0
INTERVAL = 1.0


def _context(ep: dict) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=ep["cafile"])
    ctx.check_hostname = True
    if ep.get("certfile"):
        ctx.load_cert_chain(ep["certfile"], ep["keyfile"])
    return ctx


def _http(conn: ssl.SSLSocket, method: str, path: str, host: str, body: bytes = b"") -> tuple[int, bytes]:
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {len(body)}\r\n"
    if body:
        head += "Content-Type: application/json\r\n"
    conn.sendall(head.encode() + b"\r\n" + body)
    data = b""
    while len(data) < 1 << 20:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    parts = status_line.split()
    status = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0
    return status, rest.partition(b"\r\n\r\n")[2]


def _connect(ep: dict) -> ssl.SSLSocket:
    raw = socket.create_connection((ep["address"], ep["port"]), timeout=TIMEOUT)
    try:
        return _context(ep).wrap_socket(raw, server_hostname=ep["server_name"])
    except BaseException:
        raw.close()
        raise


def _postgres_handshake(ep: dict) -> None:
    """PostgreSQL's SSLRequest, then the TLS handshake on the same connection (no login)."""
    raw = socket.create_connection((ep["address"], ep["port"]), timeout=TIMEOUT)
    try:
        raw.sendall(struct.pack("!II", 8, 80877103))
        answer = raw.recv(1)
        if answer != b"S":
            raise ValueError(f"server refused SSL ({answer!r})")
        _context(ep).wrap_socket(raw, server_hostname=ep["server_name"]).close()
    finally:
        raw.close()


def check(ep: dict) -> str | None:
    """None when the endpoint served a verified handshake (and etcd said it is healthy)."""
    try:
        if ep["protocol"] == "postgres":
            _postgres_handshake(ep)
            return None
        with _connect(ep) as conn:
            if ep["protocol"] == "etcd":
                status, body = _http(conn, "GET", "/health", ep["server_name"])
                if status != 200 or b'"true"' not in body:
                    return f"etcd /health: {status} {body[:80]!r}"
            elif ep["protocol"] == "patroni-rest":
                status, body = _http(conn, "GET", "/health", ep["server_name"])
                if status != 200:
                    return f"patroni /health: {status} {body[:80]!r}"
            elif ep["protocol"] == "tls":
                status, _ = _http(conn, "GET", "/", ep["server_name"])
                if status != 200:
                    return f"HTTP {status}"
        return None
    except ssl.SSLCertVerificationError as e:
        return f"verify: {e.verify_message}"
    except (OSError, ssl.SSLError, ValueError) as e:
        return f"{type(e).__name__}: {e}"


def write_and_read(eps: list[dict], seq: int) -> tuple[str, str | None]:
    """Puts seq and reads it back as an etcd client does: through the endpoints it knows, the
    next one when one does not answer (a member restarting), starting each second at another.
    A failure is a write no endpoint took, or a verification failure on any."""
    key = base64.b64encode(b"soak/probe").decode()
    value = base64.b64encode(str(seq).encode()).decode()
    last = ("", "no endpoint")
    for i in range(len(eps)):
        ep = eps[(seq + i) % len(eps)]
        try:
            with _connect(ep) as conn:
                status, body = _http(conn, "POST", "/v3/kv/put", ep["server_name"],
                                     json.dumps({"key": key, "value": value}).encode())
                if status != 200:
                    last = (ep["name"], f"put: {status} {body[:80]!r}")
                    continue
            with _connect(ep) as conn:
                status, body = _http(conn, "POST", "/v3/kv/range", ep["server_name"], json.dumps({"key": key}).encode())
                kvs = json.loads(body or b"{}").get("kvs") or []
                if status != 200 or not kvs:
                    last = (ep["name"], f"range: {status} {body[:80]!r}")
                    continue
                # another writer may have written since (a newer seq), never an older one
                if int(base64.b64decode(kvs[0]["value"])) < seq:
                    return ep["name"], "read an older value than was written"
            return ep["name"], None
        except ssl.SSLCertVerificationError as e:
            return ep["name"], f"verify: {e.verify_message}"
        except (OSError, ssl.SSLError, ValueError, KeyError) as e:
            last = (ep["name"], f"{type(e).__name__}: {e}")
    return last


def write_row(eps: list[dict], seq: int) -> str | None:
    """Inserts a row through the current leader and reads it back: libpq tries each member and
    keeps the one that accepts writes (target_session_attrs=read-write), verify-full against the
    calling host's installed root, logged in with its client certificate (role patroni)."""
    try:
        import psycopg2
    except ImportError:
        return "no psycopg2 (run the soak with scripts/test's virtualenv python)"
    ep = eps[0]
    dsn = (f"host={','.join(e['server_name'] for e in eps)} hostaddr={','.join(e['address'] for e in eps)} "
           f"port={','.join(str(e['port']) for e in eps)} dbname=postgres user=patroni sslmode=verify-full "
           f"sslrootcert={ep['cafile']} sslcert={ep['certfile']} sslkey={ep['keyfile']} connect_timeout=3 "
           "target_session_attrs=read-write")
    try:
        conn = psycopg2.connect(dsn)
        try:
            with conn, conn.cursor() as cur:
                cur.execute("INSERT INTO soak_probe (seq) VALUES (%s)", (seq,))
                cur.execute("SELECT count(*) FROM soak_probe WHERE seq = %s", (seq,))
                if cur.fetchone()[0] != 1:
                    return "row not read back"
        finally:
            conn.close()
        return None
    except psycopg2.Error as e:
        return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"


def leader_count(eps: list[dict]) -> tuple[int, list[str]]:
    """How many members answer REST /primary with 200 (exactly one is a cluster with a leader)."""
    leaders = []
    for ep in eps:
        try:
            with _connect(ep) as conn:
                status, _ = _http(conn, "GET", "/primary", ep["server_name"])
                if status == 200:
                    leaders.append(ep["name"].split("@")[-1])
        except (OSError, ssl.SSLError, ValueError):
            continue
    return len(leaders), leaders


def run(layout: cluster.Layout) -> int:
    seq = 0
    with ThreadPoolExecutor(max_workers=16) as pool, open(layout.probe_log, "a") as log:
        while not layout.stop_file.exists():
            started = time.monotonic()
            now = time.time()
            try:
                eps = json.loads(layout.endpoints.read_text())
            except (OSError, ValueError):
                time.sleep(INTERVAL)
                continue
            results = list(zip([e["name"] for e in eps], pool.map(check, eps)))
            etcd = [e for e in eps if e["protocol"] == "etcd"]
            if etcd:
                via, why = write_and_read(etcd, seq)
                results.append(("etcd-write", why if why is None else f"via {via}: {why}"))
            postgres = [e for e in eps if e["protocol"] == "postgres"]
            if postgres:
                results.append(("postgres-write", write_row(postgres, seq)))
                count, leaders = leader_count([e for e in eps if e["protocol"] == "patroni-rest"])
                results.append(("patroni-leader", None if count == 1 else f"{count} leaders {leaders}"))
            seq += 1
            for name, why in results:
                log.write(json.dumps({"t": round(now, 3), "name": name, "ok": why is None, "reason": why}) + "\n")
            log.flush()
            time.sleep(max(0.0, INTERVAL - (time.monotonic() - started)))
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "--out":
        print("usage: soak probe --out DIR", file=sys.stderr)
        return 2
    return run(cluster.Layout(Path(argv[1])))
