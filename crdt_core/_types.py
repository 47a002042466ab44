"""Value types shared by both backends of the facade."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ProtocolError(ValueError):
    """Bytes that are not a valid y-protocol message or encoded update."""


class MessageKind(IntEnum):
    SYNC_STEP1 = 0
    SYNC_STEP2 = 1
    SYNC_UPDATE = 2
    AWARENESS = 3
    AUTH = 4
    QUERY_AWARENESS = 5


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded y-websocket message.

    ``payload`` is the state vector (step 1), the update (step 2, update), the
    awareness update, the UTF-8 reason of an auth message, or empty.
    """

    kind: MessageKind
    payload: bytes


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    client_id: int
    clock: int
    state: str  # JSON text; "null" means the client left
