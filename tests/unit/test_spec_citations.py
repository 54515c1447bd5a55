"""Every rule number the project cites resolves to a paragraph of docs/spec.rst.

The code, the docs and ``grasp-relay --help`` cite rules as ``S<n>.<m>`` (or a section as
``S<n>``); a reader of the repository alone must be able to look each one up, so a citation of
a rule that docs/spec.rst does not state fails here, naming the file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from grasp.relay.config import build_parser

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "docs" / "spec.rst"
#: ``S4.1``, ``S12``: not part of a longer word or number (``S3`` in ``AWS S3`` would be).
CITATION = re.compile(r"(?<![A-Za-z0-9_])S(\d{1,2})(?:\.(\d{1,2}))?(?![A-Za-z0-9_])")
SOURCES = [
    *sorted((ROOT / "grasp").rglob("*.py")),
    *sorted((ROOT / "grasp").rglob("*.js")),
    *sorted((ROOT / "actors").rglob("*.py")),
    *sorted((ROOT / "messages").rglob("*.py")),
    *sorted((ROOT / "docs").glob("*.rst")),
    ROOT / "README.rst",
]


def defined() -> tuple[set[str], set[str]]:
    """(sections, rules) that docs/spec.rst states: ``S4.`` headings and ``**S4.1**`` labels,
    each rule with its ``.. _S4.1:`` target so it can be linked to."""
    text = SPEC.read_text(encoding="utf-8")
    sections = set(re.findall(r"^S(\d{1,2})\. \S", text, flags=re.M))
    rules = set(re.findall(r"^\*\*S(\d{1,2}\.\d{1,2})\*\* ", text, flags=re.M))
    targets = set(re.findall(r"^\.\. _S(\d{1,2}\.\d{1,2}):$", text, flags=re.M))
    assert rules == targets, f"labels without targets or targets without labels: {rules ^ targets}"
    return sections, rules


def unresolved(text: str, sections: set[str], rules: set[str]) -> list[str]:
    missing = []
    for match in CITATION.finditer(text):
        section, rule = match.group(1), match.group(2)
        number = section if rule is None else f"{section}.{rule}"
        if number not in (sections if rule is None else rules):
            missing.append(f"S{number}")
    return missing


def test_the_spec_states_every_section_and_numbers_each_rule_once():
    text = SPEC.read_text(encoding="utf-8")
    sections, rules = defined()
    assert sections == {str(n) for n in range(1, 20)}  # S1 ... S19
    labels = re.findall(r"^\*\*S(\d{1,2}\.\d{1,2})\*\* ", text, flags=re.M)
    assert len(labels) == len(set(labels)), "a rule number is stated twice"
    for rule in rules:
        assert rule.split(".")[0] in sections
    assert {"4.1", "18.1", "18.2", "3.4", "10.4"} <= rules


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_rule_cited_in_the_tree_is_in_the_spec(path: Path):
    sections, rules = defined()
    missing = unresolved(path.read_text(encoding="utf-8"), sections, rules)
    assert missing == [], f"{path.relative_to(ROOT)} cites rules docs/spec.rst lacks: {missing}"


def test_every_rule_cited_by_help_is_in_the_spec():
    sections, rules = defined()
    text = build_parser().format_help()
    cited = CITATION.findall(text)
    assert len(cited) > 20  # --help does cite rules: the check has something to check
    assert "docs/spec.rst" in text  # and says where they are
    assert unresolved(text, sections, rules) == []


def test_the_check_catches_a_rule_that_does_not_exist():
    sections, rules = defined()
    sample = "see S4.1 and S4.99, section S12, S31, AWS S3 buckets, TLS13, S7.2's kinds"
    assert unresolved(sample, sections, rules) == ["S4.99", "S31"]
    cited_anywhere = {
        m.group(0) for p in SOURCES for m in CITATION.finditer(p.read_text(encoding="utf-8"))
    }
    assert len(cited_anywhere) > 50
