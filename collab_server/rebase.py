"""Edits written against an older version of a text, rebased onto the live document.

A version token is an encoded Yjs snapshot (state vector + delete set). The text as it was
at that version is rebuilt from the live document (rooms keep deleted items, skip_gc), and
each edit's range is carried over by CRDT identity (the characters the agent saw, marked
in the old version and located in the live one): it lands where the agent meant it even if
people typed before it since. When the text an edit targets was
changed or deleted meanwhile, the edit is refused with a Conflict naming the range.

Positions in this module are code points (Python string indices).
"""

from __future__ import annotations

import base64
import binascii
import difflib
import itertools
from dataclasses import dataclass
from typing import Any

import pycrdt
from pycrdt import Snapshot

from collab_server.textops import byte_offset
from crdt_core import ProtocolError, untrusted


class EditError(ValueError):
    """An edit that can never apply (bad range, malformed request): a 400."""

    code = "invalid_edit"


class InvalidVersion(EditError):
    code = "invalid_version"


class Conflict(Exception):
    """The text an edit targets changed since the version it was written against: a 409."""

    def __init__(self, start: int, end: int, expected: str, found: str) -> None:
        super().__init__(f"the text at {start}..{end} changed since this version")
        self.start = start
        self.end = end
        self.expected = expected
        self.found = found


@dataclass(frozen=True, slots=True)
class RangeEdit:
    start: int
    end: int
    text: str


def version_token(doc: pycrdt.Doc[Any]) -> str:
    return base64.urlsafe_b64encode(Snapshot.from_doc(doc).encode()).decode().rstrip("=")


def text_at(doc: pycrdt.Doc[Any], token: str, field: str) -> str:
    return str(doc_at_version(doc, token).get(field, type=pycrdt.Text))


def doc_at_version(doc: pycrdt.Doc[Any], token: str) -> pycrdt.Doc[Any]:
    """The document as it was at version ``token``; raises InvalidVersion for a foreign token."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return untrusted("version token", lambda: pycrdt.Doc.from_snapshot(Snapshot.decode(raw), doc))
    except (ProtocolError, binascii.Error) as exc:
        raise InvalidVersion(f"not a version token of this document: {exc}") from exc


def edits_for_new_text(old: str, new: str) -> list[RangeEdit]:
    """The minimal range edits that turn ``old`` into ``new``."""
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    return [RangeEdit(i1, i2, new[j1:j2]) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]


def find_edit(old: str, find: str, replace: str) -> RangeEdit:
    if not find:
        raise EditError("'find' must not be empty")
    first = old.find(find)
    if first < 0:
        raise EditError("the text to find does not occur in that version")
    if old.find(find, first + 1) >= 0:
        raise EditError("the text to find occurs more than once in that version: give a longer snippet")
    return RangeEdit(first, first + len(find), replace)


def rebase(
    live_doc: pycrdt.Doc[Any], token: str, field: str, edits: list[RangeEdit]
) -> tuple[str, list[RangeEdit]]:
    """Map edits written against version ``token`` onto the live text.

    Each target range is marked with a formatting attribute in the old version, and the
    marks are merged into a copy of the live document: CRDT identity carries them onto the
    very characters the agent saw, wherever those are now. Returns the version's text and
    the edits in live positions, sorted right to left. Raises EditError for impossible
    edits and Conflict when a target was changed or deleted meanwhile.
    """
    # The old version, re-hosted in a document with a client id of its own, so the marks
    # it creates never collide with ids in the live document.
    version_doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=_fresh_client_id(live_doc))
    version_doc.apply_update(doc_at_version(live_doc, token).get_update())
    version_text = version_doc.get(field, type=pycrdt.Text)
    old = str(version_text)
    ordered = _validated(edits, len(old))

    # Each edit marks single characters of the old version: a range its first and last one,
    # an insert its neighbour. A mark's span in the live text *starts* exactly at the marked
    # character: the marks come from the largest client id, so Yjs orders them after any
    # text inserted concurrently at the same place (and such text never gets marked).
    anchors: list[tuple[RangeEdit, str]] = []
    state_before = version_doc.get_state()
    with version_doc.transaction():
        for number, edit in enumerate(ordered):
            if edit.start < edit.end:
                _mark_char(version_text, old, edit.start, f"{number}s")
                _mark_char(version_text, old, edit.end - 1, f"{number}e")
                side = "range"
            elif edit.start < len(old):
                _mark_char(version_text, old, edit.start, f"{number}s")
                side = "before"
            elif edit.start > 0:
                _mark_char(version_text, old, edit.start - 1, f"{number}s")
                side = "after"
            else:
                side = "empty"
            anchors.append((edit, side))
    marks = version_doc.get_update(state_before)

    live, starts = _locate_marks(live_doc, marks, field)

    rebased = []
    for number, (edit, side) in enumerate(anchors):
        first = starts.get(f"{number}s")
        if side == "empty":
            rebased.append(RangeEdit(0, 0, edit.text))
        elif side == "range":
            last = starts.get(f"{number}e")
            expected = old[edit.start : edit.end]
            found = live[first : last + 1] if first is not None and last is not None and first <= last else ""
            if found != expected or first is None:
                raise Conflict(edit.start, edit.end, expected, found)
            rebased.append(RangeEdit(first, first + len(expected), edit.text))
        else:
            neighbour = edit.start if side == "before" else edit.start - 1
            if first is None:
                raise Conflict(neighbour, neighbour + 1, old[neighbour : neighbour + 1], "")
            at = first if side == "before" else first + 1
            rebased.append(RangeEdit(at, at, edit.text))
    return old, sorted(rebased, key=lambda e: e.start, reverse=True)


def _validated(edits: list[RangeEdit], length: int) -> list[RangeEdit]:
    ordered = sorted(edits, key=lambda e: (e.start, e.end))
    for edit in ordered:
        if not 0 <= edit.start <= edit.end <= length:
            raise EditError(f"range {edit.start}..{edit.end} is outside the version's text (length {length})")
    for before, after in itertools.pairwise(ordered):
        if after.start < before.end:
            raise EditError(f"edits overlap at {after.start}..{before.end}")
    return ordered


def _locate_marks(live_doc: pycrdt.Doc[Any], marks: bytes, field: str) -> tuple[str, dict[str, int]]:
    """Merge the marks into a copy of the live document; return its text and where each mark starts."""
    marked: pycrdt.Doc[Any] = pycrdt.Doc()
    marked.apply_update(live_doc.get_update())
    marked.apply_update(marks)
    starts: dict[str, int] = {}
    parts: list[str] = []
    position = 0
    for chunk, attributes in marked.get(field, type=pycrdt.Text).diff():
        text = chunk if isinstance(chunk, str) else ""
        for key in attributes or {}:
            if key.startswith(_MARK_PREFIX):
                starts.setdefault(key[len(_MARK_PREFIX) :], position)
        parts.append(text)
        position += len(text)
    return "".join(parts), starts


def _mark_char(text_type: pycrdt.Text, text: str, index: int, name: str) -> None:
    text_type.format(byte_offset(text, index), byte_offset(text, index + 1), {_MARK_PREFIX + name: True})


_MARK_PREFIX = "nova-rebase-"


def _mark(number: int) -> str:
    return f"{_MARK_PREFIX}{number}"


# The largest client id a Yjs client can have (JavaScript's largest safe integer).
_MARKER_CLIENT_ID = 2**53 - 1


def _fresh_client_id(doc: pycrdt.Doc[Any]) -> int:
    return _MARKER_CLIENT_ID if doc.client_id != _MARKER_CLIENT_ID else _MARKER_CLIENT_ID - 1


def apply_rebased(live_doc: pycrdt.Doc[Any], field: str, edits: list[RangeEdit]) -> None:
    """Apply live-position edits, right to left (call inside one transaction)."""
    text_type = live_doc.get(field, type=pycrdt.Text)
    current = str(text_type)
    for edit in edits:
        start = byte_offset(current, edit.start)
        if edit.end > edit.start:
            end = byte_offset(current, edit.end)
            del text_type[start:end]
        if edit.text:
            text_type.insert(start, edit.text)
