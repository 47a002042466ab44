"""The README's agent example runs against a real hub and does what it says."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from collab_server.client import YClient
from tests.support.events import new_topic
from tests.support.hub import HubProcess
from tests.support.services import KafkaServer
from tests.support.waiting import eventually

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


FOLLOWER = Path(__file__).resolve().parents[1] / "examples" / "follow_changes.py"


async def test_kafka_following_agent_example(tmp_path: Path, kafka_server: KafkaServer) -> None:
    """examples/follow_changes.py follows a live editing session through Kafka and fixes typos."""
    topic = new_topic()
    hub = HubProcess(tmp_path, events_kafka_brokers=kafka_server.bootstrap, events_kafka_topic=topic).start()
    try:
        async with YClient(hub.url("notes/today.md") + "?actor=ada") as human:
            await human.wait_synced()
            human.text += "Started. "  # the topic exists before the follower subscribes
            await eventually(
                lambda: hub.get("/readyz").json()["events"]["kafka"]["published"] >= 2, 30, "first events out"
            )
            follower = await asyncio.create_subprocess_exec(
                sys.executable,
                str(FOLLOWER),
                "--brokers",
                kafka_server.bootstrap,
                "--topic",
                topic,
                "--hub",
                hub.ws,
                "--documents",
                "notes/*",
                stdout=asyncio.subprocess.PIPE,
            )
            try:
                assert follower.stdout is not None
                banner = await asyncio.wait_for(follower.stdout.readline(), 30)
                assert b"following" in banner
                for word in ("I ", "recieve ", "teh ", "mail"):
                    human.text += word
                    await asyncio.sleep(0.05)  # a typist's pace
                await human.wait_for(lambda c: str(c.text) == "Started. I receive the mail", timeout=30)
            finally:
                follower.terminate()
                await follower.wait()
        activity = hub.get("/api/documents/notes/today.md/activity").json()["activity"]
        assert any(entry["actor"] == "agent:TypoFollower" for entry in activity)
    finally:
        hub.stop()
