"""Acknowledged means stored: HTTP writes answer only once their change is committed.

In strict durability an HTTP edit, suggestion, decision or restore is answered after the
store has committed it, so an agent told "200" can forget the request. The wait is bounded
(``http_commit_timeout_seconds``); past it, or when the store is known to be down before
anything is touched, the answer is 503 ``store_unavailable`` and the agent knows to
re-read and retry. In relaxed durability the answer comes right after the change is applied.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from collab_server.api.errors import ApiError
from collab_server.ports import Documents, Durability
from collab_server.room import Room

T = TypeVar("T")


def require_store(durability: Durability) -> None:
    """Refuse a write up front (nothing touched) when the store is known to be failing."""
    if durability.strict and not durability.writes_healthy:
        raise ApiError(
            503,
            "store_unavailable",
            "the store is not accepting writes; nothing was changed, retry later",
        )


async def committed(durability: Durability, document: str) -> None:
    """Wait (bounded) until every change of ``document`` made so far is stored."""
    if not durability.strict:
        return
    try:
        async with asyncio.timeout(durability.commit_timeout_seconds):
            await durability.wait_stored(document)
    except TimeoutError as exc:
        raise ApiError(
            503,
            "store_unavailable",
            f"the change was applied but not stored within {durability.commit_timeout_seconds}s"
            " (the store is failing); it is kept and stored once the store recovers: re-read before retrying",
        ) from exc


async def durable_write(
    documents: Documents, durability: Durability, name: str, change: Callable[[Room], T], *, must_exist: bool
) -> T:
    """One write as every API (HTTP and gRPC) makes it: refused up front when the store is
    failing, 404 when the document must already exist and does not, ``change`` applied in the
    room, and (strict durability) answered once stored."""
    require_store(durability)
    if must_exist and not await documents.exists(name):
        raise ApiError(404, "document_not_found", f"no document named {name!r}")
    async with documents.using(name) as room:
        result = change(room)
        await committed(durability, name)
    return result
