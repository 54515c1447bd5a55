"""docs/conformance.rst against tests/conformance/ (S15.1, S16.1): the table cannot drift from
the tests that prove it.

The requirement lines are written out here from the specs (protocol.md §4.2, §4.9), with their
levels, independently of the docs. Test names carry their line (``test_grasp01_l13_...``,
``test_grasp06_l21_24_...``); the tests' source is read with ``ast``, nothing is imported or run.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "conformance.rst"
SUITE = ROOT / "tests" / "conformance"

GRASP01 = {
    7: "MUST", 9: "MUST", 11: "MAY", 13: "MUST", 18: "MAY", 22: "SHOULD", 26: "MUST",
    28: "MUST", 29: "MUST", 30: "MUST", 34: "MUST", 36: "MUST", 39: "MUST", 45: "MUST",
    56: "MUST", 58: "SHOULD", 64: "MUST", 65: "MUST", 66: "MUST", 67: "MUST",
}  # fmt: skip
GRASP06 = {"13": "MUST", "15": "MUST", "21-24": "MUST"}
_NAME = re.compile(r"test_(grasp0[16])_l(\d+)(?:_(\d+))?_")


def _rows() -> dict[str, list[dict[str, str]]]:
    """Each section's list-table rows as dicts of the header's columns."""
    sections: dict[str, list[dict[str, str]]] = {}
    text = DOC.read_text()
    for title, body in re.findall(r"\n(GRASP-0\d)\n=+\n(.*?)(?=\n[^\n]+\n=+\n|\Z)", text, re.S):
        header, *rows = [_columns(block) for block in body.split("   * - ")[1:]]
        sections[title] = [dict(zip(header, row, strict=True)) for row in rows]
    return sections


def _columns(block: str) -> list[str]:
    """One list-table row: its columns, continuation lines joined."""
    block = block.split("\n\n")[0]  # the last row ends where the table does
    return [" ".join(part.split()) for part in block.split("\n     - ")]


def _tests() -> dict[str, bool]:
    """Every conformance test function -> whether it is marked xfail."""
    found = {}
    for path in sorted(SUITE.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                found[node.name] = any("xfail" in ast.unparse(d) for d in node.decorator_list)
    return found


def _named(row: dict[str, str]) -> list[str]:
    return re.findall(r"``(test_\w+)``", row["tests"])


def _covers(row_line: str, test_name: str) -> bool:
    """Does the test name's line (``l13``, ``l21_24``) fall inside the row's line(s)?"""
    match = _NAME.match(test_name)
    if match is None:
        return False
    low, _, high = row_line.partition("-")
    first = int(match[2])
    return low.isdigit() and int(low) <= first <= int(high or low)


def test_every_grasp01_line_has_a_row_with_its_level_and_tests_named_after_it():
    rows = {row["line"]: row for row in _rows()["GRASP-01"]}
    assert set(rows) == {str(line) for line in GRASP01}
    for line, level in GRASP01.items():
        row = rows[str(line)]
        assert row["level"] == level, line
        assert _named(row) and all(_covers(row["line"], t) for t in _named(row)), row


def test_every_grasp06_line_has_a_row_with_its_level():
    rows = {row["line"]: row for row in _rows()["GRASP-06"]}
    for line, level in GRASP06.items():
        assert rows[line]["level"] == level
        assert all(_covers(line, t) for t in _named(rows[line])), rows[line]


def test_the_table_and_the_suite_name_the_same_tests():
    tests = _tests()
    named = {t for rows in _rows().values() for row in rows for t in _named(row)}
    assert named == set(tests), {
        "in the table only": named - set(tests),
        "untabled": set(tests) - named,
    }


def test_a_row_says_xfail_exactly_when_one_of_its_tests_is_expected_to_fail():
    tests = _tests()
    for rows in _rows().values():
        for row in rows:
            expected_to_fail = any(tests[t] for t in _named(row))
            assert ("xfail" in row["now"]) == expected_to_fail, row
            assert row["now"].startswith("met"), row


def test_the_suite_has_one_test_name_per_line_it_claims():
    for name in _tests():
        match = _NAME.match(name)
        if match is None:  # GRASP-06 design rules and NIP-11: listed by name, checked above
            assert name.startswith("test_grasp06_"), name
            continue
        line = int(match[2])
        spec = {"grasp01": GRASP01, "grasp06": {13: 1, 15: 1, 21: 1, 23: 1}}[match[1]]
        assert line in spec, f"{name} names line {line}, which the spec does not have"
