"""Limits are checked together at start: a contradictory set is refused with a clear error."""

from __future__ import annotations

import pytest

from collab_server.settings import MIB, Settings

pytestmark = pytest.mark.fast  # in-process: part of `scripts/test.sh --fast`


def test_the_defaults_are_consistent() -> None:
    settings = Settings().validate()
    assert settings.max_message_bytes <= settings.outbox_max_bytes
    assert settings.max_pending_bytes_per_connection <= settings.max_pending_bytes_per_document


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"max_message_bytes": 64 * MIB, "outbox_max_bytes": 32 * MIB},
            "max_message_bytes=67108864 is larger than outbox_max_bytes=33554432",
        ),
        (
            {"max_awareness_state_bytes": 1 << 20, "max_awareness_bytes_per_document": 1 << 10},
            "max_awareness_state_bytes=1048576 is larger than max_awareness_bytes_per_document=1024",
        ),
        (
            {"max_pending_bytes_per_connection": 2 * MIB, "max_pending_bytes_per_document": MIB},
            "max_pending_bytes_per_connection=2097152 is larger than max_pending_bytes_per_document",
        ),
        (
            {"max_awareness_clients_per_connection": 0},
            "max_awareness_clients_per_connection must be positive",
        ),
        ({"awareness_flush_ms": -1.0}, "awareness_flush_ms must not be negative"),
        ({"outbox_max_messages": 1}, "outbox_max_messages must be at least 2"),
    ],
)
def test_contradictory_or_impossible_limits_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match="contradictory limits" if "larger" in message else None) as caught:
        Settings().with_overrides(overrides).validate()
    assert message in str(caught.value)
