"""Every refusal the e2e suite checks is checked by its stable code (docs/errors.md), not only by
its English: each `assert_refused(...)` call in Tests/e2e names `error=`. A new test that forgets
it fails here, with the file and line."""

import ast
from pathlib import Path

E2E = Path(__file__).resolve().parent


def calls_without_code() -> list[str]:
    missing = []
    for path in sorted(E2E.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
                if name == "assert_refused" and not any(k.arg == "error" for k in node.keywords):
                    missing.append(f"{path.name}:{node.lineno}")
    return missing


def test_every_assert_refused_names_its_error_code():
    assert calls_without_code() == [], "assert_refused without error=CODE (docs/errors.md lists the codes)"


def test_the_scan_finds_a_call_without_a_code(tmp_path, monkeypatch):
    # the check itself can fail: a file with one such call is found
    (tmp_path / "test_x.py").write_text("import helpers as h\nh.assert_refused(res, 'cluster.yml')\nh.assert_refused(res, error='a.b')\n")
    monkeypatch.setattr(__import__(__name__), "E2E", tmp_path)
    assert calls_without_code() == ["test_x.py:2"]
