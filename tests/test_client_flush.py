"""The Python client sends what it has queued before it closes: an edit made just before
leaving ``async with YClient(...)`` reaches the hub and its store (README, YClient example)."""

from __future__ import annotations

from collab_server.client import YClient
from tests.support.hub import HubProcess
from tests.support.waiting import eventually


async def test_edits_made_just_before_leaving_the_block_are_stored(hub: HubProcess) -> None:
    expected = ""
    for round_number in range(5):
        async with YClient(hub.url("flushed")) as client:
            await client.wait_synced()
            for line in range(20):
                client.text += f"{round_number}.{line} "
            expected = str(client.text)
        # Nothing waited for the sends inside the block: leaving it flushed them.
        await eventually(
            lambda want=expected: hub.text("flushed") == want, what=f"round {round_number} stored"
        )
    hub.stop()
    hub.start()
    assert hub.text("flushed") == expected
