"""The README's agent example runs against a real hub and does what it says."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from collab_server.client import YClient
from tests.support.hub import HubProcess

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "agent_fixes_typos.py"


async def test_typo_fixing_agent_example(hub: HubProcess) -> None:
    async with YClient(hub.url("notes.md")) as human:
        await human.wait_synced()
        agent = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLE),
            "notes.md",
            "--hub",
            hub.ws,
            "--seconds",
            "20",
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            await human.wait_for(
                lambda c: any(p.get("user", {}).get("kind") == "agent" for p in c.presence.values())
            )
            human.text += "I recieve teh mail"
            await human.wait_for(lambda c: str(c.text) == "I receive the mail", timeout=15)
        finally:
            agent.terminate()
            await agent.wait()
