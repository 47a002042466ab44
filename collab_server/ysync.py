"""The y-sync protocol steps of one participant, the same for every transport.

A y-websocket connection, a Hocuspocus document channel and a gRPC ``Sync`` stream each
read their own framing, then hand each y-protocols message here: a sync step 1 is answered
with step 2; a step 2 or an update is applied, or refused for a read-only participant (told
once, audited, not disconnected); awareness is applied, each refused entry told once per
reason; a query for awareness is answered with the room's presence. What goes wrong while
handling a message is closed with one code, whatever the transport (`close_code_for`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pycrdt

import crdt_core
from awareness.registry import Refusal
from collab_server.closecodes import CloseCode
from collab_server.document_access import DocumentAccess
from collab_server.documents import DocumentUnavailable, HubStopping, TooManyConnections
from collab_server.pending import PendingLimitExceeded
from collab_server.room import DocumentTooLarge, JoinWaitExpired, Peer, Room
from collab_server.websocket import CloseRequest
from collab_server.ydoc import apply_update as apply_untrusted
from crdt_core import MessageKind, ProtocolError
from persistence.group_commit import BacklogFull, DocumentSetAside

logger = logging.getLogger(__name__)

# How many different presence refusals one participant is told about (then it is not told again).
MAX_PRESENCE_REASONS_TOLD = 8
READ_ONLY_REASON = "read-only: this token may not edit the document"
_EMPTY_UPDATE = b"\x00\x00"

# An error while handling a client's message, and the close code that ends the participant.
# Anything else is a hub bug: 1011, logged with its traceback.
_CLOSE_CODES: tuple[tuple[type[Exception] | tuple[type[Exception], ...], CloseCode], ...] = (
    (ProtocolError, CloseCode.INVALID_PAYLOAD),
    (DocumentSetAside, CloseCode.DOCUMENT_SET_ASIDE),
    ((BacklogFull, JoinWaitExpired), CloseCode.TRY_AGAIN_LATER),
    (DocumentTooLarge, CloseCode.DOCUMENT_TOO_LARGE),
    (PendingLimitExceeded, CloseCode.DEPENDENCIES_MISSING),
)


def close_code_for(exc: Exception) -> CloseCode | None:
    """The close code for an error raised while handling a message; None for a hub bug."""
    for kinds, code in _CLOSE_CODES:
        if isinstance(exc, kinds):
            return code
    return None


def join_refusal(exc: HubStopping | TooManyConnections | DocumentUnavailable) -> CloseRequest:
    """Why a participant may not join its document now, as a close."""
    if isinstance(exc, HubStopping):
        return CloseRequest(CloseCode.SERVICE_RESTART)
    if isinstance(exc, TooManyConnections):
        return CloseRequest(CloseCode.TOO_MANY_CONNECTIONS)
    return CloseRequest(exc.close_code, str(exc))  # 4410 when deleted


class AuditTrail(Protocol):
    def record(self, action: str, subject: str | None, document: str | None, detail: str = "") -> None: ...


@dataclass(frozen=True, slots=True)
class Dialect:
    """How a transport words what the sync steps tell its client."""

    denied: Callable[[str], bytes]  # the frame refusing something, with the reason shown
    # Hocuspocus acknowledges every write (SyncStatus); its answer must be true, so a
    # read-only participant's write that adds nothing counts as applied, not refused.
    write_status: Callable[[bool], bytes] | None = None
    ask_back: bool = False  # answer a step 1 with step 2, then ask with the hub's own step 1
    label: str = "y-websocket"  # in the audit trail


Y_WEBSOCKET = Dialect(crdt_core.frame_auth_denied)


class SyncSteps:
    """One participant's y-sync: what its access allows, and what it was already told."""

    __slots__ = ("_audit", "_dialect", "_peer", "_reasons_told", "access", "refused_writes")

    def __init__(self, peer: Peer, access: DocumentAccess, audit: AuditTrail, dialect: Dialect) -> None:
        self._peer = peer
        self._audit = audit
        self._dialect = dialect
        self.access = access  # replaced when a Hocuspocus client refreshes its token
        self.refused_writes = 0
        self._reasons_told: set[str] | None = None  # made at the first refusal (an empty set is 216 bytes)

    async def handle(self, room: Room, message: crdt_core.Message) -> None:
        step1 = self.handle_now(room, message)
        if step1 is not None:
            await self.answer(room, step1)

    def handle_now(self, room: Room, message: crdt_core.Message) -> crdt_core.Message | None:
        """Handle ``message`` at once; a sync step 1 (answering it awaits the store) is returned."""
        kind = message.kind
        if kind is MessageKind.SYNC_UPDATE or kind is MessageKind.SYNC_STEP2:
            self._write(room, message.payload)
        elif kind is MessageKind.AWARENESS:
            for refusal in room.apply_presence(message.payload, self._peer, self.access.identity):
                self._refuse_presence(room, refusal)
        elif kind is MessageKind.SYNC_STEP1:
            return message
        elif kind is MessageKind.QUERY_AWARENESS:
            self.send_presence(room)
        else:  # AUTH: only the hub sends these; a client's is ignored.
            logger.debug("%s on %r sent an auth message; ignored", self._peer.peer_id, room.name)
        return None

    async def answer(self, room: Room, step1: crdt_core.Message) -> None:
        self._peer.deliver(await room.sync_step2_for(step1.payload), None)
        if self._dialect.ask_back:
            self._peer.deliver(crdt_core.frame_sync_step1(room.state_vector()), None)

    def send_presence(self, room: Room) -> None:
        presence = room.presence_snapshot_frame()
        if presence is not None:
            self._peer.deliver_presence(presence)

    def _write(self, room: Room, update: bytes) -> None:
        status = self._dialect.write_status
        if not self.access.read_only:
            room.apply_update(update, self._peer, self.access.actor)
            if status is not None:
                self._peer.deliver(status(True), None)
            return
        refused = status is None or adds_anything(room, update)
        if status is not None:
            self._peer.deliver(status(not refused), None)
        if refused:
            self.refused_writes += 1
            if self.refused_writes == 1:
                self._peer.deliver(self._dialect.denied(READ_ONLY_REASON), None)
                detail = f"write with a read-only role ({self._dialect.label})"
                self._audit.record("denied", self.access.principal.subject, room.name, detail)

    def _refuse_presence(self, room: Room, refusal: Refusal) -> None:
        """Refused presence is not stored or sent; the client is told once per reason."""
        told = self._reasons_told
        if told is None:
            told = self._reasons_told = set()
        if refusal.reason in told or len(told) >= MAX_PRESENCE_REASONS_TOLD:
            return
        told.add(refusal.reason)
        logger.info(
            "%s on %r: presence of client %d refused: %s",
            self._peer.peer_id,
            room.name,
            refusal.client_id,
            refusal.reason,
        )
        self._peer.deliver(self._dialect.denied(f"presence refused: {refusal.reason}"), None)


def adds_anything(room: Room, update: bytes) -> bool:
    """Whether ``update`` would change the room's document."""
    missing = crdt_core.diff_update(update, room.state_vector())
    if missing == _EMPTY_UPDATE:
        return False
    if missing[:1] != b"\x00":
        return True  # structs the document does not have
    # Only deletes: try them on a copy (rare: a viewer's step 2 carries the deletes it saw).
    probe: pycrdt.Doc[Any] = pycrdt.Doc()
    probe.apply_update(room.doc.get_update())
    changes: list[bytes] = []
    subscription = probe.observe(lambda event: changes.append(event.update))
    try:
        apply_untrusted(probe, update)
    finally:
        probe.unobserve(subscription)
    return any(change != _EMPTY_UPDATE for change in changes)
