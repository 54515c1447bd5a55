"""The dependency direction ``messages <- actors <- grasp`` (ARCHITECTURE §2), checked on the source."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"messages": {"actors", "grasp"}, "actors": {"grasp"}}


def _imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_grasp_domain_modules_do_not_import_actors():
    """Only grasp/relay/ and the wiring in grasp/context.py meet the actors (ARCHITECTURE §2)."""
    allowed = {ROOT / "grasp" / "context.py"}
    offenders = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "grasp").rglob("*.py")
        if path not in allowed
        and "relay" not in path.relative_to(ROOT / "grasp").parts[:1]
        and _imported_top_levels(path) & {"actors"}
    }
    assert offenders == set()


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_upward(package):
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_top_levels(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
