"""Who a presence state says it is, checked and stamped by the hub.

A client chooses its whole awareness state; with auth on, the part that names a person or
agent (``user.id``, ``user.name``, ``user.kind``) is overwritten from the verified token,
so nobody can show up as someone else. The rest (colour, cursor, model...) stays the client's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class InvalidState(ValueError):
    """A presence state the hub refuses (not JSON, or not an object when it must be stamped)."""


@dataclass(frozen=True, slots=True)
class Identity:
    """The verified identity of a presence owner (a token's subject, kind and display name)."""

    subject: str
    kind: str
    name: str

    @classmethod
    def of_subject(cls, subject: str, kind: str) -> Identity:
        """The identity shown for a token: its subject is also the name others see."""
        return cls(subject, kind, subject)


def parse_state(state: str) -> Any:
    """The JSON value of a state; raises InvalidState for text every Yjs client would choke on."""
    try:
        return json.loads(state)
    except (ValueError, RecursionError) as exc:
        raise InvalidState(f"state is not JSON: {exc}") from exc


def stamp(state: str, identity: Identity) -> str:
    """The state with ``user`` carrying the verified identity; raises InvalidState."""
    value = parse_state(state)
    if not isinstance(value, dict):
        raise InvalidState("state must be a JSON object")
    user = value.get("user")
    user = dict(user) if isinstance(user, dict) else {}
    user.update(id=identity.subject, name=identity.name, kind=identity.kind)
    value["user"] = user
    try:
        return json.dumps(value, separators=(",", ":"))
    except (ValueError, RecursionError) as exc:
        raise InvalidState(f"state cannot be encoded: {exc}") from exc
