"""Where the editing traces live: inside the checkout, so a plain clone runs every benchmark.

The four traces in ``tests/data/editing-traces`` are unchanged copies of the editing-traces
collection by Joseph Gentle and contributors (automerge-paper prepared by Martin Kleppmann from
the automerge-perf repository), used under CC BY 4.0; ``tests/data/README.md`` keeps the
attribution and describes the format.
"""

from __future__ import annotations

from pathlib import Path

TRACES_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "editing-traces"


def trace_path(name: str) -> Path:
    """The gzipped JSON file of trace ``name`` (e.g. ``automerge-paper``)."""
    return TRACES_DIR / f"{name}.json.gz"
