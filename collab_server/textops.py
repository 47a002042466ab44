"""Edits to a pycrdt ``Text`` expressed in Python string positions (code points).

pycrdt indexes text by UTF-8 byte; Python, agents and the HTTP API count code points;
VS Code and yjs count UTF-16 units. Everything server-side converts here, in one place.
"""

from __future__ import annotations

import difflib

import pycrdt


def byte_offset(text: str, index: int) -> int:
    """UTF-8 byte offset of code-point ``index`` in ``text``."""
    return len(text[:index].encode("utf-8"))


def insert(ytext: pycrdt.Text, current: str, index: int, value: str) -> None:
    ytext.insert(byte_offset(current, index), value)


def delete(ytext: pycrdt.Text, current: str, start: int, end: int) -> None:
    begin = byte_offset(current, start)
    ytext.__delitem__(slice(begin, begin + len(current[start:end].encode("utf-8"))))


def replace_all(ytext: pycrdt.Text, new: str) -> int:
    """Turn ``ytext`` into ``new`` with a minimal set of inserts and deletes.

    Unchanged stretches stay the same CRDT items, so concurrent edits elsewhere survive.
    Returns the number of operations applied. Call inside a transaction.
    """
    current = str(ytext)
    matcher = difflib.SequenceMatcher(a=current, b=new, autojunk=False)
    operations = 0
    # Right to left, so earlier positions stay valid.
    for tag, i1, i2, j1, j2 in reversed(matcher.get_opcodes()):
        if tag == "equal":
            continue
        if i2 > i1:
            delete(ytext, current, i1, i2)
            operations += 1
        if j2 > j1:
            insert(ytext, current, i1, new[j1:j2])
            operations += 1
    return operations
