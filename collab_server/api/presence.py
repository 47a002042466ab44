"""Agent presence over HTTP: PUT to appear (with a TTL), DELETE to leave.

PUT /api/documents/<name>/presence {"agent": "summarizer-1", "name": "Summarizer",
    "model": "...", "color": "#8b5cf6", "ttl": 30, "cursor": {"index": 12, "length": 0}}

The whole body is validated before anything is set: a bad field is a 400 and no presence
changes. The TTL is bounded (``MAX_TTL_SECONDS``).
"""

from __future__ import annotations

import math
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab_server.agent_presence import MAX_TTL_SECONDS
from collab_server.api.access import document_of
from collab_server.api.bodies import MAX_INTEGER, invalid, optional_string, read_json_object
from collab_server.api.context import hub_of
from collab_server.api.errors import ApiError

DEFAULT_TTL_SECONDS = 30.0
DEFAULT_COLOR = "#8b5cf6"
MAX_AGENT_CHARS = 128
MAX_LABEL_CHARS = 128
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


def _integer(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INTEGER:
        raise invalid(f"{what} must be a non-negative integer")
    return value


def presence_state(data: dict[str, Any]) -> dict[str, Any]:
    """The awareness state every Nova client understands (see README, presence convention);
    raises ApiError for any field of the wrong type or shape."""
    agent = optional_string(data, "agent", MAX_AGENT_CHARS)
    if agent is None:
        raise invalid(f"'agent' (an id of 1-{MAX_AGENT_CHARS} characters) is required")
    color = optional_string(data, "color", 7, default=DEFAULT_COLOR)
    if color is None or not _COLOR.fullmatch(color):
        raise invalid("'color' must be #rrggbb")
    user = {
        "name": optional_string(data, "name", MAX_LABEL_CHARS, default=agent),
        "color": color,
        "kind": "agent",
    }
    model = optional_string(data, "model", MAX_LABEL_CHARS)
    if model is not None:
        user["model"] = model
    state: dict[str, Any] = {"user": user}
    cursor = data.get("cursor")
    if cursor is not None:
        if not isinstance(cursor, dict):
            raise invalid("'cursor' must be an object {index, length}")
        index = _integer(cursor.get("index"), "'cursor.index'")
        length = _integer(cursor.get("length", 0), "'cursor.length'")
        state["nova"] = {"index": index, "length": length}
    return state


def _ttl(data: dict[str, Any]) -> float:
    ttl = data.get("ttl", DEFAULT_TTL_SECONDS)
    if (
        not isinstance(ttl, (int, float))
        or isinstance(ttl, bool)
        or not math.isfinite(ttl)
        or not 0 < ttl <= MAX_TTL_SECONDS
    ):
        raise invalid(f"'ttl' must be a number of seconds in (0, {MAX_TTL_SECONDS:g}]")
    return float(ttl)


async def put_presence(request: Request) -> Response:
    hub = hub_of(request)
    name = document_of(request)
    data = await read_json_object(request)
    state = presence_state(data)  # everything validated before anything is set
    agent: str = data["agent"]
    ttl = _ttl(data)
    async with hub.using(name) as room:
        client_id = hub.agent_presence.set(room, agent, state, ttl)
    return JSONResponse({"document": name, "agent": agent, "client_id": client_id, "ttl": ttl})


async def delete_presence(request: Request) -> Response:
    hub = hub_of(request)
    name = document_of(request)
    agent = request.path_params["agent"]
    if not agent or len(agent) > MAX_AGENT_CHARS:
        raise invalid(f"the agent id must be 1-{MAX_AGENT_CHARS} characters")
    if not hub.agent_presence.remove(name, agent):
        raise ApiError(404, "not_present", f"agent {agent!r} is not present in {name!r}")
    return JSONResponse({"document": name, "agent": agent, "removed": True})
