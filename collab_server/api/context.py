"""Typed access to what the app's lifespan put on the request state (see `AppState`)."""

from __future__ import annotations

from starlette.requests import Request

from collab_server.agent_presence import AgentPresence
from collab_server.archiving import ArchiveService
from collab_server.lifecycle import DocumentLifecycle
from collab_server.ports import Authorizer, Documents, Durability, Health, Revocations, Search
from persistence.base import Store


def documents_of(request: Request) -> Documents:
    documents: Documents = request.state.documents
    return documents


def access_of(request: Request) -> Authorizer:
    access: Authorizer = request.state.access
    return access


def revocations_of(request: Request) -> Revocations:
    revocations: Revocations = request.state.revocations
    return revocations


def health_of(request: Request) -> Health:
    health: Health = request.state.health
    return health


def durability_of(request: Request) -> Durability:
    durability: Durability = request.state.durability
    return durability


def store_of(request: Request) -> Store:
    store: Store = request.state.store
    return store


def search_of(request: Request) -> Search:
    search: Search = request.state.search
    return search


def agents_of(request: Request) -> AgentPresence:
    agents: AgentPresence = request.state.agents
    return agents


def lifecycle_of(request: Request) -> DocumentLifecycle:
    lifecycle: DocumentLifecycle = request.state.lifecycle
    return lifecycle


def archive_of(request: Request) -> ArchiveService | None:
    archive: ArchiveService | None = request.state.archive
    return archive
