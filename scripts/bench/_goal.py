"""One machine-readable line per goal, for the goal table of ``scripts/bench/all``.

Every benchmark that measures a goal of docs/performance.rst (P1-P7) prints, besides its own
tables, one ``GOAL`` line per goal: tab-separated id, what, figure, goal, ratio, status and
kind. ``must`` goals (zero politeness violations, one fetch per identifier per URL) are the
only ones whose failure makes ``all`` exit non-zero; the others are targets reported as met or
not met. No imports: scheduler.py and fetch.py use it without the relay's test helpers.
"""

from __future__ import annotations


def goal_line(
    goal_id: str, what: str, figure: str, goal: str, ratio: float, met: bool, must: bool = False
) -> None:
    """Print the ``GOAL`` line; ``ratio`` is figure / goal (or the script's own ratio)."""
    status = "met" if met else "NOT MET"
    kind = "must" if must else "target"
    print("\t".join(["GOAL", goal_id, what, figure, goal, f"{ratio:.2f}", status, kind]))
