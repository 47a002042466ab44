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
