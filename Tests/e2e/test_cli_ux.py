"""What an operator meets at the command line: built-in templates and their override directory,
help that lists every option, suggestions for mistyped commands, -q, --json as one document, and
the next step after each command that changes something."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import helpers as h
from conftest import REPO, clean_env, run_with_private_etc_chpki

TEMPLATES = REPO / "templates"
BUILT_IN = sorted(p.name[: -len(".mustache")] for p in TEMPLATES.glob("*.mustache"))


@pytest.fixture
def cluster(workdir, write_inventory, init_ca, run, passphrase_file):
    """The SPEC §2 inventory with a CA and every certificate issued, in the working directory."""
    write_inventory(h.FULL_INVENTORY)
    init_ca()
    h.assert_ok(run("issue", "--passphrase-file", passphrase_file))
    return workdir


def listing(run, *args, env=None) -> dict:
    res = h.assert_ok(run("templates", "list", "--json", *args, env=env))
    return {t["name"]: t for t in json.loads(res.stdout)["templates"]}


# --- templates --------------------------------------------------------------------------------


def test_templates_list_names_every_template_of_the_source_tree_as_built_in(run):
    res = h.assert_ok(run("templates", "list"))
    for name in BUILT_IN:
        assert any(line.split()[:2] == [name, "built-in"] for line in res.stdout.splitlines()), name + h.describe(res)
    templates = listing(run)
    assert sorted(templates) == BUILT_IN
    assert all(t["source"] == "built-in" and t["path"] is None for t in templates.values())


def test_templates_show_prints_the_exact_source_file(run):
    for name in BUILT_IN:
        res = h.assert_ok(run("templates", "show", name))
        assert res.stdout == (TEMPLATES / f"{name}.mustache").read_text(), name
    shown = json.loads(h.assert_ok(run("templates", "show", "pg_hba.conf.mustache", "--json")).stdout)
    assert shown == {"name": "pg_hba.conf", "source": "built-in", "path": None,
                     "text": (TEMPLATES / "pg_hba.conf.mustache").read_text()}


def test_templates_show_unknown_name_is_refused(run):
    h.assert_refused(run("templates", "show", "no-such-template"), "no-such-template", "pg_hba.conf", error="template.unknown")


def test_override_directory_replaces_only_the_templates_it_holds(cluster, run, tmp_path, passphrase_file):
    override = tmp_path / "site-templates"
    override.mkdir()
    (override / "pg_hba.conf.mustache").write_text("# site pg_hba\nhostssl all all 10.0.0.0/8 cert\n")
    (override / "unrelated.mustache").write_text("not used\n")
    (override / "README.txt").write_text("ignored: not a template\n")
    templates = listing(run, "--templates", override)
    assert templates["pg_hba.conf"]["source"] == "override"
    assert templates["pg_hba.conf"]["path"] == str(override / "pg_hba.conf.mustache")
    assert templates["unrelated"]["used"] is False
    assert all(templates[n]["source"] == "built-in" for n in BUILT_IN if n != "pg_hba.conf")
    assert "README" not in " ".join(templates)
    res = h.assert_ok(run("templates", "show", "pg_hba.conf", "--templates", override))
    assert res.stdout.startswith("# site pg_hba")
    res = h.assert_ok(run("templates", "show", "pg_hba.conf", "--built-in", "--templates", override))
    assert res.stdout == (TEMPLATES / "pg_hba.conf.mustache").read_text()

    # bundle renders the override for pg_hba.conf, the built-in for everything else.
    h.assert_ok(run("bundle", "--out", "plain", "--passphrase-file", passphrase_file))
    h.assert_ok(run("bundle", "--out", "site", "--templates", override, "--passphrase-file", passphrase_file))
    backend = "backend-1.example.com"
    assert (cluster / "site" / backend / "etc/patroni/pg_hba.conf").read_text() == \
        "# site pg_hba\nhostssl all all 10.0.0.0/8 cert\n"
    for path in ("etc/patroni/pg_ident.conf", "etc/patroni/tls.yml", "etc/opensearch/opensearch-security.yml"):
        assert (cluster / "site" / backend / path).read_bytes() == (cluster / "plain" / backend / path).read_bytes(), path


def test_flag_beats_environment_and_environment_applies_without_flag(cluster, run, tmp_path, passphrase_file):
    from_env, from_flag = tmp_path / "env", tmp_path / "flag"
    for directory, marker in ((from_env, "env"), (from_flag, "flag")):
        directory.mkdir()
        (directory / "pg_ident.conf.mustache").write_text(f"# from {marker}\n")
    env = {"CHPKI_TEMPLATES": from_env}
    assert h.assert_ok(run("templates", "show", "pg_ident.conf", env=env)).stdout == "# from env\n"
    assert h.assert_ok(run("templates", "show", "pg_ident.conf", "--templates", from_flag, env=env)).stdout == "# from flag\n"
    h.assert_ok(run("bundle", "patroni", "--out", "b", "--passphrase-file", passphrase_file, env=env))
    assert (cluster / "b/backend-1.example.com/etc/patroni/pg_ident.conf").read_text() == "# from env\n"


def test_system_override_directory_applies_when_present(chpki_bin, tmp_path):
    """/etc/chpki/templates, shown in a private mount namespace so the real /etc is untouched."""
    res = run_with_private_etc_chpki(
        "mkdir /etc/chpki/templates && printf '# system\\n' > /etc/chpki/templates/minio.tls.mustache && "
        f"{chpki_bin} templates list --json && {chpki_bin} templates show minio.tls", tmp_path)
    assert res.returncode == 0, h.describe(res)
    document, _, shown = res.stdout.rpartition("}\n")
    listed = {t["name"]: t for t in json.loads(document + "}")["templates"]}
    assert listed["minio.tls"]["path"] == "/etc/chpki/templates/minio.tls.mustache"
    assert shown == "# system\n"


def test_missing_override_directory_is_refused(run, tmp_path):
    h.assert_refused(run("templates", "list", "--templates", tmp_path / "nope"), "nope", "--templates", error="file.missing")
    h.assert_refused(run("templates", "list", env={"CHPKI_TEMPLATES": tmp_path / "gone"}), "gone", "CHPKI_TEMPLATES", error="file.missing")


def test_override_that_does_not_parse_is_refused_before_anything_is_written(cluster, run, tmp_path, passphrase_file):
    override = tmp_path / "broken"
    override.mkdir()
    (override / "etcd-tls.env.mustache").write_text("{{#peers}}unclosed section\n")
    res = run("bundle", "--out", "out", "--templates", override, "--passphrase-file", passphrase_file)
    h.assert_refused(res, "etcd-tls.env.mustache", error="template.invalid")
    assert not (cluster / "out").exists()


# --- help, suggestions, -q, --json ---------------------------------------------------------------


def command_tree(chpki_bin) -> dict:
    res = subprocess.run([str(chpki_bin), "--experimental-dump-help"], capture_output=True, text=True, env=clean_env())
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)["command"]


def walk(command, path=()):
    yield path, command
    for sub in command.get("subcommands", []):
        if sub["commandName"] != "help":
            yield from walk(sub, path + (sub["commandName"],))


# Accepted for old scripts but meaning the default now: hidden on purpose, not a real option.
COMPATIBILITY_ALIASES = {(("init-ca",), "intermediate")}


def test_help_shows_every_option_of_every_command(chpki_bin, run):
    checked = 0
    for path, command in walk(command_tree(chpki_bin)):
        if not path:
            continue
        res = h.assert_ok(run("help", *path))
        for argument in command.get("arguments", []):
            names = [n["name"] for n in argument.get("names", []) if n["kind"] == "long"]
            if not names or names[0] == "experimental-dump-help" or (path, names[0]) in COMPATIBILITY_ALIASES:
                continue
            assert argument.get("shouldDisplay", True), f"chpki {' '.join(path)}: --{names[0]} is hidden"
            assert f"--{names[0]}" in res.stdout, f"'chpki help {' '.join(path)}' does not show --{names[0]}"
            checked += 1
    assert checked > 50
    issue = h.assert_ok(run("help", "issue")).stdout
    assert "--dry-run" in issue and "--passphrase-file" in issue and "server" in issue


@pytest.mark.parametrize("argv, meant", [
    (["isue"], "issue"), (["rnew"], "renew"), (["bundel", "--out", "x"], "bundle"), (["init-cs"], "init-ca"),
    (["issue", "srver"], "server"), (["templates", "lst"], "list"),
])
def test_mistyped_subcommand_gets_a_suggestion(run, argv, meant):
    res = run(*argv)
    line = h.assert_refused(res, argv[-1] if argv[0] == "issue" or argv[0] == "templates" else argv[0], error="usage.unknown-command")
    assert f"did you mean '{meant}'?" in line
    assert res.stdout == ""


def test_unknown_subcommand_far_from_any_lists_the_commands(run):
    line = h.assert_refused(run("frobnicate"), "frobnicate", error="usage.unknown-command")
    assert "did you mean" not in line and "init-ca" in line and "templates" in line


def test_quiet_prints_nothing_and_the_exit_status_tells(write_inventory, init_ca, run, passphrase_file, ca_dir):
    write_inventory(h.FULL_INVENTORY)
    res = init_ca("-q")
    assert res.stdout == "" and res.stderr == ""
    for args in (["issue", "-q", "--passphrase-file", passphrase_file], ["nodes-dn", "-q"], ["list", "-q"],
                 ["verify", "-q", "--passphrase-file", passphrase_file],
                 ["bundle", "-q", "--out", "b", "--passphrase-file", passphrase_file], ["templates", "list", "-q"],
                 ["expiring", "-q"]):
        res = run(*args)
        assert res.returncode == 0 and res.stdout == "" and res.stderr == "", h.describe(res)
    # Everything expires within 500 days: exit 1, and still nothing printed.
    res = run("expiring", "-q", "--within", "500d")
    assert res.returncode == 1 and res.stdout == "" and res.stderr == "", h.describe(res)
    res = run("expiring", "--within", "500d")
    assert res.returncode == 1 and "expire" in res.stderr and res.stdout.strip()
    # A refusal still says why under -q.
    h.assert_refused(run("bundle", "-q", "--out", "b", "nosuchservice", "--passphrase-file", passphrase_file), "nosuchservice", error="inventory.unknown-service")


def test_demo_json_is_one_document_with_every_step(run, workdir):
    res = h.assert_ok(run("demo", "--json", "--out", "d"))
    document = json.loads(res.stdout)  # raises on concatenated documents
    assert [s["command"] for s in document["steps"]] == ["init-ca", "inspect", "issue", "nodes-dn", "bundle", "verify"]
    steps = {s["command"]: s["report"] for s in document["steps"]}
    assert steps["issue"]["summary"]["issued"] > 0
    assert steps["nodes-dn"]["nodes_dn"] and steps["verify"]["violations"] == []
    assert document["out"] == "d" and (workdir / "d" / "bundles").is_dir()
    assert "next:" not in res.stdout


def test_each_changing_command_ends_with_the_next_step(write_inventory, init_ca, run, passphrase_file, ca_dir):
    write_inventory(h.FULL_INVENTORY)
    assert "next: chpki issue" in init_ca().stdout
    dry = h.assert_ok(run("issue", "--dry-run"))
    assert dry.stdout.rstrip().splitlines()[-1].startswith("next: chpki issue")
    issued = h.assert_ok(run("issue", "--passphrase-file", passphrase_file))
    assert f"next: chpki bundle --out bundles --tar --passphrase-file {passphrase_file}" in issued.stdout
    bundled = h.assert_ok(run("bundle", "--out", "bundles", "--tar", "--passphrase-file", passphrase_file))
    assert f"next: chpki verify --bundle bundles --passphrase-file {passphrase_file}" in bundled.stdout
    assert "then copy bundles/HOST.tar.gz" in bundled.stdout and "tar -xzpf" in bundled.stdout
    renewed = h.assert_ok(run("renew", "--passphrase-file", passphrase_file))
    assert "next: chpki bundle" in renewed.stdout
    revoked = h.assert_ok(run("revoke", "haproxy-1.example.com", "--passphrase-file", passphrase_file))
    assert "next: copy" in revoked.stdout and "crl.pem" in revoked.stdout
    # Commands that change nothing have no next step; --json never has one.
    assert "next:" not in h.assert_ok(run("list")).stdout
    assert "next:" not in h.assert_ok(run("issue", "--json", "--passphrase-file", passphrase_file)).stdout
