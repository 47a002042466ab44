"""The one rule set for document names (collab_server/document_names.py), used by every route."""

from __future__ import annotations

import pytest

from collab_server.document_names import MAX_DOCUMENT_NAME_BYTES, InvalidDocumentName, check_document_name

pytestmark = pytest.mark.fast

GOOD = ["notes", "notes/2026/plan.md", "ünïcode/日本語", "a b", "x" * MAX_DOCUMENT_NAME_BYTES, "team/.hidden"]
BAD = [
    "",
    "x" * (MAX_DOCUMENT_NAME_BYTES + 1),
    "é" * (MAX_DOCUMENT_NAME_BYTES // 2 + 1),  # the limit counts UTF-8 bytes
    "a\x00b",
    "a\nb",
    "a\x7fb",
    "a\x85b",  # C1 control
    "a\u2028b",  # line separator
    "a\ufffeb",  # noncharacter
    "a\ud800b",  # lone surrogate
    "a\\b",
    "/a",
    "a/",
    "a//b",
    ".",
    "..",
    "a/../b",
    "a/./b",
]


@pytest.mark.parametrize("name", GOOD)
def test_names_within_the_rules_pass_unchanged(name: str) -> None:
    assert check_document_name(name) == name


@pytest.mark.parametrize("name", BAD, ids=range(len(BAD)))
def test_names_outside_the_rules_are_refused_with_a_short_reason(name: str) -> None:
    with pytest.raises(InvalidDocumentName) as refused:
        check_document_name(name)
    assert len(str(refused.value)) < 100  # never echoes a huge name
