"""The root shared types of a document, discovered from the document itself, as plain text.

Editors name and shape their root types differently: y-codemirror.next and y-monaco edit a
``Y.Text`` (``codemirror``, ``monaco``, ...), y-quill a ``Y.Text`` with formatting, Tiptap and
y-prosemirror a ``Y.XmlFragment`` (``default``, ``prosemirror``), apps keep text in ``Y.Map``
and ``Y.Array`` values. An encoded update does not say which type a root is (a Doc that
receives it sees "undefined" roots until someone asks for a type, and asking fixes the type
for good), so discovery never touches a live document: it probes throwaway copies.

- ``Y.Text``: its characters (formatting and embeds dropped);
- ``Y.XmlFragment``: the text of its text nodes, one line per block element;
- ``Y.Map``: ``key: text`` lines for values that hold text (strings, Y.Text, XML, nested);
- ``Y.Array``: one line per item that holds text.

Roots whose name starts with ``nova:`` are the hub's own bookkeeping and are not fields.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import pycrdt

from crdt_core._untrusted import untrusted

INTERNAL_PREFIX = "nova:"


class FieldKind(enum.StrEnum):
    TEXT = "text"  # Y.Text: editable through the hub's text and edits APIs
    XML = "xml"  # Y.XmlFragment: rich text, read as plain text
    MAP = "map"
    ARRAY = "array"


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: FieldKind
    text: str


def _doc_of(update: bytes) -> pycrdt.Doc[Any]:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    untrusted("update", lambda: doc.apply_update(update))
    return doc


def field_kinds(update: bytes) -> dict[str, FieldKind]:
    """The kind of every non-empty root type of an encoded document, by root name."""
    names = [name for name in list(_doc_of(update).keys()) if not name.startswith(INTERNAL_PREFIX)]
    if not names:
        return {}
    kinds: dict[str, FieldKind] = {}
    as_maps = _doc_of(update)
    for name in names:
        if len(as_maps.get(name, type=pycrdt.Map)) > 0:
            kinds[name] = FieldKind.MAP
    # Read as a text, a sequence root shows what it holds: characters (Y.Text), XML nodes
    # (Y.XmlFragment), or nested types (Y.Array); plain values of an array do not show.
    as_texts = _doc_of(update)
    unknown = []
    for name in names:
        if name in kinds:
            continue
        inserts = [insert for insert, _ in as_texts.get(name, type=pycrdt.Text).diff()]
        if any(isinstance(insert, str) for insert in inserts):
            kinds[name] = FieldKind.TEXT
        elif any(isinstance(insert, (pycrdt.XmlElement, pycrdt.XmlText)) for insert in inserts):
            kinds[name] = FieldKind.XML
        elif inserts:
            kinds[name] = FieldKind.ARRAY
        else:
            unknown.append(name)
    if unknown:
        as_arrays = _doc_of(update)
        for name in unknown:
            if len(as_arrays.get(name, type=pycrdt.Array)) > 0:
                kinds[name] = FieldKind.ARRAY
    return kinds


def read_fields(update: bytes) -> list[Field]:
    """Every root field of an encoded document with its plain text, in name order."""
    kinds = field_kinds(update)
    doc = _doc_of(update)
    return [Field(name, kinds[name], _render_root(doc, name, kinds[name])) for name in sorted(kinds)]


def read_field(update: bytes, name: str) -> Field | None:
    """One root field, or None when the document has no such (non-empty) root."""
    kind = field_kinds(update).get(name)
    if kind is None:
        return None
    return Field(name, kind, _render_root(_doc_of(update), name, kind))


def _render_root(doc: pycrdt.Doc[Any], name: str, kind: FieldKind) -> str:
    if kind is FieldKind.TEXT:
        return str(doc.get(name, type=pycrdt.Text))
    if kind is FieldKind.XML:
        return _render_xml(doc.get(name, type=pycrdt.XmlFragment))
    if kind is FieldKind.MAP:
        return _render_value(doc.get(name, type=pycrdt.Map))
    return _render_value(doc.get(name, type=pycrdt.Array))


def _render_xml(node: pycrdt.XmlFragment | pycrdt.XmlElement | pycrdt.XmlText) -> str:
    if isinstance(node, pycrdt.XmlText):
        return "".join(insert for insert, _ in node.diff() if isinstance(insert, str))
    parts: list[str] = []
    previous_was_text = False
    for child in node.children:
        rendered = _render_xml(child)
        is_text = isinstance(child, pycrdt.XmlText)
        # Block elements each take a line; runs of text nodes stay on theirs.
        if parts and not (is_text and previous_was_text):
            parts.append("\n")
        parts.append(rendered)
        previous_was_text = is_text
    return "".join(parts)


def _render_value(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, pycrdt.Text):
        return str(value)
    if isinstance(value, (pycrdt.XmlFragment, pycrdt.XmlElement, pycrdt.XmlText)):
        return _render_xml(value)
    if isinstance(value, (pycrdt.Map, dict)):
        lines = []
        for key in sorted(value.keys()):
            text = _render_value(value[key])
            if text:
                lines.append(f"{key}: {text}")
        return "\n".join(lines)
    if isinstance(value, (pycrdt.Array, list)):
        return "\n".join(text for text in (_render_value(item) for item in value) if text)
    return ""  # numbers, booleans, binary: not text


def live_kind(doc: pycrdt.Doc[Any], name: str) -> FieldKind | None:
    """The kind of root ``name`` of a live document, without fixing the type of any root.

    A root the process already uses has its type; an "undefined" one (only received from
    clients) is discovered on a copy. None: the document has no such non-empty root.
    """
    if name not in set(doc.keys()):
        return None
    root = doc[name]
    if isinstance(root, pycrdt.Text):
        return FieldKind.TEXT
    if isinstance(root, pycrdt.XmlFragment):
        return FieldKind.XML
    if isinstance(root, pycrdt.Map):
        return FieldKind.MAP
    if isinstance(root, pycrdt.Array):
        return FieldKind.ARRAY
    return field_kinds(doc.get_update()).get(name)
