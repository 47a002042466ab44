"""Fake peers and helpers for the in-process tests: no sockets, no subprocess."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pycrdt

import crdt_core
from collab_server.closecodes import CloseCode
from crdt_core import MessageKind

TEXT = "content"


class FakePeer:
    """A room member that records what the room sends it and how it was asked to close."""

    def __init__(self, peer_id: str) -> None:
        self.peer_id = peer_id
        self.frames: list[bytes] = []
        self.presence: list[bytes] = []
        self.closed: tuple[CloseCode, str | None] | None = None

    def deliver(self, frame: bytes, update: bytes | None) -> None:
        self.frames.append(frame)

    def deliver_presence(self, frame: bytes) -> None:
        self.presence.append(frame)

    def request_close(self, code: CloseCode, detail: str | None = None) -> None:
        self.closed = (code, detail)

    def text(self) -> str:
        """The text a client would have after applying every update frame it received."""
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        for frame in self.frames:
            message = crdt_core.parse_message(frame)
            if message.kind in (MessageKind.SYNC_UPDATE, MessageKind.SYNC_STEP2):
                doc.apply_update(message.payload)
        return str(doc.get(TEXT, type=pycrdt.Text))


def typed(pieces: Sequence[str], doc: pycrdt.Doc[Any] | None = None) -> tuple[list[bytes], pycrdt.Doc[Any]]:
    """Real Yjs updates, one transaction (one update) per piece appended to the text, and the doc."""
    doc = doc if doc is not None else pycrdt.Doc()
    text = doc.get(TEXT, type=pycrdt.Text)
    updates: list[bytes] = []
    subscription = doc.observe(lambda event: updates.append(event.update))
    for piece in pieces:
        text += piece
    doc.unobserve(subscription)
    return updates, doc


def typing(*pieces: str) -> list[bytes]:
    """Real Yjs updates of one client typing ``pieces`` one after the other."""
    return typed(pieces)[0]
