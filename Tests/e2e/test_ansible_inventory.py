"""`ansible_inventory: FILE` in cluster.yml (SPEC §2): hosts, groups and IPs read from an Ansible
inventory through the real `ansible-inventory --list`, so the cluster is described once.

The same cluster written twice, once with `hosts:` and once as an Ansible inventory, must plan and
issue the same certificates (names, SANs, subjects); a bad host variable is refused naming the
inventory file and the host, exit 2, nothing written.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import helpers as h
from conftest import Chpki
from lifecycle_support import EXAMPLES

PASSPHRASE = "ansible inventory test"
# A service on a parent group: its hosts are the members of the groups below it, as Ansible counts.
PARENT_SERVICE = {"hosts": "cluster", "enable_client": False}


def ansible_inventory() -> str:
    path = shutil.which("ansible-inventory")
    if not path:
        pytest.fail("ansible-inventory is not installed (pip install -r Tests/e2e/requirements.txt)")
    return path


def loopback() -> tuple[dict, list[dict]]:
    inv = yaml.safe_load((EXAMPLES / "loopback.yml").read_text())
    hosts = inv.pop("hosts")
    inv["services"]["node-exporter"] = PARENT_SERVICE
    return inv, hosts


def ansible_yaml(hosts: list[dict]) -> dict:
    """An Ansible YAML inventory: each host under its groups, the groups under `cluster`, one host's
    address given as ansible_host instead of ips, one host with ips: []."""
    groups: dict = {}
    for hd in hosts:
        for g in hd["groups"]:
            hostvars = {"ips": hd["ips"], "ansible_user": "root"}
            if hd["name"] == "backend-3.chpki.test":
                hostvars = {"ansible_host": hd["ips"][0]}
            if hd["name"] == "frontend-1.chpki.test":
                hostvars = {"ips": [], "ansible_host": "frontend-1.chpki.test"}
            groups.setdefault(g, {"hosts": {}})["hosts"][hd["name"]] = hostvars
    return {"all": {"children": {"cluster": {"children": groups}}}}


def equivalent_hosts(hosts: list[dict]) -> list[dict]:
    """The same hosts as a hosts: list (the parent group spelled out, frontend-1 without IPs)."""
    out = []
    for hd in hosts:
        ips = [] if hd["name"] == "frontend-1.chpki.test" else hd["ips"]
        out.append({"name": hd["name"], "ips": ips, "groups": [*hd["groups"], "cluster"]})
    return out


class Cluster:
    def __init__(self, chpki_bin, base: Path, inv: dict):
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.tool = Chpki(chpki_bin, base)
        self.ca = base / "ca"
        self.inventory = base / "cluster.yml"
        self.inventory.write_text(yaml.safe_dump(inv, sort_keys=False))
        self.pf = h.write_secret(base / "pass", PASSPHRASE + "\n")

    def run(self, *args, env=None):
        return self.tool.run(*args, "--ca-dir", self.ca, "--inventory", self.inventory, env=env)

    def signed(self, *args, env=None):
        return self.run(*args, "--passphrase-file", self.pf, env=env)


def certificates(c: Cluster) -> set[tuple]:
    listed = h.parse_json_output(h.assert_ok(c.run("list", "--json")))
    return {(x["host"], x["service"], x["kind"], x["subject"], tuple(sorted(x["sans"]))) for x in listed}


def plan(c: Cluster) -> list[tuple]:
    report = h.parse_json_output(h.assert_ok(c.signed("issue", "--dry-run", "--json")))
    return sorted(tuple(str(x[k]) for k in ("action", "host", "service", "kind", "name")) for x in report["certificates"])


@pytest.mark.parametrize("form", ["yaml", "list-json"])
def test_same_certificates_as_the_hosts_list(chpki_bin, tmp_path, form):
    ansible_inventory()
    inv, hosts = loopback()
    listed = Cluster(chpki_bin, tmp_path / "listed", {**inv, "hosts": equivalent_hosts(hosts)})

    ans_dir = tmp_path / "ansible"
    (ans_dir / "inventory").mkdir(parents=True)
    hosts_yml = ans_dir / "inventory" / "hosts.yml"
    hosts_yml.write_text(yaml.safe_dump(ansible_yaml(hosts)))
    source = "inventory/hosts.yml"  # relative to cluster.yml
    if form == "list-json":
        out = subprocess.run([ansible_inventory(), "-i", str(hosts_yml), "--list"], capture_output=True, text=True,
                             check=True, timeout=120, stdin=subprocess.DEVNULL)
        (ans_dir / "inventory" / "list.json").write_text(out.stdout)
        hosts_yml.unlink()
        source = "inventory/list.json"
    ans = Cluster(chpki_bin, ans_dir, {**inv, "ansible_inventory": source})

    for c in (listed, ans):
        h.assert_ok(c.signed("init-ca"))
    assert plan(ans) == plan(listed)
    assert any(p[2] == "node-exporter" for p in plan(ans)), "scenario: a service on the parent group"
    for c in (listed, ans):
        h.assert_ok(c.signed("issue"))
    got, want = certificates(ans), certificates(listed)
    assert got == want, f"only from Ansible: {sorted(got - want)}; only from hosts: {sorted(want - got)}"
    # the IPs came through: backend-3's from ansible_host, the others' from ips
    for host, ip in (("backend-3.chpki.test", "127.0.0.3"), ("backend-1.chpki.test", "127.0.0.1")):
        sans = [c[4] for c in got if c[0] == host and c[1] == "etcd" and c[2] == "server"]
        assert sans and any(ip in n for n in sans[0]), f"{host}: {sans}"

    if form == "list-json":
        # a file that already is --list JSON needs no ansible-inventory at all
        res = ans.run("nodes-dn", env={"PATH": str(tmp_path / "no-such-bin")})
        assert res.returncode == 0 and "CN=backend-1.chpki.test" in res.stdout, h.describe(res)


def bad_cluster(chpki_bin, tmp_path, edit, with_hosts: list | None = None) -> tuple[Cluster, Path]:
    ansible_inventory()
    inv, hosts = loopback()
    data = ansible_yaml(hosts)
    edit(data["all"]["children"]["cluster"]["children"])
    extra = {"hosts": with_hosts} if with_hosts is not None else {}
    c = Cluster(chpki_bin, tmp_path / "bad", {**inv, **extra, "ansible_inventory": "hosts.yml"})
    (c.base / "hosts.yml").write_text(yaml.safe_dump(data))
    return c, c.base / "hosts.yml"


def backend(groups: dict, name: str) -> dict:
    return groups["backend"]["hosts"][name]


def ansible_host_only(groups: dict, name: str, address: str | None):
    hv = backend(groups, name)
    hv.pop("ips")
    if address is not None:
        hv["ansible_host"] = address


CASES = {
    "ip not an address": (lambda g: backend(g, "backend-2.chpki.test").update(ips=["not-an-ip"]),
                          ["backend-2.chpki.test", "ips[0]", "not-an-ip"]),
    "no ips, ansible_host a name": (lambda g: ansible_host_only(g, "backend-2.chpki.test", "backend-2.chpki.test"),
                                    ["backend-2.chpki.test", "ansible_host", "ips: []"]),
    "no ips at all": (lambda g: ansible_host_only(g, "backend-1.chpki.test", None),
                      ["backend-1.chpki.test", "ips"]),
    "ips a string": (lambda g: backend(g, "backend-1.chpki.test").update(ips="127.0.0.1"),
                     ["backend-1.chpki.test"]),
    "duplicate ip": (lambda g: backend(g, "backend-2.chpki.test").update(ips=["127.0.0.1"]),
                     ["backend-2.chpki.test", "127.0.0.1", "backend-1.chpki.test"]),
    "bad host name": (lambda g: g["backend"]["hosts"].update({"backend_4.chpki.test": {"ips": ["127.0.0.4"]}}),
                      ["backend_4.chpki.test", "RFC 1123"]),
    "host outside the domain": (lambda g: g["backend"]["hosts"].update({"db-9.example.org": {"ips": ["127.0.0.9"]}}),
                                ["db-9.example.org", "domain"]),
}


# The code each case is refused with (docs/errors.md).
CODES = {
    "ip not an address": "inventory.invalid-address",
    "no ips, ansible_host a name": "inventory.missing-field",
    "no ips at all": "inventory.missing-field",
    "ips a string": "inventory.wrong-type",
    "duplicate ip": "inventory.duplicate",
    "bad host name": "inventory.invalid-name",
    "host outside the domain": "inventory.invalid-name",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_host_var_is_refused_naming_file_and_host(chpki_bin, tmp_path, case):
    edit, mentions = CASES[case]
    c, hosts_yml = bad_cluster(chpki_bin, tmp_path, edit)
    res = c.signed("init-ca")
    line = h.assert_refused(res, str(hosts_yml.name), *mentions, error=CODES[case])
    assert "host " in line, line
    assert not c.ca.exists(), "a refused command created the CA"


def test_a_host_in_both_lists_is_refused(chpki_bin, tmp_path):
    c, hosts_yml = bad_cluster(chpki_bin, tmp_path, lambda g: None,
                               with_hosts=[{"name": "backend-1.chpki.test", "ips": ["127.0.0.51"], "groups": ["extra"]}])
    h.assert_refused(c.signed("init-ca"), "hosts.yml", "backend-1.chpki.test", "hosts[0]", error="inventory.duplicate")

    # beside it, a host of its own is merged in, and group names reach the services
    c.inventory.write_text(c.inventory.read_text().replace("backend-1.chpki.test", "frontend-9.chpki.test")
                           .replace("- extra", "- frontend"))
    h.assert_ok(c.signed("init-ca"))
    issued = h.parse_json_output(h.assert_ok(c.signed("issue", "--dry-run", "--json")))
    planned = {(x["host"], x["service"]) for x in issued["certificates"]}
    assert ("frontend-9.chpki.test", "nginx") in planned and ("backend-1.chpki.test", "etcd") in planned, sorted(planned)


def test_missing_or_unreadable_inventory_is_refused(chpki_bin, tmp_path):
    c, hosts_yml = bad_cluster(chpki_bin, tmp_path, lambda g: None)
    hosts_yml.unlink()
    h.assert_refused(c.signed("init-ca"), "cluster.yml", "ansible_inventory", "hosts.yml", error="file.missing")
    hosts_yml.write_text("all: [\n")
    h.assert_refused(c.signed("init-ca"), "cluster.yml", "ansible_inventory", "ansible-inventory", error="inventory.ansible-failed")
    assert not c.ca.exists()


def test_a_passphrase_in_the_environment_does_not_reach_ansible_inventory(chpki_bin, tmp_path):
    """ansible-inventory runs inventory scripts: it must not see CHPKI_CA_PASSPHRASE."""
    inv, hosts = loopback()
    c = Cluster(chpki_bin, tmp_path / "script", {**inv, "ansible_inventory": "inventory.sh"})
    seen = tmp_path / "env-seen"
    script = c.base / "inventory.sh"
    listing = {"_meta": {"hostvars": {hd["name"]: {"ips": hd["ips"]} for hd in hosts}},
               "all": {"children": ["cluster"]}, "cluster": {"children": ["backend", "frontend", "balancer"]}}
    for hd in hosts:
        for g in hd["groups"]:
            listing.setdefault(g, {"hosts": []})["hosts"].append(hd["name"])
    script.write_text("#!/bin/sh\nenv > %s\ncat <<'EOF'\n%s\nEOF\n" % (seen, json.dumps(listing)))
    script.chmod(0o755)
    ansible_inventory()
    res = c.run("nodes-dn", env={"CHPKI_CA_PASSPHRASE": "very secret"})
    assert res.returncode == 0, h.describe(res)
    assert "CN=backend-1.chpki.test" in res.stdout
    text = seen.read_text()
    assert "very secret" not in text and "CHPKI_" not in text, "the child saw chpki's secrets"
