"""The Nova agent SDK: an AI process joins a document as a real Yjs peer.

    async with AgentSession("ws://127.0.0.1:1234", "notes.md", name="Summarizer", model="small-1") as agent:
        print(agent.text)
        agent.replace_all(agent.text.replace("teh", "the"))   # minimal diff: others' edits survive
        agent.set_cursor(0)
        await agent.wait_for_change()

Positions are Python string indices (code points). The session speaks the same protocol as
every other client, appears in presence as ``kind: "agent"``, and its edits are attributed
to ``agent:<name>`` in the document's history.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any
from urllib.parse import quote

import pycrdt

from collab_server import textops
from collab_server.client import TEXT_FIELD, YClient


class AgentSession:
    def __init__(
        self,
        hub_url: str,
        document: str,
        *,
        name: str,
        model: str | None = None,
        color: str = "#8b5cf6",
        field: str = TEXT_FIELD,
        token: str | None = None,
    ) -> None:
        self.name = name
        self.actor = f"agent:{name}"
        self.field = field
        self._user: dict[str, Any] = {"name": name, "color": color, "kind": "agent"}
        if model:
            self._user["model"] = model
        url = f"{hub_url.rstrip('/')}/{quote(document)}?actor={quote(self.actor)}"
        if token:  # with auth on, the hub attributes edits to the token's subject instead
            url += f"&token={quote(token)}"
        self._client = YClient(url, presence={"user": self._user})
        self._changed = asyncio.Event()
        self._subscription: pycrdt.Subscription | None = None

    async def __aenter__(self) -> AgentSession:
        await self._client.__aenter__()
        await self._client.wait_synced()
        self._observed = self._text_type
        self._subscription = self._observed.observe(lambda _event: self._changed.set())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._subscription is not None:
            self._observed.unobserve(self._subscription)
        self._client.set_presence(None)
        await asyncio.sleep(0)  # let the leave message go out before the socket closes
        await self._client.__aexit__(exc_type, exc, tb)

    @property
    def _text_type(self) -> pycrdt.Text:
        text: pycrdt.Text = self._client.doc.get(self.field, type=pycrdt.Text)
        return text

    @property
    def text(self) -> str:
        return str(self._text_type)

    @property
    def presence(self) -> dict[int, dict[str, Any]]:
        """Everyone else's presence (client id -> state)."""
        return {cid: state for cid, state in self._client.presence.items() if cid != self._client.client_id}

    def insert(self, index: int, value: str) -> None:
        self._check(index, index)
        with self._client.doc.transaction():
            textops.insert(self._text_type, self.text, index, value)

    def delete(self, start: int, end: int) -> None:
        self._check(start, end)
        with self._client.doc.transaction():
            textops.delete(self._text_type, self.text, start, end)

    def replace(self, start: int, end: int, value: str) -> None:
        self._check(start, end)
        current = self.text
        with self._client.doc.transaction():
            textops.delete(self._text_type, current, start, end)
            textops.insert(self._text_type, current, start, value)

    def replace_all(self, new_text: str) -> int:
        """Make the text equal ``new_text`` with minimal edits; returns how many were needed."""
        with self._client.doc.transaction():
            return textops.replace_all(self._text_type, new_text)

    def set_cursor(self, index: int, length: int = 0) -> None:
        """Show where the agent works: presence field ``nova`` = {index, length} (code points)."""
        self._check(index, index + length)
        self._client.set_presence({"user": self._user, "nova": {"index": index, "length": length}})

    async def wait_for_change(self, timeout: float = 30.0) -> str:
        """Wait until someone (or this agent) changes the text; returns the new text."""
        self._changed.clear()
        await asyncio.wait_for(self._changed.wait(), timeout)
        return self.text

    async def wait_until(self, predicate: Any, timeout: float = 30.0) -> str:
        await self._client.wait_for(lambda client: bool(predicate(self.text)), timeout)
        return self.text

    def _check(self, start: int, end: int) -> None:
        if not 0 <= start <= end <= len(self.text):
            raise IndexError(f"range {start}..{end} outside the text (length {len(self.text)})")
