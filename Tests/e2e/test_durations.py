"""Durations to the second (SPEC §7 "Lifetime", docs/issuance.md): every validity and window takes
`s`, `min`, `h`, `d`, `w`, `mo` (or the older `m`) and `y`, so a whole lifetime can be compressed
into minutes. Lifetimes are read back from the certificates with Python `cryptography`, never from
chpki's report; bad units are refused naming the field, with the CA untouched."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509

import helpers as h
from lifecycle_support import CA, now_s

BACKDATING = dt.timedelta(hours=1)  # CertificateProfile.backdating: leaves start an hour early

COMPRESSED = """\
domain: example.com
defaults:
  validity: {validity}
  renew_before: {renew_before}
hosts:
  - name: backend-1.example.com
    ips: [10.0.0.1]
    groups: [backend]
services:
  etcd: {{ hosts: backend }}
"""


def leaves(ca: CA) -> list[x509.Certificate]:
    return [x509.load_pem_x509_certificate(r["certificate"].encode())
            for r in ca.json_ok("list") if r["kind"] != "ca" and r["status"] == "valid"]


def lifetime(cert: x509.Certificate) -> dt.timedelta:
    return cert.not_valid_after_utc - cert.not_valid_before_utc - BACKDATING


def make(tmp_path, chpki_bin, validity="90min", renew_before="10min") -> CA:
    ca = CA(chpki_bin, tmp_path / "ca-home", inventory_text=COMPRESSED.format(validity=validity, renew_before=renew_before))
    ca.ok("init-ca", signed=True)
    return ca


def test_leaves_of_minutes_are_signed_for_exactly_that_long(tmp_path, chpki_bin):
    ca = make(tmp_path, chpki_bin, validity="90min")
    ca.ok("issue", signed=True)
    certs = leaves(ca)
    assert certs, "issue signed no leaf"
    for cert in certs:
        assert lifetime(cert) == dt.timedelta(minutes=90), cert.subject.rfc4514_string()


@pytest.mark.parametrize("text, expected", [
    ("45s", dt.timedelta(seconds=45)),
    ("7200s", dt.timedelta(hours=2)),
    ("36h", dt.timedelta(hours=36)),
    ("2w", dt.timedelta(weeks=2)),
])
def test_every_fixed_unit(tmp_path, chpki_bin, text, expected):
    ca = make(tmp_path, chpki_bin, validity=text, renew_before="1s")
    ca.ok("issue", signed=True)
    assert {lifetime(c) for c in leaves(ca)} == {expected}


@pytest.mark.parametrize("text", ["2m", "2mo"])
def test_m_and_mo_are_calendar_months(tmp_path, chpki_bin, text):
    """`m` keeps meaning months (inventories written before `mo` and `min`); both are calendar months."""
    ca = make(tmp_path, chpki_bin, validity=text, renew_before="1d")
    ca.ok("issue", signed=True)
    for cert in leaves(ca):
        start = cert.not_valid_before_utc + BACKDATING
        month = start.month + 2
        year = start.year + (month - 1) // 12
        month = (month - 1) % 12 + 1
        day = min(start.day, [31, 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28,
                              31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1])
        assert cert.not_valid_after_utc == start.replace(year=year, month=month, day=day)


def test_expiring_and_renew_windows_in_seconds_and_minutes(tmp_path, chpki_bin):
    ca = make(tmp_path, chpki_bin, validity="90min", renew_before="10min")
    ca.ok("issue", signed=True)
    assert ca.run("expiring", "--within", "30min").returncode == 0
    res = ca.run("expiring", "--within", "5400s")
    assert res.returncode == 1, res
    # renew_before 10min: nothing due now; 85 minutes on, every leaf is, and the renewed leaves
    # last 90 minutes again (a renewal must not round a compressed lifetime up to a day).
    ca.ok("renew", signed=True)
    assert {lifetime(c) for c in leaves(ca)} == {dt.timedelta(minutes=90)}
    later = now_s() + dt.timedelta(minutes=85)
    res = ca.signed("renew", now=later)
    h.assert_ok(res)
    assert "renewed" in res.stdout, res.stdout
    renewed = leaves(ca)
    assert renewed and all(c.not_valid_before_utc + BACKDATING >= later - dt.timedelta(seconds=5) for c in renewed)
    assert {lifetime(c) for c in renewed} == {dt.timedelta(minutes=90)}


@pytest.mark.parametrize("field, text", [
    ("validity", "5mins"), ("validity", "90 min"), ("validity", "1.5h"), ("validity", "0s"),
    ("validity", "101y"), ("validity", "5ms"), ("renew_before", "10sec"), ("renew_before", "-5min"),
])
def test_bad_units_in_the_inventory_are_refused_naming_the_field(tmp_path, chpki_bin, field, text):
    ca = make(tmp_path, chpki_bin)
    before = h.snapshot(ca.ca_dir)
    values = {"validity": "90min", "renew_before": "10min", field: text}
    ca.inventory.write_text(COMPRESSED.format(**values))
    res = ca.signed("issue")
    assert res.returncode == 2, res
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert f"defaults.{field}" in lines[0] and "min" in lines[0] and "mo" in lines[0], lines[0]
    assert h.error_object(res)["code"] == "inventory.invalid-value"
    assert h.snapshot(ca.ca_dir) == before


@pytest.mark.parametrize("args, option, signed", [
    (("expiring", "--within", "5sec"), "--within", False),
    (("expiring", "--within", "m"), "--within", False),
    (("renew", "--within", "3 d"), "--within", True),
])
def test_bad_units_on_the_command_line_are_refused_naming_the_option(tmp_path, chpki_bin, args, option, signed):
    ca = make(tmp_path, chpki_bin)
    before = h.snapshot(ca.ca_dir)
    res = (ca.signed if signed else ca.run)(*args)
    assert res.returncode == 2, res
    assert option in res.stderr and "min" in res.stderr, res.stderr
    assert h.error_object(res)["code"] == "usage.invalid-value"
    assert h.snapshot(ca.ca_dir) == before


def test_init_ca_validity_in_hours(tmp_path, chpki_bin):
    ca = CA(chpki_bin, tmp_path / "h", inventory_text=COMPRESSED.format(validity="30min", renew_before="5min"))
    h.assert_ok(ca.signed("init-ca", "--validity", "6h"))
    root = x509.load_pem_x509_certificate((ca.ca_dir / "root.pem").read_bytes())
    span = root.not_valid_after_utc - root.not_valid_before_utc
    # the CA is backdated too; whatever the backdating, the root lasts six hours from now
    assert dt.timedelta(hours=6) <= span <= dt.timedelta(hours=6) + dt.timedelta(days=1), span
    assert abs(root.not_valid_after_utc - (now_s() + dt.timedelta(hours=6))) < dt.timedelta(minutes=1)


def crl_next_updates(ca: CA) -> list[dt.datetime]:
    """nextUpdate of every CRL in ca/crl.pem (one per issuer), read with Python cryptography."""
    text = (ca.ca_dir / "crl.pem").read_text()
    blocks = [b + "-----END X509 CRL-----\n" for b in text.split("-----END X509 CRL-----") if "BEGIN X509 CRL" in b]
    return [x509.load_pem_x509_crl(b.encode()).next_update_utc for b in blocks]


@pytest.mark.parametrize("args, expected", [
    (("--lifetime", "90s"), dt.timedelta(seconds=90)),
    (("--lifetime", "2h"), dt.timedelta(hours=2)),
    (("--days", "7"), dt.timedelta(days=7)),
    ((), dt.timedelta(days=30)),
])
def test_crl_lifetime_to_the_second(tmp_path, chpki_bin, args, expected):
    ca = make(tmp_path, chpki_bin)
    ca.ok("issue", signed=True)
    before = now_s()
    ca.ok("crl", *args, signed=True)
    updates = crl_next_updates(ca)
    assert updates
    for next_update in updates:
        assert before + expected - dt.timedelta(seconds=2) <= next_update <= now_s() + expected + dt.timedelta(seconds=2)


@pytest.mark.parametrize("args, option", [
    (("--lifetime", "5mins"), "--lifetime"), (("--lifetime", "3651d"), "--lifetime"),
    (("--lifetime", "11y"), "--lifetime"), (("--days", "0"), "--days"),
    (("--days", "3651"), "--days"), (("--days", "7", "--lifetime", "7d"), "--days"),
])
def test_bad_crl_lifetimes_are_refused_naming_the_option(tmp_path, chpki_bin, args, option):
    ca = make(tmp_path, chpki_bin)
    before = h.snapshot(ca.ca_dir)
    res = ca.signed("crl", *args)
    assert res.returncode == 2, res
    assert option in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    both = "--lifetime" in args and "--days" in args
    assert h.error_object(res)["code"] == ("usage.conflicting-options" if both else "usage.invalid-value")
    assert h.snapshot(ca.ca_dir) == before
