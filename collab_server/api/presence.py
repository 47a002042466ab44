"""Agent presence over HTTP: PUT to appear (with a TTL), DELETE to leave.

PUT /api/documents/<name>/presence {"agent": "summarizer-1", "name": "Summarizer",
    "model": "...", "color": "#8b5cf6", "ttl": 30, "cursor": {"index": 12, "length": 0}}
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab_server.api.context import agents_of, documents_of
from collab_server.api.errors import error_response
from collab_server.api.history import read_json
from collab_server.documents import DocumentUnavailable, HubStopping
from persistence.base import StoreError

DEFAULT_TTL_SECONDS = 30.0


def presence_state(data: dict[str, Any]) -> dict[str, Any]:
    """The awareness state every Nova client understands (see README, presence convention)."""
    user = {
        "name": str(data.get("name") or data["agent"]),
        "color": str(data.get("color") or "#8b5cf6"),
        "kind": "agent",
    }
    if data.get("model"):
        user["model"] = str(data["model"])
    state: dict[str, Any] = {"user": user}
    cursor = data.get("cursor")
    if isinstance(cursor, dict) and isinstance(cursor.get("index"), int):
        state["nova"] = {"index": cursor["index"], "length": int(cursor.get("length") or 0)}
    return state


async def put_presence(request: Request) -> Response:
    name = request.path_params["name"]
    data = await read_json(request)
    if isinstance(data, Response):
        return data
    agent = data.get("agent")
    if not isinstance(agent, str) or not agent or len(agent) > 128:
        return error_response(400, "invalid_request", "'agent' (an id of 1-128 characters) is required")
    ttl = data.get("ttl", DEFAULT_TTL_SECONDS)
    if not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or ttl <= 0:
        return error_response(400, "invalid_request", "'ttl' must be a positive number of seconds")
    try:
        async with documents_of(request).using(name) as room:
            client_id = agents_of(request).set(room, agent, presence_state(data), float(ttl))
    except (DocumentUnavailable, HubStopping, StoreError) as exc:
        return error_response(503, "document_unavailable", str(exc))
    return JSONResponse({"document": name, "agent": agent, "client_id": client_id, "ttl": ttl})


async def delete_presence(request: Request) -> Response:
    name = request.path_params["name"]
    agent = request.path_params["agent"]
    if not agents_of(request).remove(name, agent):
        return error_response(404, "not_present", f"agent {agent!r} is not present in {name!r}")
    return JSONResponse({"document": name, "agent": agent, "removed": True})
