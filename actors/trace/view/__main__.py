"""``python -m actors.trace.view TRACE.jsonl [-o OUT.html] [--from-seq N] [--max-messages N]``.

Exit 0 when the page was written, 2 for a missing or invalid trace (or an empty window of it),
1 when the page cannot be written; errors go to stderr prefixed ``trace-view:``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from actors.trace.format import TraceError, TraceLine, load_trace
from actors.trace.view.layout import layout
from actors.trace.view.page import render_html

__all__ = ["main"]


#: Trace lines that are replay inputs, not messages between actors: what the port returned to
#: an actor. Drawn, they would be most of a trace (794 of 1,759 lines of ``burst``) and say less
#: than the messages around them.
NOT_DRAWN = frozenset({"PortAnswer"})


def _select(
    lines: list[TraceLine], from_seq: int | None, limit: int
) -> tuple[list[TraceLine], dict[str, int]]:
    """The window to draw: from ``from_seq`` on, at most ``limit`` lines; and what was cut."""
    skipped = {}
    drawable = [line for line in lines if line.type not in NOT_DRAWN]
    if len(drawable) < len(lines):
        skipped["port"] = len(lines) - len(drawable)
    lines = drawable
    if from_seq is not None:
        kept = [line for line in lines if line.seq >= from_seq]
        skipped["before"] = len(lines) - len(kept)
        lines = kept
    if len(lines) > limit:
        skipped["after"] = len(lines) - limit
        lines = lines[:limit]
    return lines, skipped


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trace-view",
        description="Render an actor message trace (S13.3) as an HTML "
        "sequence diagram (one self-contained file).",
    )
    parser.add_argument("trace", type=Path, help="JSONL trace written with --trace")
    parser.add_argument(
        "-o", "--output", type=Path, help="HTML file to write (default: the trace path with .html)"
    )
    parser.add_argument("--from-seq", type=int, help="start at this seq number")
    parser.add_argument(
        "--max-messages",
        type=int,
        default=5000,
        help="draw at most this many messages (default 5000)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.max_messages < 1:
        parser.error("--max-messages must be at least 1")
    try:
        lines, skipped = _select(load_trace(args.trace), args.from_seq, args.max_messages)
        if not lines:
            raise TraceError(f"{args.trace}: no message with seq >= {args.from_seq}")
    except TraceError as exc:
        print(f"trace-view: {exc}", file=sys.stderr)
        return 2
    plan = layout(lines)
    plan.skipped = skipped
    complete = layout(lines, fold_ticks=False) if plan.folded_ticks else None
    output = args.output or args.trace.with_suffix(".html")
    try:
        output.write_text(render_html(plan, args.trace.name, complete), encoding="utf-8")
    except OSError as exc:
        print(f"trace-view: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(
        f"wrote {output}: {len(lines)} messages, {len(plan.lifelines)} lifelines, "
        f"{plan.lanes} FetchActor lanes, {len(plan.gaps)} compressed gaps, "
        f"{plan.folded_ticks} Ticks folded"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
