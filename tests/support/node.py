"""Drives real Yjs clients (tests/js/yclient.mjs: yjs + y-websocket under node) from async tests."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from pathlib import Path
from types import TracebackType
from typing import Any

JS_DIR = Path(__file__).resolve().parents[1] / "js"


class NodeError(Exception):
    pass


class NodeClients:
    """One node process holding any number of named Yjs clients."""

    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> NodeClients:
        if not (JS_DIR / "node_modules" / "yjs").exists():
            raise RuntimeError("tests/js/node_modules is missing: run scripts/setup.sh")
        self._process = await asyncio.create_subprocess_exec(
            "node",
            str(JS_DIR / "yclient.mjs"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=JS_DIR,
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.close()
        try:
            await asyncio.wait_for(self._process.wait(), 10)
        except TimeoutError:
            self._process.kill()
            await self._process.wait()
        if self._reader is not None:
            self._reader.cancel()

    async def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        async for line in self._process.stdout:
            reply = json.loads(line)
            future = self._waiting.pop(reply["id"], None)
            if future is None or future.done():
                continue
            if reply["ok"]:
                future.set_result(reply["result"])
            else:
                future.set_exception(NodeError(reply["error"]))
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(NodeError("node process exited"))

    async def call(self, op: str, timeout: float = 30.0, **args: Any) -> Any:
        assert self._process is not None and self._process.stdin is not None
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        self._process.stdin.write((json.dumps({"id": request_id, "op": op, **args}) + "\n").encode())
        await self._process.stdin.drain()
        return await asyncio.wait_for(future, timeout)

    async def open(self, client: str, ws_base: str, room: str, **params: str) -> int:
        result = await self.call("open", client=client, url=ws_base, room=room, params=params)
        return int(result["clientID"])

    async def text(self, client: str) -> str:
        return str(await self.call("text", client=client))

    async def state(self, client: str) -> bytes:
        return base64.b64decode(await self.call("state", client=client))
