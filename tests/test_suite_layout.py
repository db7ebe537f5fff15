"""The test suite's own rules (issue 18): shared helpers are modules of ``tests.helpers``; no test module imports
another test module or edits ``sys.path``, and no test sets an environment variable by hand (``monkeypatch`` undoes
its changes; a bare assignment leaks into every later test of the worker)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _modules() -> dict[str, ast.Module]:
    return {path.relative_to(TESTS).as_posix(): ast.parse(path.read_text()) for path in sorted(TESTS.rglob("*.py"))}


def _imported(tree: ast.Module) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append("." * node.level + (node.module or ""))
    return names


def test_no_test_module_imports_another_or_edits_sys_path() -> None:
    problems = []
    for name, tree in _modules().items():
        for module in _imported(tree):
            last = module.rsplit(".", 1)[-1]
            if last.startswith("test_") or last == "conftest" or module.startswith("."):
                problems.append(f"{name} imports {module} (put shared code in tests/helpers/)")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", "") == "sys":
                problems.append(f"{name}:{node.lineno} uses sys.path")
    assert not problems, "\n".join(problems)


def test_no_test_assigns_to_os_environ() -> None:
    problems = []
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else []
            calls = [node.func.attr] if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) else []
            environ = [t for t in targets if isinstance(t, ast.Subscript) and "environ" in ast.unparse(t.value)]
            mutating = any(
                call in ("update", "setdefault", "pop", "putenv") and "environ" in ast.unparse(node.func.value)
                for call in calls
            )
            if environ or mutating:
                problems.append(f"{name}:{node.lineno}: {ast.unparse(node)[:80]} (use monkeypatch.setenv)")
    assert not problems, "\n".join(problems)


def test_helpers_are_a_package_without_tests() -> None:
    helpers = TESTS / "helpers"
    assert (TESTS / "__init__.py").is_file() and (helpers / "__init__.py").is_file()
    for name, tree in _modules().items():
        if name.startswith("helpers/"):
            tests = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
            assert not tests, f"{name} defines tests {tests}: pytest would not collect them there"
