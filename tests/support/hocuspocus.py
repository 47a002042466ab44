"""Drives real Hocuspocus providers (tests/js/hpclient.mjs: @hocuspocus/provider 3.x or 4.x)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from tests.support.jsonlines import DriverClients, DriverError, LineDriver

REPO = Path(__file__).resolve().parents[2]
JS_DIR = REPO / "tests" / "js"


class HocuspocusError(DriverError):
    pass


def node_for(version: int) -> str:
    """Node 20 (on PATH) runs provider 3.x; 4.x needs Node >= 22 (scripts/install_node24.sh)."""
    if version < 4:
        return "node"
    configured = os.environ.get("NOVA_NODE24")
    if configured:
        return configured
    result = subprocess.run(
        [str(REPO / "scripts" / "install_node24.sh")], capture_output=True, text=True, check=True
    )
    return result.stdout.strip().splitlines()[-1]


class HocuspocusClients(DriverClients):
    """One node process holding named sockets and providers (documents) attached to them."""

    def __init__(self, version: int = 3) -> None:
        self.version = version
        self._driver: LineDriver | None = None

    async def __aenter__(self) -> HocuspocusClients:
        if not (JS_DIR / "node_modules" / "@hocuspocus" / "provider").exists():
            raise RuntimeError("tests/js/node_modules is missing: run scripts/setup.sh")
        self._driver = await LineDriver.start(
            JS_DIR / "hpclient.mjs", JS_DIR, HocuspocusError, str(self.version), node=node_for(self.version)
        )
        return self

    async def socket(self, socket: str, url: str) -> None:
        await self.call("socket", socket=socket, url=url)

    async def open(self, client: str, socket: str, name: str, **options: Any) -> int:
        result = await self.call("open", client=client, socket=socket, name=name, **options)
        return int(result["clientID"])

    async def text(self, client: str) -> str:
        return str(await self.call("text", client=client))

    async def status(self, client: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("status", client=client)
        return result
