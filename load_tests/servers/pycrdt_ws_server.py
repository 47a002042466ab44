"""pycrdt-websocket served by uvicorn on loopback: the Python peer in the fan-out benchmark.

Serves ``ws://HOST:PORT/<document-name>`` with pycrdt-websocket's ``ASGIServer`` and
answers ``GET /healthz`` with 200 so the runner can wait for it like for the hub.

    python load_tests/servers/pycrdt_ws_server.py --port 8765
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from pycrdt.websocket import ASGIServer, WebsocketServer

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def with_healthz(app: ASGIApp) -> ASGIApp:
    """Answer plain HTTP with 200 on /healthz and 404 elsewhere; pass WebSockets to ``app``."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        status = 200 if scope["path"] == "/healthz" else 404
        body = b"ok" if status == 200 else b"not found"
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": body})

    return wrapped


async def serve(host: str, port: int, ws: str) -> None:
    async with WebsocketServer() as websocket_server:
        app = with_healthz(ASGIServer(websocket_server))
        config = uvicorn.Config(app, host=host, port=port, ws=ws, log_level="warning", lifespan="off")
        await uvicorn.Server(config).serve()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ws", default="auto", help="uvicorn WebSocket implementation (default: auto)")
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.ws))


if __name__ == "__main__":
    main()
