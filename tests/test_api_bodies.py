"""Strict input parsing for the HTTP API (collab_server/api/bodies.py): refused before use."""

from __future__ import annotations

import pytest

from collab_server.api.bodies import MAX_INTEGER, MAX_JSON_DEPTH, bounded_int, parse_json
from collab_server.api.errors import ApiError

pytestmark = pytest.mark.fast


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"[" * 5000 + b"]" * 5000, "malformed_json"),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "malformed_json"),
        (b'{"ttl": 1e309}', "malformed_json"),
        (b'{"ttl": -1e309}', "malformed_json"),
        (b'{"ttl": NaN}', "malformed_json"),
        (b'{"ttl": Infinity}', "malformed_json"),
        (b'{"seq": ' + str(2**63).encode() + b"}", "malformed_json"),
        (b'{"seq": ' + b"9" * 5000 + b"}", "malformed_json"),
        (b"\xff\xfe{}", "malformed_json"),
        (b'{"text": "\\ud800"}', "invalid_text"),
        (b'{"\\udfff": 1}', "invalid_text"),
        (b'{"a": ["ok", {"b": "\\ud83d"}]}', "invalid_text"),
    ],
)
def test_bodies_that_cannot_be_used_are_refused(body: bytes, code: str) -> None:
    with pytest.raises(ApiError) as refused:
        parse_json(body)
    assert (refused.value.status, refused.value.code) == (400, code)


def test_usable_bodies_parse_as_json() -> None:
    assert parse_json(b'{"seq": 9223372036854775807, "ttl": 1e300, "text": "\\ud83d\\ude00 \\"[\\""}') == {
        "seq": MAX_INTEGER,
        "ttl": 1e300,
        "text": '\U0001f600 "["',
    }
    deep = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert parse_json(deep) is not None


@pytest.mark.parametrize("raw", ["", "-", "1.5", "²", "١", "1e3", str(2**64), "1001", "0"])
def test_query_integers_outside_their_range_are_refused(raw: str) -> None:
    with pytest.raises(ApiError):
        bounded_int(raw, "limit", 1, 1000)


def test_query_integers_in_range_pass() -> None:
    assert bounded_int(" 7 ", "limit", 1, 1000) == 7
    assert bounded_int("-3", "offset", -5, 5) == -3
