"""What the app's lifespan hands to every request and to the gRPC service: `AppState`.

One frozen bundle of narrow ports (`collab_server/ports.py`) and data-lifecycle services,
built once from the hub by `collab_server/app.py`. Handlers read it with `state_of`;
nothing at the edges reaches the hub itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from collab_server.agent_presence import AgentPresence
from collab_server.archiving import ArchiveService
from collab_server.events.publisher import EventPublisher
from collab_server.lifecycle import DocumentLifecycle
from collab_server.metrics import HubMetrics
from collab_server.ports import (
    Authorizer,
    Durability,
    Health,
    LiveDocuments,
    Revocations,
    Search,
    SocketPorts,
)
from collab_server.settings import Settings
from persistence.base import Store

STATE_KEY = "app"  # the lifespan state's one entry (Starlette copies it into each request's scope)


@dataclass(frozen=True, slots=True)
class AppState:
    settings: Settings
    metrics: HubMetrics
    documents: LiveDocuments
    access: Authorizer
    durability: Durability
    revocations: Revocations
    health: Health
    store: Store
    search: Search
    agents: AgentPresence
    lifecycle: DocumentLifecycle
    archive: ArchiveService | None
    events: EventPublisher | None
    sockets: SocketPorts


def state_of(request: Request) -> AppState:
    state: AppState = getattr(request.state, STATE_KEY)
    return state
