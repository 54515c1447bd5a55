"""The trace viewer: an S13.3 message trace as one self-contained HTML sequence diagram.

    scripts/trace-view tests/traces/burst.jsonl -o burst.html
    python -m actors.trace.view TRACE.jsonl [-o OUT.html] [--from-seq N] [--max-messages N]

Modules import only downward, and only the standard library besides:
:mod:`~actors.trace.view.__main__` (the command line) → :mod:`~actors.trace.view.page` (the
HTML page, legend, toggle) → :mod:`~actors.trace.view.svg` (the drawing) →
:mod:`~actors.trace.view.layout` (pure: lines in, coordinates out; its docstring gives the
layout decisions) → :mod:`actors.trace.format` (the one loader). This package module imports
none of them, so ``python -m actors.trace.view`` runs ``__main__`` once.
"""
