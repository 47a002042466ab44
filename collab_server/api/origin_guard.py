"""ASGI middleware: HTTP requests from a browser origin outside ``--allowed-origins`` get 403.

Browsers send ``Origin`` on cross-origin requests and on every POST/PUT/DELETE; CORS headers
alone only stop a foreign page from *reading* an answer, not the write itself. Same policy as
the WebSocket (collab_server/origins.py).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from collab_server.api.errors import error_response
from collab_server.origins import OriginPolicy


class OriginGuard:
    def __init__(self, app: ASGIApp, policy: OriginPolicy) -> None:
        self._app = app
        self._policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._policy.restricted:
            headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
            origin = headers.get("origin")
            if origin is not None and not self._policy.allows(origin, headers.get("host")):
                response = error_response(
                    403, "origin_not_allowed", f"requests from origin {origin[:200]!r} are not allowed"
                )
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)
