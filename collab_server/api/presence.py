"""Agent presence over HTTP: PUT to appear (with a TTL), DELETE to leave.

PUT /api/documents/<name>/presence {"agent": "summarizer-1", "name": "Summarizer",
    "model": "...", "color": "#8b5cf6", "ttl": 30, "cursor": {"index": 12, "length": 0}}

The whole body is checked before anything changes. With auth on, the lease belongs to the
token's subject and the identity shown (``user.id``, ``user.name``, ``user.kind``) is the
token's, whatever the body says.
"""

from __future__ import annotations

import math
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from awareness.identity import Identity
from collab_server.agent_presence import MAX_TTL_SECONDS, PresenceRefused
from collab_server.api.access import caller, document_of
from collab_server.api.bodies import read_json_object
from collab_server.api.context import state_of
from collab_server.api.errors import ApiError

DEFAULT_TTL_SECONDS = 30.0  # y-protocols drop presence not renewed for 30 s: the same for agents
MAX_TEXT_CHARS = 128  # API contract: an agent id, name or label is a short label
MAX_POSITION = 2**53 - 1  # JavaScript's largest exact integer: every client can hold it
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")  # the README's presence convention


class InvalidPresence(ValueError):
    pass


def _text(data: dict[str, Any], key: str, default: str) -> str:
    value = data.get(key)
    if value is None or value == "":
        return default
    if not isinstance(value, str) or len(value) > MAX_TEXT_CHARS:
        raise InvalidPresence(f"'{key}' must be a string of at most {MAX_TEXT_CHARS} characters")
    return value


def _color(value: str) -> str:
    if not _COLOR.fullmatch(value):
        raise InvalidPresence("'color' must be #rrggbb (README, presence convention)")
    return value


def _position(cursor: dict[str, Any], key: str, default: int | None) -> int:
    value = cursor.get(key, default)
    if (
        value is None
        or isinstance(value, bool)
        or not isinstance(value, int)
        or not 0 <= value <= MAX_POSITION
    ):
        raise InvalidPresence(f"'cursor.{key}' must be an integer from 0 to {MAX_POSITION}")
    return value


def presence_state(data: dict[str, Any]) -> dict[str, Any]:
    """The awareness state every Nova client understands (see README, presence convention).

    Raises InvalidPresence for a field of the wrong type or size.
    """
    user = {
        "name": _text(data, "name", str(data["agent"])),
        "color": _color(_text(data, "color", "#8b5cf6")),
        "kind": "agent",
    }
    model = _text(data, "model", "")
    if model:
        user["model"] = model
    state: dict[str, Any] = {"user": user}
    cursor = data.get("cursor")
    if cursor is not None:
        if not isinstance(cursor, dict):
            raise InvalidPresence("'cursor' must be an object {index, length}")
        state["nova"] = {"index": _position(cursor, "index", None), "length": _position(cursor, "length", 0)}
    return state


def _ttl(data: dict[str, Any]) -> float:
    ttl = data.get("ttl", DEFAULT_TTL_SECONDS)
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise InvalidPresence("'ttl' must be a number of seconds")
    ttl = float(ttl)
    if not math.isfinite(ttl) or not 0 < ttl <= MAX_TTL_SECONDS:
        raise InvalidPresence(f"'ttl' must be more than 0 and at most {MAX_TTL_SECONDS:.0f} seconds")
    return ttl


def _caller(request: Request) -> tuple[str, Identity | None]:
    """Whose lease this is, and the identity to stamp (None when auth is off)."""
    if not state_of(request).access.enabled:
        return "", None
    principal = caller(request)
    return principal.subject, Identity.of_subject(principal.subject, principal.kind)


async def put_presence(request: Request) -> Response:
    name = document_of(request)
    data = await read_json_object(request)
    agent = data.get("agent")
    if not isinstance(agent, str) or not agent or len(agent) > MAX_TEXT_CHARS:
        raise ApiError(
            400, "invalid_request", f"'agent' (an id of 1-{MAX_TEXT_CHARS} characters) is required"
        )
    try:
        ttl = _ttl(data)
        state = presence_state(data)
    except InvalidPresence as exc:
        raise ApiError(400, "invalid_request", str(exc)) from exc
    owner, identity = _caller(request)
    try:
        async with state_of(request).documents.using(name) as room:
            client_id = state_of(request).agents.set(
                room, owner, agent, state, ttl_seconds=ttl, identity=identity
            )
    except PresenceRefused as exc:
        raise ApiError(422, "presence_refused", str(exc)) from exc
    return JSONResponse({"document": name, "agent": agent, "client_id": client_id, "ttl": ttl})


async def delete_presence(request: Request) -> Response:
    name = document_of(request)
    agent = request.path_params["agent"]
    owner, _ = _caller(request)
    if not state_of(request).agents.remove(name, owner, agent):
        raise ApiError(404, "not_present", f"agent {agent[:MAX_TEXT_CHARS]!r} is not present in {name!r}")
    return JSONResponse({"document": name, "agent": agent, "removed": True})
