"""HTTP endpoints of the host controls (collab_server/session_lobby.py).

Host only (admin on ``nova-session/<id>``): open the lobby, list and answer join requests,
list and remove guests, choose the terminal's writer, end the session. Anyone: ask to join
and read the answer with the request's key. An approved guest: fetch its terminal token.
Every refusal is the JSON error shape (a guest token asking for a host action: 403).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collab_server.api.access import Access, DocumentFrom, caller, guard
from collab_server.api.bodies import optional_string, query_text, read_json_object
from collab_server.api.context import state_of
from collab_server.api.errors import ApiError
from collab_server.session_lobby import MAX_NAME_CHARS, GuestRole, LobbyError, SessionLobby

SIGNED_IN = Access(None, DocumentFrom.NONE)
ANYONE = Access(None, DocumentFrom.NONE, token_optional=True)
BASE = "/api/sessions/{session}"


def lobby_of(request: Request) -> SessionLobby:
    return state_of(request).lobby


def _session(request: Request) -> str:
    return SessionLobby.check_id(request.path_params["session"])


def _answered(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Lobby refusals as the API's JSON errors."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except LobbyError as exc:
            raise ApiError(exc.status, exc.code, exc.message) from exc

    wrapped.__name__ = handler.__name__
    return wrapped


async def open_session(request: Request) -> Response:
    shared = lobby_of(request).open(caller(request), _session(request))
    return JSONResponse({"session": shared.id, "host": shared.host})


async def list_requests(request: Request) -> Response:
    pending = lobby_of(request).pending(caller(request), _session(request))
    return JSONResponse({"requests": [{"id": r.id, "name": r.name, "at": r.at} for r in pending]})


async def ask(request: Request) -> Response:
    data = await read_json_object(request)
    name = optional_string(data, "name", MAX_NAME_CHARS) or "guest"
    asked = lobby_of(request).ask(_session(request), name)
    if asked is None:
        return JSONResponse({"status": "open"})  # no auth on this hub: join without a token
    return JSONResponse({"request": asked.id, "key": asked.key, "status": asked.status}, status_code=202)


async def answer(request: Request) -> Response:
    key = query_text(request, "key", "", 64)
    asked = lobby_of(request).answer(_session(request), request.path_params["request"], key)
    body: dict[str, object] = {"status": asked.status}
    if asked.status == "approved":
        body |= {"token": asked.token, "participant": asked.participant}
    return JSONResponse(body)


async def approve(request: Request) -> Response:
    data = await read_json_object(request)
    role = optional_string(data, "role", 8) or "read"
    if role not in ("read", "write"):
        raise ApiError(400, "invalid_request", "'role' is 'read' or 'write'")
    chosen: GuestRole = "write" if role == "write" else "read"
    participant = lobby_of(request).approve(
        caller(request), _session(request), request.path_params["request"], chosen
    )
    return JSONResponse({"participant": participant.id, "name": participant.name, "role": participant.role})


async def refuse(request: Request) -> Response:
    lobby_of(request).refuse(caller(request), _session(request), request.path_params["request"])
    return JSONResponse({"status": "refused"})


async def list_participants(request: Request) -> Response:
    shared = lobby_of(request).participants(caller(request), _session(request))
    return JSONResponse(
        {
            "participants": [
                {"id": p.id, "name": p.name, "role": p.role, "terminal": shared.terminal_writer == p.id}
                for p in shared.participants.values()
            ]
        }
    )


async def remove(request: Request) -> Response:
    participant = request.path_params["participant"]
    closed = await lobby_of(request).remove(caller(request), _session(request), participant)
    return JSONResponse({"removed": participant, "closed_here": closed})


async def terminal_writer(request: Request) -> Response:
    data = await read_json_object(request)
    participant = optional_string(data, "participant", 64)
    await lobby_of(request).set_terminal_writer(caller(request), _session(request), participant)
    return JSONResponse({"writer": participant})


async def terminal_token(request: Request) -> Response:
    token = lobby_of(request).terminal_token(caller(request), _session(request))
    return JSONResponse({"token": token})


async def end(request: Request) -> Response:
    closed = await lobby_of(request).end(caller(request), _session(request))
    return JSONResponse({"ended": _session(request), "closed_here": closed})


def session_routes() -> list[Route]:
    def route(
        path: str, access: Access, handler: Callable[[Request], Awaitable[Response]], method: str
    ) -> Route:
        return Route(BASE + path, guard(access, _answered(handler)), methods=[method])

    return [
        route("/open", SIGNED_IN, open_session, "POST"),
        route("/requests", SIGNED_IN, list_requests, "GET"),
        route("/requests", ANYONE, ask, "POST"),
        route("/requests/{request}", ANYONE, answer, "GET"),
        route("/requests/{request}/approve", SIGNED_IN, approve, "POST"),
        route("/requests/{request}/refuse", SIGNED_IN, refuse, "POST"),
        route("/participants", SIGNED_IN, list_participants, "GET"),
        route("/participants/{participant}", SIGNED_IN, remove, "DELETE"),
        route("/terminal/writer", SIGNED_IN, terminal_writer, "PUT"),
        route("/terminal/token", SIGNED_IN, terminal_token, "POST"),
        route("/end", SIGNED_IN, end, "POST"),
    ]
