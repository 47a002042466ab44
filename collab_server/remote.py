"""What other hub nodes tell this one (the BrokerListener): updates, presence, state requests,
nodes gone, recovery after a broker outage, and revocations."""

from __future__ import annotations

import logging

from collab_server.broker import Broker, RemotePresence, RemoteUpdate, StateRequest
from collab_server.documents import DocumentRegistry
from collab_server.sessions import SessionRegistry
from collab_server.ydoc import missing_since
from crdt_core import ProtocolError

logger = logging.getLogger(__name__)

EMPTY_UPDATES = (b"\x00\x00", b"")


class RemoteListener:
    def __init__(self, documents: DocumentRegistry, sessions: SessionRegistry, broker: Broker) -> None:
        self._documents = documents
        self._sessions = sessions
        self._broker = broker

    def on_remote_update(self, message: RemoteUpdate) -> None:
        self._documents.route_remote(message)

    def on_remote_presence(self, message: RemotePresence) -> None:
        self._documents.route_remote(message)

    def on_state_request(self, message: StateRequest) -> None:
        room = self._documents.rooms.get(message.document)
        if room is None:
            return
        try:
            missing = missing_since(room.doc, message.state_vector)
        except ProtocolError as exc:
            logger.warning("document %r: bad state request from %s: %s", room.name, message.node, exc)
            return
        if missing not in EMPTY_UPDATES:
            self._broker.publish_update(room.name, missing, repair=True)

    def on_node_gone(self, node: str) -> None:
        for room in self._documents.rooms.values():
            room.remove_node(node)

    def on_broker_recovered(self) -> None:
        for room in self._documents.rooms.values():
            self._broker.request_state(room.name, room.state_vector())
            # Also offer everything this node holds: the others may have missed it.
            self._broker.publish_update(room.name, room.doc.get_update(), repair=True)

    def on_revoked(self, token_id: str) -> None:
        self._sessions.on_revoked(token_id)
