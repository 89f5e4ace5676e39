"""Output that never misleads (issue 20) and never reaches the terminal raw (issue 16).

- `renew` prints each renewed certificate's own expiry, the one `list --json` shows.
- After each command of the README's flow, the one `next:` line runs as printed (shlex, with the
  `# why` comment dropped) and succeeds: it carries --ca-dir, --inventory, --passphrase-file and,
  when certificates wait to be retired, --prune.
- `chpki issue`'s usage line shows the subcommand as optional.
- `list` has the DAYS LEFT column of `expiring` (same figures) and `list --json` a `seconds_left`.
- With --json a refusal is `{"error": {...}}` on stdout as well as one line on stderr; every error
  type is worded (a GRDB error names ca.db and what SQLite said).
- Newlines and escape sequences from an inventory or a certificate are printed escaped, one
  `chpki: error:` line per error, no raw ESC byte.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
import sqlite3
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import helpers as h
from conftest import Chpki

RFC3339 = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@pytest.fixture
def scratch(chpki_bin, tmp_path):
    """A scratch CA as in the README's flow, under non-default names (a space in the CA directory,
    so the next step must quote it), with a passphrase file."""
    work = tmp_path / "work"
    work.mkdir()
    tool = Chpki(chpki_bin, work)
    inventory = work / "site.yml"
    inventory.write_text(h.FULL_INVENTORY)
    pf = h.write_secret(work / "ca-passphrase", h.PASSPHRASE + "\n")
    common = ("--ca-dir", "the ca", "--inventory", "site.yml")
    return tool, work, inventory, pf, common


def next_step(res) -> list[str]:
    """The argv of the one `next:` line (the `# why` comment dropped); asserts there is exactly one."""
    lines = res.stdout.splitlines()
    nexts = [line for line in lines if line.lower().startswith("next:")]
    assert len(nexts) == 1, f"want one next: line, got {nexts!r}\n{h.describe(res)}"
    assert not [line for line in lines if line.startswith("Next:")]
    return shlex.split(nexts[0][len("next:"):], comments=True)


def run_next(tool: Chpki, argv: list[str]):
    assert argv[0] == "chpki", argv
    res = tool.run(*argv[1:])
    assert res.returncode == 0, f"the next step {shlex.join(argv)} failed:\n{h.describe(res)}"
    return res


def test_renew_prints_the_new_certificates_expiry(scratch):
    tool, work, inventory, pf, common = scratch
    h.assert_ok(tool.run("init-ca", *common, "--passphrase-file", pf))
    h.assert_ok(tool.run("issue", *common, "--passphrase-file", pf))
    before = {c["serial"]: c["not_after"] for c in json.loads(h.assert_ok(tool.run("list", "--json", *common)).stdout)}
    renewed = h.assert_ok(tool.run("renew", "--within", "1000d", *common, "--passphrase-file", pf))
    listed = {c["serial"]: c["not_after"] for c in json.loads(h.assert_ok(tool.run("list", "--json", *common)).stdout)}
    rows = [line for line in renewed.stdout.splitlines() if line.startswith("renewed ")]
    assert len(rows) >= 10, renewed.stdout
    for row in rows:
        serial = next(word for word in row.split() if re.fullmatch(r"[0-9A-F]{16,}", word))
        assert serial in listed and serial not in before, row
        printed = re.findall(rf"expires ({RFC3339})", row)
        assert printed == [listed[serial]], f"{row!r}: list --json says {listed[serial]}"


def test_each_next_step_runs_as_printed(scratch):
    tool, work, inventory, pf, common = scratch
    signed = (*common, "--passphrase-file", str(pf))

    # init-ca -> issue (everything)
    argv = next_step(h.assert_ok(tool.run("init-ca", *signed)))
    assert argv[1] == "issue" and "--passphrase-file" in argv and "the ca" in argv and "site.yml" in argv
    run_next(tool, argv)

    # A host leaves: the dry run's next step signs and retires (--prune), with the passphrase.
    inventory.write_text(h.FULL_INVENTORY.replace(
        "  - name: haproxy-1.example.com\n    ips: [10.0.0.21]\n    groups: [balancer]\n", "")
        .replace("  haproxy: { hosts: balancer }", ""))
    argv = next_step(h.assert_ok(tool.run("issue", "--dry-run", *signed)))
    assert argv[1] == "issue" and "--prune" in argv and "--dry-run" not in argv and "--passphrase-file" in argv
    plan = json.loads(h.assert_ok(tool.run("issue", "--dry-run", "--json", *common)).stdout)
    assert plan["retire"], plan
    run_next(tool, argv)
    assert not json.loads(h.assert_ok(tool.run("issue", "--dry-run", "--json", *common)).stdout)["retire"]

    # issue without --prune while a certificate waits: the next step prunes.
    inventory.write_text(h.FULL_INVENTORY.replace("  minio:   { hosts: backend, extra_san: [cinc-minio-cluster] }\n", "")
                         .replace("  - name: haproxy-1.example.com\n    ips: [10.0.0.21]\n    groups: [balancer]\n", "")
                         .replace("  haproxy: { hosts: balancer }", ""))
    argv = next_step(h.assert_ok(tool.run("issue", *signed)))
    assert argv[1:3] == ["issue", "--prune"], argv
    run_next(tool, argv)

    # Nothing waits: issue -> bundle -> verify
    argv = next_step(h.assert_ok(tool.run("issue", *signed)))
    assert argv[1] == "bundle" and "--prune" not in argv, argv
    bundled = run_next(tool, argv)
    run_next(tool, next_step(bundled))

    # renew -> bundle
    run_next(tool, next_step(h.assert_ok(tool.run("renew", "--within", "1000d", *signed))))

    # rotate-ca -> issue; rotate-ca --finish -> bundle
    run_next(tool, next_step(h.assert_ok(tool.run("rotate-ca", *signed))))
    run_next(tool, next_step(h.assert_ok(tool.run("rotate-ca", "--finish", "--force-unrecorded", *signed))))


def test_issue_usage_shows_the_subcommand_as_optional(chpki):
    for args in (["issue", "--help"], ["help", "issue"]):
        res = h.assert_ok(chpki.run(*args))
        usage = res.stdout[res.stdout.index("USAGE:"):].split("\n\n")[0]
        assert "<subcommand>" not in usage.replace("[<subcommand>]", ""), usage
        assert "[--dry-run]" in usage and "[--prune]" in usage, usage
        assert "server" in usage or "[<subcommand>]" in usage, usage
    # The bad usage line an operator sees names no required subcommand either.
    res = chpki.run("issue", "--no-such-flag")
    assert res.returncode == 2 and len(res.stderr.splitlines()) == 1, h.describe(res)


def test_list_shows_the_days_left_expiring_shows(scratch):
    tool, work, inventory, pf, common = scratch
    h.assert_ok(tool.run("init-ca", *common, "--passphrase-file", pf))
    h.assert_ok(tool.run("issue", *common, "--passphrase-file", pf))
    listed = json.loads(h.assert_ok(tool.run("list", "--json", *common)).stdout)
    expiring = json.loads(tool.run("expiring", "--within", "20y", "--json", *common).stdout)
    days = {c["serial"]: c["days_left"] for c in expiring["certificates"]}
    table = h.assert_ok(tool.run("list", *common)).stdout.splitlines()
    header = table[0]
    assert "DAYS LEFT" in header, header
    column = header.index("DAYS LEFT")
    now = dt.datetime.now(dt.timezone.utc)
    seen = 0
    for entry in listed:
        # Nothing was taken away from the JSON; seconds_left agrees with not_after.
        assert {"host", "service", "kind", "name", "serial", "subject", "sans", "not_after", "status", "certificate"} <= entry.keys()
        left = (h.rfc3339(entry["not_after"]) - now).total_seconds()
        assert abs(entry["seconds_left"] - left) < 120, entry
        row = next(line for line in table[1:] if entry["serial"] in line.split())
        cell = row[column:].split()[0]
        if entry["serial"] in days:
            assert cell == str(days[entry["serial"]]), (row, days[entry["serial"]])
            seen += 1
    assert seen == len(listed), "expiring --within 20y lists every valid certificate"


BAD_KEY = h.FULL_INVENTORY.replace("    groups: [backend]\n", "    group: [backend]\n", 1)


def test_json_refusal_is_an_error_object(chpki, workdir):
    (workdir / "cluster.yml").write_text(BAD_KEY)
    line = BAD_KEY.splitlines().index("    group: [backend]") + 1
    res = chpki.run("issue", "--json")
    assert res.returncode == 2, h.describe(res)
    assert len(res.stderr.splitlines()) == 1 and res.stderr.startswith("chpki: error: "), res.stderr
    error = json.loads(res.stdout)["error"]
    assert error["code"] == "inventory.unknown-field" and error["file"] == "./cluster.yml" and error["line"] == line, error
    assert error["field"] == "hosts[0].group" and "unknown key" in error["message"], error
    assert res.stderr == f"chpki: error: {error['message']}\n"
    # Without --json: nothing on stdout, the same line on stderr.
    plain = chpki.run("issue")
    assert plain.returncode == 2 and plain.stdout == "" and plain.stderr == res.stderr
    # A usage error under --json, and a refusal with no file: fields absent, never null.
    usage = chpki.run("issue", "--json", "--no-such-flag")
    assert usage.returncode == 2 and json.loads(usage.stdout)["error"]["code"] == "usage.invalid-argument", h.describe(usage)
    nothing = chpki.run("list", "--json", "--ca-dir", "nowhere")
    assert nothing.returncode == 2 and set(json.loads(nothing.stdout)["error"]) >= {"code", "message"}
    assert None not in json.loads(nothing.stdout)["error"].values()


def test_a_database_error_names_ca_db_and_what_sqlite_said(chpki, workdir, write_inventory, passphrase_file):
    write_inventory(h.FULL_INVENTORY)
    h.assert_ok(chpki.run("init-ca", "--passphrase-file", passphrase_file))
    with sqlite3.connect(workdir / "ca" / "ca.db") as db:
        db.execute("CREATE TRIGGER planted BEFORE INSERT ON certificates BEGIN SELECT RAISE(ABORT, 'planted trigger'); END")
    res = chpki.run("issue", "--json", "--passphrase-file", passphrase_file)
    assert res.returncode == 2, h.describe(res)
    (line,) = res.stderr.splitlines()
    assert "ca/ca.db" in line and "planted trigger" in line and "see 'chpki help'" not in line, line
    error = json.loads(res.stdout)["error"]
    assert error["code"] == "database.error" and error["file"].endswith("ca/ca.db"), error


HOSTILE = {
    "newline": "backend-1.example.com\nchpki: error: forged second line",
    "escape": "backend-1\x1b]0;pwned\x07\x1b[2J.example.com",
    "c1-and-del": "backend-1\x9b2J\x7f.example.com",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_control_characters_in_an_inventory_are_escaped(chpki, workdir, case):
    name = HOSTILE[case]
    (workdir / "cluster.yml").write_text(h.FULL_INVENTORY.replace("backend-1.example.com", json.dumps(name), 1))
    for args in (("issue", "--dry-run"), ("issue", "--dry-run", "--json")):
        res = chpki.run(*args)
        assert res.returncode == 2, h.describe(res)
        lines = res.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("chpki: error: "), res.stderr
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]", res.stderr + res.stdout), repr(res.stderr + res.stdout)
        assert "\\x1b" in lines[0] or "\\n" in lines[0] or "\\x9b" in lines[0], lines[0]
        if "--json" in args:
            assert name in json.loads(res.stdout)["error"]["message"] or "\\" in res.stdout


def test_control_characters_in_a_certificate_are_escaped(chpki, workdir):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evil\x1b]0;pwned\x07\x1b[2J\nsecond line")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    (workdir / "evil.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    res = h.assert_ok(chpki.run("inspect", "evil.pem"))
    assert "\x1b" not in res.stdout and "\x07" not in res.stdout, repr(res.stdout)
    assert "\\x1b" in res.stdout and not any(line.startswith("second line") for line in res.stdout.splitlines()), res.stdout
