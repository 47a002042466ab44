"""The event envelope: one JSON object per event, versioned (``schema/event-v1.json``).

Event ids are stable: the same stored change always gets the same id, so a consumer
de-duplicates an at-least-once redelivery by ``id``. ``document.changed`` is
``<document>@<last seq>``; events derived from it add a suffix; events from the audit
log are ``audit:<id>``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

SCHEMA_VERSION = "nova.events/1"

DOCUMENT_CHANGED = "document.changed"
DOCUMENT_CREATED = "document.created"
DOCUMENT_RESTORED = "document.restored"
DOCUMENT_DELETED = "document.deleted"
SUGGESTION_CREATED = "suggestion.created"
SUGGESTION_ACCEPTED = "suggestion.accepted"
SUGGESTION_REJECTED = "suggestion.rejected"
ACCESS_REVOKED = "access.revoked"

EVENT_TYPES = (
    DOCUMENT_CHANGED,
    DOCUMENT_CREATED,
    DOCUMENT_RESTORED,
    DOCUMENT_DELETED,
    SUGGESTION_CREATED,
    SUGGESTION_ACCEPTED,
    SUGGESTION_REJECTED,
    ACCESS_REVOKED,
)

# Audit actions that are published, by event type. Work that records an audit action
# (e.g. a deletion recording "delete") gets its event without touching the publisher.
AUDIT_EVENT_TYPES = {
    "restore": DOCUMENT_RESTORED,  # to an earlier version (an edit: document.changed follows too)
    "archive-restore": DOCUMENT_RESTORED,  # to a version kept in the archive
    "undelete": DOCUMENT_RESTORED,  # a soft-deleted document back within its grace period
    "delete": DOCUMENT_DELETED,  # soft delete (restorable)
    "erase": DOCUMENT_DELETED,  # hard erase (data.action tells which)
    "purge": DOCUMENT_DELETED,  # erased when the grace period ran out
    "revoke": ACCESS_REVOKED,
}


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    type: str
    document: str | None
    time: float  # unix seconds of the newest stored change it describes
    node: str  # hub node that received the change
    first_seq: int | None = None
    last_seq: int | None = None
    actors: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Kafka message key: the document, so each document's events stay in order."""
        return self.document or ""

    def to_json(self) -> dict[str, Any]:
        seq = None if self.first_seq is None else {"first": self.first_seq, "last": self.last_seq}
        return {
            "schema": SCHEMA_VERSION,
            "id": self.id,
            "type": self.type,
            "document": self.document,
            "seq": seq,
            "time": self.time,
            "node": self.node,
            "actors": list(self.actors),
            "data": self.data,
        }

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False).encode()


def changed_id(document: str, last_seq: int) -> str:
    return f"{document}@{last_seq}"


def b64(update: bytes) -> str:
    return base64.b64encode(update).decode("ascii")


def schema() -> dict[str, Any]:
    """The JSON schema of the envelope (draft 2020-12)."""
    text = resources.files(__package__).joinpath("schema/event-v1.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded
