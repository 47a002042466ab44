"""One way to build a Room for the in-process tests (memory store, fake peers, no hub)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pycrdt

from collab_server.metrics import HubMetrics
from collab_server.room import Room
from persistence.group_commit import GroupCommitWriter


def new_room(
    writer: GroupCommitWriter,
    *,
    name: str = "doc",
    strict: bool = False,
    awareness_window_seconds: float = 0.0,
    **options: Any,
) -> Room:
    """A Room as the hub would make it, with the test's writer; ``options`` go to ``Room``."""
    return Room(
        name,
        pycrdt.Doc(skip_gc=True),
        writer=writer,
        node_id="node-test",
        strict=strict,
        awareness_window_seconds=awareness_window_seconds,
        metrics=HubMetrics(),
        on_empty=lambda _room: None,
        **options,
    )


@asynccontextmanager
async def writing(writer: GroupCommitWriter) -> AsyncIterator[GroupCommitWriter]:
    """The writer's loop runs for the block; on the way out it is stopped and awaited."""
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(writer.run())
        try:
            yield writer
        finally:
            writer.stop()
