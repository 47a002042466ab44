"""The one rule set for document names, used by every route (WebSocket, HTTP API, viewer).

A name is what follows the hub's address in a socket URL (``ws://host/<name>``) and what the
HTTP routes take in ``/api/documents/<name>/...``. The same rules apply everywhere so a
document reachable one way is reachable every other way, and no name can be written two
ways that a browser or proxy would turn into one another:

- 1 to ``MAX_DOCUMENT_NAME_BYTES`` bytes of UTF-8 (no lone surrogates);
- no control characters (C0, DEL, C1), line or paragraph separators, or noncharacters;
- ``/`` separates segments; no segment is empty, ``.`` or ``..`` (browsers collapse those
  into another document's link), and no backslash (browsers read it as ``/`` in http URLs).
"""

from __future__ import annotations

import unicodedata

MAX_DOCUMENT_NAME_BYTES = 512  # a rule, not a knob: names are keys in every store and archive
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


class InvalidDocumentName(ValueError):
    """A name outside the rules; the message says which rule (never echoes a huge name)."""


def check_document_name(name: str) -> str:
    """Return ``name`` unchanged when it follows the rules, else raise InvalidDocumentName."""
    if not name:
        raise InvalidDocumentName("the document name is empty")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidDocumentName("the document name is not valid UTF-8") from exc
    if size > MAX_DOCUMENT_NAME_BYTES:
        raise InvalidDocumentName(f"the document name is over {MAX_DOCUMENT_NAME_BYTES} bytes")
    for character in name:
        if unicodedata.category(character) in _FORBIDDEN_CATEGORIES or _is_noncharacter(character):
            raise InvalidDocumentName(f"the document name contains U+{ord(character):04X}")
    if "\\" in name:
        raise InvalidDocumentName("the document name contains a backslash")
    for segment in name.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidDocumentName(f"the document name has {_describe(segment)} segment")
    return name


def is_valid_document_name(name: str) -> bool:
    try:
        check_document_name(name)
    except InvalidDocumentName:
        return False
    return True


def _is_noncharacter(character: str) -> bool:
    code = ord(character)
    return 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE


def _describe(segment: str) -> str:
    return "an empty" if not segment else f"a '{segment}'"
