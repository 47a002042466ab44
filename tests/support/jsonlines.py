"""Request/reply over a child process's stdin/stdout, one JSON object per line, matched by "id".

The node drivers of the tests (Yjs clients, the browser, the VS Code extension) all speak it:
    request {"id": 1, "op": "...", ...}  ->  reply {"id": 1, "ok": true, "result": ...}
                                               or {"id": 1, "ok": false, "error": "..."}
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from pathlib import Path
from types import TracebackType
from typing import Any


class DriverError(Exception):
    """The driver answered with an error, or exited before answering."""


class LineDriver:
    def __init__(self, process: asyncio.subprocess.Process, error: type[Exception] = DriverError) -> None:
        self.process = process
        self._error = error
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls,
        script: Path,
        cwd: Path,
        error: type[Exception] = DriverError,
        *args: str,
        node: str = "node",
    ) -> LineDriver:
        process = await asyncio.create_subprocess_exec(
            node, str(script), *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=cwd
        )
        return cls(process, error)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            reply = json.loads(line)
            future = self._waiting.pop(reply["id"], None)
            if future is None or future.done():
                continue
            if reply["ok"]:
                future.set_result(reply["result"])
            else:
                future.set_exception(self._error(reply["error"]))
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(self._error("driver exited"))

    async def call(self, op: str, timeout: float = 30.0, **args: Any) -> Any:
        assert self.process.stdin is not None
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        self.process.stdin.write((json.dumps({"id": request_id, "op": op, **args}) + "\n").encode())
        await self.process.stdin.drain()
        return await asyncio.wait_for(future, timeout)

    async def close(self, timeout: float = 10.0) -> None:
        """Close stdin (the driver exits), kill it if it does not, and stop reading."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


class DriverClients:
    """The async-with shell of a node process holding named clients: ``__aenter__`` starts
    ``self._driver``; leaving closes it; ``call`` sends one operation."""

    _driver: LineDriver | None = None

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._driver is not None
        await self._driver.close()

    async def call(self, op: str, timeout: float = 30.0, **args: Any) -> Any:
        assert self._driver is not None
        return await self._driver.call(op, timeout, **args)

    async def edit_concurrently(self, a: str, b: str, rounds: int = 30) -> None:
        """Clients ``a`` and ``b`` insert and delete at overlapping places without waiting for
        each other (the same script for every Yjs client kind)."""
        for i in range(rounds):
            await self.call("insert", client=a, index=i % 5, text="A")
            await self.call("insert", client=b, index=(i * 3) % 7, text="b")
            if i % 4 == 0:
                await self.call("delete", client=a, index=1, length=1)
                await self.call("delete", client=b, index=3, length=2)
