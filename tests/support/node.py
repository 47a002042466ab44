"""Drives real Yjs clients (tests/js/yclient.mjs: yjs + y-websocket under node) from async tests."""

from __future__ import annotations

import base64
from pathlib import Path

from tests.support.jsonlines import DriverClients, DriverError, LineDriver

JS_DIR = Path(__file__).resolve().parents[1] / "js"


class NodeError(DriverError):
    pass


class NodeClients(DriverClients):
    """One node process holding any number of named Yjs clients."""

    def __init__(self) -> None:
        self._driver: LineDriver | None = None

    async def __aenter__(self) -> NodeClients:
        if not (JS_DIR / "node_modules" / "yjs").exists():
            raise RuntimeError("tests/js/node_modules is missing: run scripts/setup.sh")
        self._driver = await LineDriver.start(JS_DIR / "yclient.mjs", JS_DIR, NodeError)
        return self

    async def open(self, client: str, ws_base: str, room: str, **params: str) -> int:
        result = await self.call("open", client=client, url=ws_base, room=room, params=params)
        return int(result["clientID"])

    async def text(self, client: str) -> str:
        return str(await self.call("text", client=client))

    async def state(self, client: str) -> bytes:
        return base64.b64decode(await self.call("state", client=client))
