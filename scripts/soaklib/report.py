"""report.json and the timeline picture (SVG): per endpoint the attempts and failures with the
first and last failure, per week what the weekly job did, the events, and handshake success per
endpoint over simulated time with the events marked."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from . import cluster


def _lines(path: Path) -> list[dict]:
    try:
        return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
    except OSError:
        return []


# What a certificate or trust problem looks like from the client side (Python's ssl, libpq, etcd's
# and Patroni's answers): what chpki must never cause. Anything else a probe reports is a server
# that did not answer or was not ready for a moment (refused, reset, timed out, 503, no leader).
CERTIFICATE = ("verify", "certificate", "unknown ca", "alert", "expired", "self-signed", "hostname mismatch",
               "doesn't match", "does not match")


def is_unavailable(reason: str | None) -> bool:
    return bool(reason) and not any(marker in reason.lower() for marker in CERTIFICATE)


def switchover_gaps(probes: list[dict], events: list[dict]) -> set[int]:
    """The write probes (indices) that failed in an operator's planned switchover: from its start
    until the first write that succeeds after `patronictl switchover` returned. A switchover always
    leaves a moment with no primary; it is the operator's step before removing the leader's host
    (docs/growth.md), not something a certificate change did."""
    out: set[int] = set()
    for e in (e for e in events if e["kind"] == "leader-switchover"):
        open_ = True
        for i, p in enumerate(probes):
            if not p["name"].endswith("-write") or p["t"] < e.get("started", e["t"]):
                continue
            if p["ok"] and p["t"] > e["t"]:
                open_ = False
            if not open_:
                break
            if not p["ok"]:
                out.add(i)
    return out


def build(layout: cluster.Layout, profile: cluster.Profile, t0: float, started: str) -> dict:
    probes, weeks, events = _lines(layout.probe_log), _lines(layout.weeks), _lines(layout.events)

    def week_of(t: float) -> float:
        return round((t - t0) / profile.week_seconds, 2)

    endpoints: dict[str, dict] = {}
    switchover = switchover_gaps(probes, events)
    for i, p in enumerate(probes):
        e = endpoints.setdefault(p["name"], {"attempts": 0, "failures": 0, "certificate_failures": 0, "unavailable": 0,
                                             "first_failure": None, "last_failure": None})
        e["attempts"] += 1
        if i in switchover:
            e["in_switchover"] = e.get("in_switchover", 0) + 1
        elif not p["ok"]:
            e["failures"] += 1
            # A certificate or trust failure (what chpki must never cause) apart from a server that
            # did not answer for a moment (a planned restart: refused, reset, timed out).
            e["unavailable" if is_unavailable(p["reason"]) else "certificate_failures"] += 1
            failure = {"week": week_of(p["t"]), "reason": p["reason"]}
            e["first_failure"] = e["first_failure"] or failure
            e["last_failure"] = failure
    # The longest stretch without exactly one Patroni leader: from the first probe that found none
    # (or two) to the next that found one, in seconds of real time.
    longest, since = 0.0, None
    for p in (p for p in probes if p["name"] == "patroni-leader"):
        if not p["ok"] and since is None:
            since = p["t"]
        elif p["ok"] and since is not None:
            longest, since = max(longest, p["t"] - since), None
    if since is not None and probes:
        longest = max(longest, probes[-1]["t"] - since)
    return {
        "started": started,
        "longest_leader_gap_seconds": round(longest, 1),
        "profile": {"weeks": profile.weeks, "week_seconds": profile.week_seconds, "root_days": profile.root_days,
                    "leaf_days": profile.leaf_days, "renew_days": profile.renew_days,
                    "rotate_lead_days": profile.rotate_lead_days},
        "endpoints": endpoints,
        "failed_handshakes": sum(e["failures"] for n, e in endpoints.items() if "@" in n),
        "certificate_failures": sum(e["certificate_failures"] for e in endpoints.values()),
        "unavailable_probes": sum(e["unavailable"] for n, e in endpoints.items() if "@" in n),
        "failed_writes": sum(e["failures"] for n, e in endpoints.items() if n.endswith("-write")),
        "writes_failed_in_switchover": len(switchover),
        "weeks": [{k: w[k] for k in ("week", "seconds", "exit", "renewed", "copied", "reloaded")} for w in weeks],
        "events": [{k: v for k, v in e.items() if k != "t"} for e in events],
        "longest_weekly_job_seconds": max((w["seconds"] for w in weeks), default=0),
    }


def timeline_svg(layout: cluster.Layout, profile: cluster.Profile, t0: float) -> str:
    """One row per endpoint, one cell per simulated week: green when every handshake of that week
    succeeded, red when any failed, grey when the endpoint was not there; events as vertical lines."""
    probes, events = _lines(layout.probe_log), _lines(layout.events)
    names = sorted({p["name"] for p in probes})
    cells: dict[tuple[str, int], list[int]] = {}
    for p in probes:
        w = int((p["t"] - t0) // profile.week_seconds) + 1
        c = cells.setdefault((p["name"], w), [0, 0])
        c[0] += 1
        c[1] += 0 if p["ok"] else 1
    weeks = profile.weeks
    left, top, cw, rh = 190, 30, max(2, 900 // max(weeks, 1)), 16
    width, height = left + cw * weeks + 20, top + rh * len(names) + 60
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
           f'<text x="{left}" y="16">handshakes per endpoint per simulated week (green: all succeeded, red: a failure); events marked</text>']
    for i, name in enumerate(names):
        y = top + i * rh
        out.append(f'<text x="4" y="{y + 12}">{escape(name)}</text>')
        for w in range(1, weeks + 1):
            c = cells.get((name, w))
            colour = "#ddd" if c is None else ("#c0392b" if c[1] else "#27ae60")
            out.append(f'<rect x="{left + (w - 1) * cw}" y="{y}" width="{cw}" height="{rh - 2}" fill="{colour}"/>')
    base = top + rh * len(names)
    for e in events:
        x = left + (e["week"] - 0.5) * cw
        out.append(f'<line x1="{x}" y1="{top}" x2="{x}" y2="{base + 6}" stroke="#2c3e50" stroke-width="1"/>')
        out.append(f'<text x="{x}" y="{base + 18 + 12 * (events.index(e) % 3)}" font-size="9">{escape(e["kind"])} (w{e["week"]})</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write(layout: cluster.Layout, profile: cluster.Profile, t0: float, started: str) -> dict:
    report = build(layout, profile, t0, started)
    cluster.write_json_atomically(layout.out / "report.json", report)
    (layout.out / "timeline.svg").write_text(timeline_svg(layout, profile, t0))
    return report
