"""The layers are SwiftPM targets, and the compiler holds them (issue 19, docs/architecture.md "Targets").

Two checks, cheap enough for every run:
- the package graph is the documented one (LAYERS below), and no target's source imports a chpki
  target it does not declare as a dependency (so no incremental build can pick one up from a stale
  module either);
- an upward import does not compile: a copy of the two lowest targets, with a stand-in for the
  layer above, builds; the same copy with `import ChpkiCore` added to a ChpkiModel file fails with
  "no such module".
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Each chpki target and the chpki targets it may import, lowest first (docs/architecture.md).
LAYERS = {
    "ChpkiBase": set(),
    "ChpkiModel": {"ChpkiBase"},
    "ChpkiOpenSSL": {"ChpkiBase", "ChpkiModel", "CChpkiOpenSSL"},
    "ChpkiPlatform": {"ChpkiBase", "CChpkiPOSIX", "CChpkiZlib"},
    "ChpkiReporting": {"ChpkiBase", "ChpkiPlatform"},
    "ChpkiInventory": {"ChpkiBase", "ChpkiModel", "ChpkiPlatform"},
    "ChpkiCA": {"ChpkiBase", "ChpkiModel", "ChpkiOpenSSL", "ChpkiPlatform", "ChpkiInventory"},
    "ChpkiSecretBundles": {"ChpkiBase", "ChpkiModel", "ChpkiOpenSSL", "ChpkiPlatform", "ChpkiCA", "ChpkiReporting"},
    "ChpkiBundles": {"ChpkiBase", "ChpkiModel", "ChpkiOpenSSL", "ChpkiPlatform", "ChpkiInventory", "ChpkiCA", "ChpkiReporting",
                     "ChpkiSecretBundles"},
    "ChpkiRollout": {"ChpkiBase", "ChpkiModel", "ChpkiOpenSSL", "ChpkiPlatform", "ChpkiInventory", "ChpkiCA", "ChpkiReporting",
                     "ChpkiBundles"},
    "ChpkiCore": {"ChpkiBase", "ChpkiModel", "ChpkiOpenSSL", "ChpkiPlatform", "ChpkiInventory", "ChpkiCA", "ChpkiReporting",
                  "ChpkiSecretBundles", "ChpkiBundles", "ChpkiRollout"},
    "chpki": {"ChpkiCore"},
}
C_MODULES = {"CChpkiOpenSSL", "CChpkiPOSIX", "CChpkiZlib"}
IMPORT = re.compile(r"^\s*(?:@\w+\s+)*(?:(?:public|package|internal|fileprivate|private)\s+)?import\s+(?:(?:struct|enum|class|func|protocol|typealias|var|let)\s+)?(\w+)", re.M)


def package_description() -> dict:
    res = subprocess.run(["swift", "package", "--package-path", str(REPO), "dump-package"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def local_dependencies(target: dict) -> set[str]:
    names = set()
    for dependency in target.get("dependencies", []):
        for kind in ("byName", "target"):
            if kind in dependency:
                names.add(dependency[kind][0])
    return names


def imports_of(directory: Path) -> dict[str, set[str]]:
    """module -> the files of `directory` that import it."""
    found: dict[str, set[str]] = {}
    for source in directory.rglob("*.swift"):
        for module in IMPORT.findall(source.read_text()):
            found.setdefault(module, set()).add(str(source.relative_to(REPO)))
    return found


def test_the_package_graph_is_the_documented_layering_and_every_import_is_declared():
    targets = {t["name"]: t for t in package_description()["targets"]}
    local = set(targets)
    for name, allowed in LAYERS.items():
        assert name in targets, f"{name} is not a target of Package.swift"
        declared = local_dependencies(targets[name]) & local
        assert declared == allowed, f"{name} depends on {sorted(declared)}; the layering says {sorted(allowed)}"
        for module, files in imports_of(REPO / "Sources" / name).items():
            if module in local and module != name:
                assert module in declared, f"{name} imports {module} without depending on it: {sorted(files)}"
    # Only the OpenSSL wrapper links OpenSSL; the POSIX and zlib shims only the platform layer.
    for name in LAYERS:
        for module in (set(imports_of(REPO / "Sources" / name)) & C_MODULES) - LAYERS[name]:
            raise AssertionError(f"{name} imports {module}")


def test_no_glibc_above_the_platform_layer():
    """POSIX calls through Glibc only in ChpkiPlatform (and ChpkiBase's explicit_bzero, the OpenSSL
    target's TLS socket): the layers above reach the OS through ChpkiPlatform. Foundation re-exports
    Glibc, so only the import can be checked, not every call."""
    for name in ("ChpkiModel", "ChpkiReporting", "ChpkiInventory", "ChpkiCA", "ChpkiSecretBundles", "ChpkiBundles",
                 "ChpkiRollout", "ChpkiCore", "chpki"):
        users = imports_of(REPO / "Sources" / name).get("Glibc", set())
        assert not users, f"{name} imports Glibc: {sorted(users)}; OS calls belong in ChpkiPlatform"


def test_sql_only_in_the_ca_database():
    """GRDB (so SQL) only in CA/CADatabase*.swift, and in ErrorReport, which words its errors."""
    allowed = re.compile(r"^Sources/(ChpkiCA/CA/CADatabase(\+\w+)?\.swift|ChpkiCore/Errors/ErrorReport\.swift)$")
    users = imports_of(REPO / "Sources").get("GRDB", set())
    assert users, "no file imports GRDB: has the database moved?"
    assert all(allowed.match(f) for f in users), sorted(f for f in users if not allowed.match(f))


def test_an_upward_import_does_not_compile(tmp_path):
    package = tmp_path / "layers"
    for name in ("ChpkiBase", "ChpkiModel"):
        shutil.copytree(REPO / "Sources" / name, package / "Sources" / name)
    (package / "Sources" / "ChpkiCore").mkdir()
    (package / "Sources" / "ChpkiCore" / "Above.swift").write_text("import ChpkiModel\npublic let above = 1\n")
    (package / "Package.swift").write_text(
        "// swift-tools-version:6.1\n"
        "import PackageDescription\n"
        "let package = Package(name: \"layers\", targets: [\n"
        "    .target(name: \"ChpkiBase\"),\n"
        "    .target(name: \"ChpkiModel\", dependencies: [\"ChpkiBase\"]),\n"
        "    .target(name: \"ChpkiCore\", dependencies: [\"ChpkiBase\", \"ChpkiModel\"]),\n"
        "], swiftLanguageModes: [.v6])\n")

    def build() -> subprocess.CompletedProcess:
        return subprocess.run(["swift", "build", "--package-path", str(package), "--target", "ChpkiModel"],
                              capture_output=True, text=True, timeout=900)

    control = build()
    assert control.returncode == 0, f"the copy of the lower layers does not build:\n{control.stdout[-4000:]}{control.stderr[-2000:]}"

    victim = package / "Sources" / "ChpkiModel" / "Model" / "ServiceName.swift"
    victim.write_text("import ChpkiCore\n" + victim.read_text())
    upward = build()
    assert upward.returncode != 0, "ChpkiModel compiled with `import ChpkiCore`"
    assert "no such module 'ChpkiCore'" in upward.stdout + upward.stderr, upward.stdout[-4000:]
