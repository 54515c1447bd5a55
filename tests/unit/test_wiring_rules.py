"""Wiring rules checked on the source (ARCHITECTURE §8): actor names are spelled only in
``actors/names.py``, and nothing assigns into an actor system's services, directory or effects
from outside (no service locator filled in after start)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    p
    for package in ("actors", "grasp")
    for p in (ROOT / package).rglob("*.py")
    if p != ROOT / "actors" / "names.py"
)
NAME_LITERAL = re.compile(r"^(Scheduler|Releaser|Supervisor)$|DomainThrottle\[|FetchActor-\d")
WIRING = {"services", "directory", "effects", "runtime"}


def _exempt(tree: ast.AST) -> set[int]:
    """Docstrings and ``__all__`` entries (class names, not actor names)."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            ids.update(id(n) for n in ast.walk(node.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def test_actor_names_are_spelled_only_in_the_names_module():
    offenders = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(), filename=str(path))
        docstrings = _exempt(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and NAME_LITERAL.search(node.value)
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert offenders == []


def test_nothing_assigns_into_services_directory_or_effects():
    offenders = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else ([node.target] if isinstance(node, ast.AugAssign | ast.AnnAssign) else [])
            )
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Attribute)
                    and target.value.attr in WIRING
                ):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_ci_runs_the_linter_before_the_tests():
    """Lint and types are habits: CI runs ``scripts/lint`` (ruff, formatter, mypy), then the
    test command README.rst gives on the whole suite, then the process tests again with their
    relays on PostgreSQL (S19); a failure at any step stops it (``set -e``)."""
    text = (ROOT / ".ci" / "run").read_text()
    lines = [line.strip() for line in text.splitlines()]
    steps = [line for line in lines if line.startswith(("scripts/", "exec scripts/"))]
    process_tests = "tests/relay tests/integration tests/conformance tests/deploy"
    assert steps == ["scripts/lint", "scripts/test", f"exec scripts/test {process_tests}"]
    assert "set -euo pipefail" in text
    # the database switch comes after the SQLite pass and before the PostgreSQL one
    switch = lines.index("export GRASP_TEST_DATABASE=postgresql")
    assert lines.index("scripts/test") < switch < lines.index(steps[-1])
