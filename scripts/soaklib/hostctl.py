"""What a host does with the commands the rollout sends it. The soak's hosts are directory roots
with servers started from them, not machines with systemd: this stands in for `systemctl`,
`update-ca-certificates` and the frontend's `cinc-server-ctl reconfigure`, doing to the host's
processes what those do on a real host (a restart stops and starts from the installed files; a
HAProxy reload is SIGUSR2 to its master; nginx's is SIGHUP). A command it doesn't know fails, so a
rollout sending a host something the soak can't stand for shows up as a failed step."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import cluster

STOP_TIMEOUT = 20


def _state_file(layout: cluster.Layout, short: str, service: str) -> Path:
    return layout.rundir(short) / f"{service}.json"


def alive(pid: int) -> bool:
    """Running, not a zombie (stopped servers are reaped by whoever adopted them, maybe never)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def pid_of(layout: cluster.Layout, short: str, service: str) -> int | None:
    try:
        pid = json.loads(_state_file(layout, short, service).read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None
    return pid if alive(pid) else None


def start(layout: cluster.Layout, short: str, service: str) -> int:
    """Starts the service in a session of its own from what is installed now; this process exits
    right after, so the server outlives the rollout step that started it."""
    spec = cluster.LAUNCHERS[service](layout, short)
    run = layout.rundir(short)
    log = open(run / f"{service}.log", "ab")
    kw = {}
    if spec.get("user"):
        import pwd
        user = pwd.getpwnam(spec["user"])
        kw = dict(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
    proc = subprocess.Popen(spec["argv"], env=spec["env"], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            cwd=spec.get("cwd", run), start_new_session=True, **kw)
    cluster.write_json_atomically(_state_file(layout, short, service), {"pid": proc.pid, "argv": spec["argv"]})
    return proc.pid


def stop(layout: cluster.Layout, short: str, service: str) -> None:
    pid = pid_of(layout, short, service)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        os.killpg(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.05)


def restart(layout: cluster.Layout, short: str, service: str) -> None:
    stop(layout, short, service)
    start(layout, short, service)


def reload(layout: cluster.Layout, short: str, service: str) -> None:
    pid = pid_of(layout, short, service)
    if pid is None:
        start(layout, short, service)
        return
    if service == "haproxy":
        cluster.haproxy_config(layout, short)
        os.kill(pid, signal.SIGUSR2)
    elif service == "nginx":
        cluster.nginx_config(layout, short)
        os.kill(pid, signal.SIGHUP)
    elif service == "patroni":
        # SIGHUP: Patroni rereads patroni.yml (and its REST certificate)
        cluster.patroni_config(layout, short)
        os.kill(pid, signal.SIGHUP)
    else:
        # etcd has no reload (no ExecReload in its unit): `systemctl reload etcd` fails on a real host.
        raise SystemExit(f"hostctl: {service} has no reload")


def patronictl(layout: cluster.Layout, short: str, args: list[str]) -> subprocess.CompletedProcess:
    """The real patronictl, as postgres, with the host's patroni.yml (what `-c` names on a host)."""
    import pwd
    home = layout.rundir(short) / "patroni"
    pg = pwd.getpwnam("postgres")
    exe = str(Path(cluster.patroni_executable()).with_name("patronictl"))
    return subprocess.run([exe, "-c", str(home / "patroni.yml"), *args], capture_output=True, text=True,
                          user=pg.pw_uid, group=pg.pw_gid, extra_groups=[], cwd=home, timeout=120,
                          env={"PATH": os.environ["PATH"], "HOME": str(home)})


def activate_trust(layout: cluster.Layout, short: str) -> None:
    """update-ca-certificates: the host's activated bundle holds exactly its installed anchors."""
    root = layout.root(short)
    anchors = sorted((root / "usr/local/share/ca-certificates").glob("*.crt"))
    target = layout.system_bundle(short)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(".ca-certificates.crt.tmp")
    tmp.write_text("".join(a.read_text() for a in anchors))
    os.replace(tmp, target)


def remove(layout: cluster.Layout, short: str, paths: list[str]) -> None:
    root = layout.root(short).resolve()
    for p in paths:
        target = (root / p.lstrip("/")).resolve()
        if root not in target.parents:
            raise SystemExit(f"hostctl: {p!r} is not inside {short}'s root")
        target.unlink(missing_ok=True)


SYSTEMCTL = {"restart": restart, "try-restart": restart, "reload-or-restart": None, "reload": reload,
             "start": start, "stop": stop}


def run(layout: cluster.Layout, short: str, words: list[str]) -> None:
    """One command, as argv words (or one shell-like string, as older chpki-rotate sends)."""
    if len(words) == 1 and " " in words[0]:
        text = words[0]
        # The frontend reconfigure and the trust activation come as small shell programs.
        if "systemctl reload patroni" in text and "postmaster.pid" in text:
            # chpki-rotate's patroni command: reload Patroni, then SIGHUP the postmaster
            run(layout, short, ["systemctl", "reload", "patroni"])
            words = ["pg-reload"]
        elif "update-ca-certificates" in text or "update-ca-trust" in text:
            words = ["update-ca-certificates"]
        elif "server-ctl" in text:
            words = ["cinc-server-ctl", "reconfigure"]
        else:
            words = shlex.split(text)
    if not words:
        return
    with open(layout.actions, "a") as f:
        f.write(json.dumps({"t": time.time(), "host": short, "command": words}) + "\n")
    name = os.path.basename(words[0])
    if name == "systemctl" and len(words) >= 3 and words[1] in SYSTEMCTL:
        service = words[2].removesuffix(".service")
        if service not in cluster.LAUNCHERS:
            raise SystemExit(f"hostctl: {short} runs no {service}")
        action = words[1]
        if action == "reload-or-restart":
            # systemd reloads a unit with an ExecReload (and starts one not running): HAProxy,
            # nginx and Patroni have one, etcd has none.
            action = "reload" if service in ("haproxy", "nginx", "patroni") else "restart"
        SYSTEMCTL[action](layout, short, service)
    elif name in ("update-ca-certificates", "update-ca-trust"):
        activate_trust(layout, short)
    elif name in ("cinc-server-ctl", "chef-server-ctl"):
        # reconfigure renders nginx's configuration and restarts it under runit
        restart(layout, short, "nginx")
    elif name == "pg-reload" or (name == "kill" and any("postmaster.pid" in w for w in words)) or (
            name == "runuser" and any("pg_reload_conf" in w for w in words)):
        # Lenient where a real host is not: PostgreSQL not (yet) running reads its files when it
        # starts, so there is nothing to reload (a real `kill -HUP $(head postmaster.pid)` fails).
        pid = cluster.postmaster_pid(layout, short)
        if pid is not None and alive(pid):
            os.kill(pid, signal.SIGHUP)
    elif name == "patronictl" and len(words) >= 4 and words[1] == "-c" and words[3] in ("pause", "resume"):
        res = patronictl(layout, short, words[3:])
        if res.returncode != 0:
            raise SystemExit(f"hostctl: patronictl {words[3]}: {(res.stderr or res.stdout).strip()[-300:]}")
    elif name == "remove-stdin":
        # chpki-rotate's remove command: the absolute host paths on stdin, each ended by NUL
        remove(layout, short, [p.decode() for p in sys.stdin.buffer.read().split(b"\0") if p])
    elif name == "rm":
        remove(layout, short, [w for w in words[1:] if not w.startswith("-")])
    elif name == "sleep" and len(words) == 2:
        time.sleep(float(words[1]))
    elif name == "true":
        return
    else:
        raise SystemExit(f"hostctl: {short}: no stand-in for {words!r}")


def main(argv: list[str]) -> int:
    """hostctl --out DIR HOST COMMAND...: HOST is an FQDN or short name of the soak's hosts."""
    if len(argv) < 4 or argv[0] != "--out":
        print("usage: soak hostctl --out DIR HOST COMMAND...", file=sys.stderr)
        return 2
    layout = cluster.Layout(Path(argv[1]))
    short = argv[2].split(".")[0]
    if short not in cluster.ALL_HOSTS:
        print(f"hostctl: unknown host {argv[2]!r}", file=sys.stderr)
        return 2
    try:
        run(layout, short, argv[3:])
    except SystemExit as e:
        print(str(e), file=sys.stderr)
        return 1
    return 0
