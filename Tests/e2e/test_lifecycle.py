"""`chpki expiring`, `renew`, `revoke` and `crl` (docs/lifecycle.md, SPEC §1 and §6).

Time is moved with CHPKI_NOW. What is due is computed here from the certificates stored in ca.db
(read with sqlite3 and Python cryptography), never from chpki's own report; CRLs, index.txt and
renewed certificates are checked with the `openssl` CLI (crl -verify, verify -crl_check -attime,
ocsp -index in local responder mode) and cryptography.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import CRLEntryExtensionOID, ExtensionOID

import helpers as h
from lifecycle_support import DAY, CA, epoch, make_ca, not_after, now_s, serial_hex, write_pem

REFERENCE = "reference-000.yml"  # leaves 397d, renew_before 30d, root 10y (ec-p384)
LOOPBACK = "loopback.yml"  # leaves 90d, renew_before 15d, root 2y
CA_KINDS = ("root", "intermediate")
SLACK = dt.timedelta(seconds=5)


# ---------------------------------------------------------------------------------------------
# what is due, computed from ca.db


def due_serials(ca: CA, at: dt.datetime, leaf_window: dt.timedelta | None, ca_window: dt.timedelta | None) -> set[str]:
    """Serials of the certificates not superseded or revoked whose notAfter is before `at` + the
    window (None: that kind is not counted). Already expired ones count: they are the most urgent."""
    out = set()
    for r in ca.rows("status = 'valid'"):
        na = not_after(r)
        window = ca_window if r["kind"] in CA_KINDS else leaf_window
        if window is not None and na <= at + window:
            out.add(r["serial"])
    return out


def expiring_json(ca: CA, *args, now=None, code: int):
    res = ca.run("expiring", "--json", *args, now=now)
    assert res.returncode == code, f"expected exit {code}" + h.describe(res)
    report = h.parse_json_output(res)
    assert isinstance(report.get("certificates"), list), report
    return report


def check_entries(ca: CA, report, at: dt.datetime):
    """Every listed certificate's fields against its row in ca.db and its PEM."""
    rows = ca.by_serial()
    for c in report["certificates"]:
        assert set(c) >= {"kind", "service", "host", "name", "serial", "not_after", "days_left"}, c
        r = rows.get(c["serial"])
        assert r is not None, f"listed serial {c['serial']} is not in ca.db"
        if r["kind"] in CA_KINDS:
            assert c["kind"] in (r["kind"], "ca"), (c, r["kind"])
        else:
            assert (c["kind"], c["host"], c["service"], c["name"]) == h.row_identity(r), c
        na = not_after(r)
        assert h.rfc3339(c["not_after"]) == na, (c, na)
        days = (na - at) / DAY
        assert isinstance(c["days_left"], int) and abs(c["days_left"] - days) <= 1, (c, days)


# ---------------------------------------------------------------------------------------------
# expiring


def test_expiring_lists_every_due_leaf_and_exits_1(chpki_bin, tmp_path):
    ca = make_ca(chpki_bin, tmp_path / "ref", REFERENCE)
    at = now_s() + 370 * DAY
    expected = due_serials(ca, at, 30 * DAY, 365 * DAY)
    assert expected == set(ca.valid_leaves()), "scenario: at now+370d every 397d leaf is due, no CA"

    report = expiring_json(ca, now=at, code=1)
    listed = [c["serial"] for c in report["certificates"]]
    assert len(listed) == len(set(listed)), "a certificate is listed twice"
    assert set(listed) == expected, (
        f"missing {sorted(expected - set(listed))}, unexpected {sorted(set(listed) - expected)}")
    check_entries(ca, report, at)

    # the human report: exit 1 as well, one line per certificate naming its serial
    res = ca.run("expiring", now=at)
    assert res.returncode == 1, h.describe(res)
    for s in expected:
        assert len([line for line in res.stdout.splitlines() if s in line]) == 1, f"{s} not listed once" + h.describe(res)
    assert serial_hex(ca.root()) not in res.stdout


def test_expiring_nothing_due_exits_0(chpki_bin, tmp_path):
    ca = make_ca(chpki_bin, tmp_path / "ref", REFERENCE)
    at = now_s() + 10 * DAY
    assert due_serials(ca, at, 30 * DAY, 365 * DAY) == set()
    report = expiring_json(ca, now=at, code=0)
    assert report["certificates"] == []
    res = h.assert_ok(ca.run("expiring", now=at))
    for s in ca.by_serial():
        assert s not in res.stdout


def test_expiring_json_report_states_its_window(chpki_bin, tmp_path):
    """docs/lifecycle.md: `{"within": ..., "certificates": [...]}`, with and without --within, and
    the listed certificates are exactly those due in that window: none of a fresh CA by the default
    windows (renew_before 30d for leaves, 365d for CAs), every leaf (397d) but no CA with 400d."""
    ca = make_ca(chpki_bin, tmp_path / "lo", LOOPBACK)
    at = now_s()
    for args, within, leaf_window, code in (((), None, 30 * DAY, 0), (("--within", "400d"), "400d", 400 * DAY, 1)):
        report = expiring_json(ca, *args, now=at, code=code)
        assert "within" in report, f"expiring --json {' '.join(args)}: no 'within' key in {sorted(report)}"
        assert report["within"] == within, report["within"]
        expected = due_serials(ca, at, leaf_window, leaf_window if within else 365 * DAY)
        assert {c["serial"] for c in report["certificates"]} == expected, args
        check_entries(ca, report, at)
    assert len(expected) == len(ca.valid_leaves()) > 0


def test_expiring_within_overrides_the_windows(chpki_bin, tmp_path):
    ca = make_ca(chpki_bin, tmp_path / "ref", REFERENCE, init_args=("--no-intermediate",))  # root and leaves only
    at = now_s()
    leaves = set(ca.valid_leaves())
    root = serial_hex(ca.root())

    # 396d: just short of every 397d leaf
    assert due_serials(ca, at, 396 * DAY, 396 * DAY) == set()
    assert expiring_json(ca, "--within", "396d", now=at, code=0)["certificates"] == []

    report = expiring_json(ca, "--within", "400d", now=at, code=1)
    assert {c["serial"] for c in report["certificates"]} == leaves == due_serials(ca, at, 400 * DAY, 400 * DAY)

    # 3700d reaches the 10-year root as well
    expected = due_serials(ca, at, 3700 * DAY, 3700 * DAY)
    assert expected == leaves | {root}
    report = expiring_json(ca, "--within", "3700d", now=at, code=1)
    assert {c["serial"] for c in report["certificates"]} == expected
    check_entries(ca, report, at)


def test_expiring_ca_certificates_use_a_365d_window(chpki_bin, tmp_path):
    # a 700-day root with an intermediate: at now+340d both CAs have < 365d left, the leaves 57d
    ca = make_ca(chpki_bin, tmp_path / "short", REFERENCE, init_args=("--validity", "700d", "--intermediate"))
    at = now_s() + 340 * DAY
    expected = due_serials(ca, at, 30 * DAY, 365 * DAY)
    cas = {r["serial"] for r in ca.rows("status = 'valid'") if r["kind"] in CA_KINDS}
    assert len(cas) == 2 and expected == cas, "scenario: only the root and the intermediate are due"
    report = expiring_json(ca, now=at, code=1)
    assert {c["serial"] for c in report["certificates"]} == expected
    check_entries(ca, report, at)


def test_expiring_skips_revoked_and_superseded(chpki_bin, tmp_path):
    ca = make_ca(chpki_bin, tmp_path / "lo", LOOPBACK)
    at = now_s() + 80 * DAY  # 90d leaves, renew_before 15d: all due
    leaves = ca.valid_leaves()
    victim = sorted(leaves)[0]
    ca.ok("revoke", victim, signed=True)
    report = expiring_json(ca, now=at, code=1)
    assert {c["serial"] for c in report["certificates"]} == set(leaves) - {victim}
    ca.ok("renew", now=at, signed=True)
    ca.ok("crl", now=at, signed=True)  # the CRL of day 0 is past its nextUpdate: expiring would flag it
    assert expiring_json(ca, now=at, code=0)["certificates"] == []
    # renew re-issues valid certificates only: the revoked one stays revoked, without a successor
    assert ca.by_serial()[victim]["status"] == "revoked"
    assert h.row_identity(leaves[victim]) not in {h.row_identity(r) for r in ca.valid_leaves().values()}


def test_expired_leaves_are_listed_and_renewed(chpki_bin, tmp_path):
    """A leaf that expired unnoticed (the timer was down) is listed, with negative days left, and
    renewed: monitoring must not turn green because a certificate is already dead."""
    ca = make_ca(chpki_bin, tmp_path / "lo", LOOPBACK)
    at = now_s() + 100 * DAY  # 90d leaves: expired 10 days ago
    leaves = ca.valid_leaves()
    assert all(not_after(r) < at for r in leaves.values())
    report = expiring_json(ca, now=at, code=1)
    assert {c["serial"] for c in report["certificates"]} == set(leaves) == due_serials(ca, at, 15 * DAY, 365 * DAY)
    check_entries(ca, report, at)
    assert all(c["days_left"] < 0 for c in report["certificates"])
    old = {h.row_identity(r): r for r in leaves.values()}
    assert renewed_identities(renew_report(ca, now=at)) == set(old)
    problems = check_renewed(old, {h.row_identity(r): r for r in ca.valid_leaves().values()}, at, same_key=True)
    assert not problems, "\n".join(problems)
    ca.ok("crl", now=at, signed=True)  # the CRL of day 0 is past its nextUpdate: expiring would flag it
    assert expiring_json(ca, now=at, code=0)["certificates"] == []


# ---------------------------------------------------------------------------------------------
# renew


def renew_report(ca: CA, *args, now):
    report = ca.json_ok("renew", *args, now=now, signed=True)
    assert isinstance(report.get("certificates"), list), report
    return report


def renewed_identities(report) -> set:
    return {(c["kind"], c["host"], c["service"], c["name"]) for c in report["certificates"] if c.get("action") == "renewed"}


def verify_at(ca: CA, certs: dict[str, x509.Certificate], at: dt.datetime, tmp) -> list[str]:
    """`openssl verify -attime` of each certificate against root.pem (and the intermediate)."""
    jobs = []
    for serial, cert in certs.items():
        f = write_pem(tmp / f"{serial}.pem", cert)
        args = ["-attime", epoch(at), "-CAfile", ca.ca_dir / "root.pem"]
        if ca.has_intermediate():
            args += ["-untrusted", ca.ca_dir / "intermediate.pem"]
        jobs.append([*args, f])
    return h.openssl_verify_jobs(jobs)


def check_renewed(old: dict, new: dict, at: dt.datetime, same_key: bool) -> list[str]:
    """old, new: identity -> row. Same names, usages, key type and lifetime; new serial."""
    problems = []
    for ident, o in old.items():
        n = new.get(ident)
        if n is None:
            problems.append(f"{ident}: no valid certificate after renew")
            continue
        oc, nc = h.row_cert(o), h.row_cert(n)
        if n["serial"] == o["serial"] or nc.serial_number == oc.serial_number:
            problems.append(f"{ident}: serial not changed")
        if nc.subject != oc.subject:
            problems.append(f"{ident}: subject {nc.subject.rfc4514_string()} != {oc.subject.rfc4514_string()}")
        if nc.issuer != oc.issuer:
            problems.append(f"{ident}: issuer changed")
        osan, nsan = h.ext(oc, x509.SubjectAlternativeName), h.ext(nc, x509.SubjectAlternativeName)
        if h.general_names(osan and osan.value) != h.general_names(nsan and nsan.value):
            problems.append(f"{ident}: SANs changed")
        if h.eku_names(nc) != h.eku_names(oc):
            problems.append(f"{ident}: EKU {h.eku_names(nc)} != {h.eku_names(oc)}")
        if h.key_type_of(nc.public_key()) != h.key_type_of(oc.public_key()):
            problems.append(f"{ident}: key type changed")
        if (h.spki(nc) == h.spki(oc)) != same_key:
            problems.append(f"{ident}: public key {'changed' if same_key else 'kept'}")
        life_old = oc.not_valid_after_utc - oc.not_valid_before_utc
        life_new = nc.not_valid_after_utc - nc.not_valid_before_utc
        if abs(life_new - life_old) > SLACK:
            problems.append(f"{ident}: lifetime {life_new} != {life_old}")
        if abs(nc.not_valid_before_utc - (at - dt.timedelta(hours=1))) > SLACK:
            problems.append(f"{ident}: notBefore {nc.not_valid_before_utc} is not now-1h ({at})")
        if n["private_key_pem"]:
            k = serialization.load_pem_private_key(n["private_key_pem"].encode(), None)
            if h.spki(k) != h.spki(nc):
                problems.append(f"{ident}: the stored key does not match the renewed certificate")
    return problems


def test_renew_reissues_every_due_leaf_once(chpki_bin, tmp_path):
    ca = make_ca(chpki_bin, tmp_path / "ref", REFERENCE)
    at = now_s() + 370 * DAY
    before = ca.valid_leaves()
    due = due_serials(ca, at, 30 * DAY, None)
    assert due == set(before)
    old = {h.row_identity(r): r for r in before.values()}
    root_row = [r for r in ca.rows() if r["kind"] == "root"]

    report = renew_report(ca, now=at)
    assert renewed_identities(report) == set(old), "the report's renewed certificates are not the due ones"

    rows = ca.by_serial()
    for s in due:
        assert rows[s]["status"] == "superseded", f"old {s} is {rows[s]['status']}, expected superseded"
    new = {h.row_identity(r): r for r in ca.valid_leaves().values()}
    assert set(new) == set(old)
    problems = check_renewed(old, new, at, same_key=True)
    assert not problems, "\n".join(problems)
    failures = verify_at(ca, {r["serial"]: h.row_cert(r) for r in new.values()}, at, tmp_path / "v")
    assert not failures, "\n".join(failures)
    assert [r for r in ca.rows() if r["kind"] == "root"] == root_row, "renew must not touch the root"

    # idempotent: nothing is due any more
    state = [(r["serial"], r["status"]) for r in ca.rows()]
    again = renew_report(ca, now=at)
    assert renewed_identities(again) == set(), again
    assert [(r["serial"], r["status"]) for r in ca.rows()] == state
    ca.ok("crl", now=at, signed=True)  # the CRL of day 0 is past its nextUpdate: expiring would flag it
    assert expiring_json(ca, now=at, code=0)["certificates"] == []


def test_renew_rekey_with_intermediate(chpki_bin, tmp_path):
    ca = make_ca(chpki_bin, tmp_path / "lo", LOOPBACK, init_args=("--intermediate",))
    at = now_s() + 80 * DAY  # 90d leaves, renew_before 15d
    old = {h.row_identity(r): r for r in ca.valid_leaves().values()}
    report = renew_report(ca, "--rekey", now=at)
    assert renewed_identities(report) == set(old)
    new = {h.row_identity(r): r for r in ca.valid_leaves().values()}
    problems = check_renewed(old, new, at, same_key=False)
    assert not problems, "\n".join(problems)
    for r in new.values():
        assert h.row_cert(r).issuer == ca.issuer().subject
    failures = verify_at(ca, {r["serial"]: h.row_cert(r) for r in new.values()}, at, tmp_path / "v")
    assert not failures, "\n".join(failures)


GRAFANA = "  grafana: { hosts: frontend }\n"


def test_renew_only_what_is_due(chpki_bin, tmp_path):
    """Leaves issued at two times: at now+370d only the older ones are due; --within narrows."""
    ca = make_ca(chpki_bin, tmp_path / "ref", REFERENCE)
    original = ca.valid_leaves()
    # 200 days later a service is added and issued
    later = now_s() + 200 * DAY
    text = ca.inventory.read_text()
    ca.inventory.write_text(text.replace("services:\n", "services:\n" + GRAFANA, 1))
    report = ca.issue(now=later)
    added = {s: r for s, r in ca.valid_leaves().items() if r["service"] == "grafana"}
    assert len(added) == 4, "scenario: grafana server+client on 2 frontends"
    assert {c["action"] for c in report["certificates"] if c["service"] != "grafana"} == {"unchanged"}

    at = now_s() + 370 * DAY
    assert due_serials(ca, at, 30 * DAY, None) == set(original)

    # --within 10d: the originals have 27 days left, nothing to do
    state = [(r["serial"], r["status"]) for r in ca.rows()]
    assert renewed_identities(renew_report(ca, "--within", "10d", now=at)) == set()
    assert [(r["serial"], r["status"]) for r in ca.rows()] == state

    report = renew_report(ca, now=at)
    assert renewed_identities(report) == {h.row_identity(r) for r in original.values()}
    rows = ca.by_serial()
    for s in original:
        assert rows[s]["status"] == "superseded"
    for s in added:
        assert rows[s]["status"] == "valid", f"grafana {s} (not due) was touched"
    assert set(added) <= set(ca.valid_leaves())


# ---------------------------------------------------------------------------------------------
# revoke and crl


def crl_of(ca: CA) -> x509.CertificateRevocationList:
    return x509.load_pem_x509_crl((ca.ca_dir / "crl.pem").read_bytes())


def crl_number(crl) -> int:
    return crl.extensions.get_extension_for_oid(ExtensionOID.CRL_NUMBER).value.crl_number


def check_crl(ca: CA, days: int = 30) -> x509.CertificateRevocationList:
    """crl.pem: v2, signed by the issuing CA, AKI, nextUpdate = thisUpdate + days; openssl accepts it."""
    crl = crl_of(ca)
    issuer = ca.issuer()
    assert crl.issuer == issuer.subject, f"CRL issuer {crl.issuer.rfc4514_string()}"
    assert crl.is_signature_valid(issuer.public_key())
    aki = crl.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_KEY_IDENTIFIER).value
    assert aki.key_identifier == h.ext(issuer, x509.SubjectKeyIdentifier).value.digest
    assert crl.next_update_utc - crl.last_update_utc == days * DAY
    res = h.openssl("crl", "-in", ca.ca_dir / "crl.pem", "-CAfile", ca.issuer_path(), "-verify", "-noout")
    assert res.returncode == 0 and "verify OK" in res.stdout + res.stderr, h.describe(res)
    text = h.openssl("crl", "-in", ca.ca_dir / "crl.pem", "-noout", "-text", check=True).stdout
    assert "Version 2" in text and "X509v3 CRL Number" in text, text
    return crl


def revoked_entry(crl, serial: str):
    return crl.get_revoked_certificate_by_serial_number(int(serial, 16))


def entry_reason(entry):
    try:
        return entry.extensions.get_extension_for_oid(CRLEntryExtensionOID.CRL_REASON).value.reason
    except x509.ExtensionNotFound:
        return None


def verify_crl_check(ca: CA, cert: x509.Certificate, tmp, name: str):
    f = write_pem(tmp / f"{name}.pem", cert)
    args = ["-crl_check", "-CRLfile", ca.ca_dir / "crl.pem", "-CAfile", ca.ca_dir / "root.pem"]
    if ca.has_intermediate():
        args += ["-untrusted", ca.ca_dir / "intermediate.pem"]
    return h.openssl("verify", *args, f), f


def pick(leaves: dict, **want) -> dict:
    return next(r for r in sorted(leaves.values(), key=lambda r: r["serial"])
                if all(r[k] == v for k, v in want.items()))


@pytest.mark.parametrize("intermediate", [False, True], ids=["root", "intermediate"])
def test_revoke_serial_crl_and_ocsp(chpki_bin, tmp_path, intermediate):
    ca = make_ca(chpki_bin, tmp_path / "lo", LOOPBACK, init_args=() if intermediate else ("--no-intermediate",))
    n0 = crl_number(crl_of(ca))
    leaves = ca.valid_leaves()
    victim = pick(leaves, kind="server", service="etcd", host="backend-1.chpki.test")
    good = pick(leaves, kind="server", service="etcd", host="backend-2.chpki.test")
    start = now_s()

    ca.ok("revoke", victim["serial"], "--reason", "keyCompromise", signed=True)

    rows = ca.by_serial()
    assert rows[victim["serial"]]["status"] == "revoked"
    assert [s for s in leaves if rows[s]["status"] != "valid"] == [victim["serial"]], "revoked more than asked"

    crl = check_crl(ca)
    n1 = crl_number(crl)
    assert n1 > n0, f"CRL number {n1} did not increase from {n0}"
    entry = revoked_entry(crl, victim["serial"])
    assert entry is not None, "the revoked serial is not in the CRL"
    assert entry_reason(entry) == x509.ReasonFlags.key_compromise
    assert start - SLACK <= entry.revocation_date_utc <= h.utcnow() + SLACK
    assert len(list(crl)) == 1
    text = h.openssl("crl", "-in", ca.ca_dir / "crl.pem", "-noout", "-text", check=True).stdout
    assert victim["serial"] in text.replace(":", "").upper() and "Key Compromise" in text, text

    # index.txt: R, revocation time, reason
    index = {e["serial"]: e for e in h.parse_index((ca.ca_dir / "index.txt").read_text())}
    assert index[victim["serial"]]["status"] == "R"
    assert re.fullmatch(r"\d{12,14}Z,keyCompromise", index[victim["serial"]]["revocation"]), index[victim["serial"]]
    assert index[good["serial"]]["status"] == "V"

    # openssl verify -crl_check: rejects the revoked leaf, accepts the good one
    tmp = tmp_path / "v"
    res, victim_pem = verify_crl_check(ca, h.row_cert(victim), tmp, "victim")
    assert res.returncode != 0 and "certificate revoked" in res.stdout + res.stderr, h.describe(res)
    res, good_pem = verify_crl_check(ca, h.row_cert(good), tmp, "good")
    assert res.returncode == 0 and res.stdout.strip().endswith(": OK"), h.describe(res)

    # openssl ocsp -index (local responder, no network)
    statuses = h.ocsp_statuses(ca.ca_dir / "index.txt", ca.issuer_path(), [victim_pem, good_pem], tmp_path / "ocsp")
    assert statuses == {str(victim_pem): "revoked", str(good_pem): "good"}

    # chpki crl re-signs: a higher number, the same entries, --days
    ca.ok("crl", "--days", "7", signed=True)
    crl2 = check_crl(ca, days=7)
    assert crl_number(crl2) > n1
    assert {e.serial_number for e in crl2} == {int(victim["serial"], 16)}
    ca.ok("crl", signed=True)
    assert crl_number(check_crl(ca, days=30)) > crl_number(crl2)


def test_revoke_host_and_host_service(chpki_bin, tmp_path):
    ca = make_ca(chpki_bin, tmp_path / "lo", LOOPBACK)
    leaves = ca.valid_leaves()
    n0 = crl_number(crl_of(ca))

    ca.ok("revoke", "backend-2", "--reason", "cessationOfOperation", signed=True)  # short name
    host_set = {s for s, r in leaves.items() if r["host"] == "backend-2.chpki.test"}
    assert len(host_set) == 7, "scenario: 4 servers + 3 clients on backend-2"
    rows = ca.by_serial()
    assert {s for s in leaves if rows[s]["status"] == "revoked"} == host_set
    crl = check_crl(ca)
    n1 = crl_number(crl)
    assert n1 > n0
    assert {e.serial_number for e in crl} == {int(s, 16) for s in host_set}
    assert {entry_reason(e) for e in crl} == {x509.ReasonFlags.cessation_of_operation}

    ca.ok("revoke", "backend-3.chpki.test/patroni", signed=True)  # FQDN/service
    svc_set = {s for s, r in leaves.items() if r["host"] == "backend-3.chpki.test" and r["service"] == "patroni"}
    assert len(svc_set) == 2, "scenario: patroni server + client"
    rows = ca.by_serial()
    assert {s for s in leaves if rows[s]["status"] == "revoked"} == host_set | svc_set
    crl = check_crl(ca)
    assert crl_number(crl) > n1
    assert {e.serial_number for e in crl} == {int(s, 16) for s in host_set | svc_set}

    # the next issue replaces exactly the revoked certificates, with new keys (a revoked key may be
    # compromised: docs/issuance.md, no valid certificate -> `issued`, new key)
    report = ca.issue()
    changed = {(c["kind"], c["host"], c["service"], c["name"]) for c in report["certificates"] if c["action"] != "unchanged"}
    assert changed == {h.row_identity(leaves[s]) for s in host_set | svc_set}
    now_valid = {h.row_identity(r): r for r in ca.valid_leaves().values()}
    for s in host_set | svc_set:
        replacement = now_valid[h.row_identity(leaves[s])]
        assert h.spki(h.row_cert(replacement)) != h.spki(h.row_cert(leaves[s])), f"{s}: revoked key reused"


def test_revoke_serial_any_case_with_colons(chpki_bin, tmp_path):
    ca = make_ca(chpki_bin, tmp_path / "lo", LOOPBACK)
    victim = sorted(ca.valid_leaves())[3]
    spelled = ":".join(victim[i:i + 2] for i in range(0, len(victim), 2)).lower()
    ca.ok("revoke", spelled, signed=True)
    assert ca.by_serial()[victim]["status"] == "revoked"
    entry = revoked_entry(check_crl(ca), victim)
    assert entry is not None and entry_reason(entry) in (None, x509.ReasonFlags.unspecified)


@pytest.mark.parametrize(
    "target,extra",
    [
        ("random-serial", ()),
        ("nosuchhost", ()),
        ("nosuchhost.chpki.test/etcd", ()),
        ("backend-1.chpki.test/nginx", ()),  # a known host without that service
        ("backend-1", ("--reason", "notAReason")),
    ],
    ids=["unknown-serial", "unknown-host", "unknown-host-service", "host-without-service", "bad-reason"],
)
def test_revoke_refusals_change_nothing(chpki_bin, tmp_path, target, extra):
    ca = make_ca(chpki_bin, tmp_path / "lo", LOOPBACK)
    if target == "random-serial":
        target = secrets.token_hex(18).upper()
    before = ca.snapshot()
    res = ca.signed("revoke", target, *extra)
    assert res.returncode == 2, h.describe(res)
    assert res.stderr.strip(), "a refusal says why on stderr"
    assert h.error_object(res)["code"] == ("usage.invalid-argument" if extra else "revoke.no-match")
    assert ca.snapshot() == before, "a refused revoke changed the CA directory"
