"""Acknowledged means stored: HTTP writes answer only once their change is committed.

In strict durability an HTTP edit, suggestion, decision or restore is answered after the
store has committed it, so an agent told "200" can forget the request. The wait is bounded
(``http_commit_timeout_seconds``); past it, or when the store is known to be down before
anything is touched, the answer is 503 ``store_unavailable`` and the agent knows to
re-read and retry. In relaxed durability the answer comes right after the change is applied.
"""

from __future__ import annotations

import asyncio

from collab_server.api.errors import ApiError
from collab_server.ports import Durability


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
