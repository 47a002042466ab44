"""The ``nova.collab.v1.Collab`` service: the hub's documents, rooms, store and auth over gRPC.

Every call goes through the same code as its HTTP twin (rebasing, suggestions, presence,
history) and fails with the HTTP API's error code as the detail's reason.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeAlias, TypeVar

import grpc
import pycrdt
from google.protobuf.message import Message

from awareness.identity import Identity
from collab_server.agent_presence import MAX_TTL_SECONDS, PresenceRefused
from collab_server.api import edits as http_edits
from collab_server.api import history as http_history
from collab_server.api import search as http_search
from collab_server.api import suggestions as http_suggestions
from collab_server.api.context import AppState
from collab_server.api.durability import durable_write, require_store
from collab_server.api.history import _text_of as text_of_version
from collab_server.api.history import restore_text
from collab_server.api.presence import DEFAULT_TTL_SECONDS, MAX_TEXT_CHARS, InvalidPresence, presence_state
from collab_server.auth import Role
from collab_server.document_access import may_read
from collab_server.outbox import OutboxLimits
from collab_server.rebase import version_token
from collab_server.room import Room
from collab_server.rpc import collab_pb2 as pb
from collab_server.rpc import collab_pb2_grpc
from collab_server.rpc.access import CallGuard, document_name
from collab_server.rpc.errors import RpcFailure, abort, invalid, translate
from collab_server.rpc.metrics import CallOutcome, GrpcMetrics
from collab_server.rpc.streams import SyncSession, subscribe
from persistence.index.base import EmptyQuery, IndexUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")
Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]

DEFAULT_FIELD = "content"
MAX_FIELDS = 64  # API contract: root fields one GetDocument names (a request bound, not a tuning knob)


def edit_body(request: pb.EditRequest) -> dict[str, Any]:
    """The request as the HTTP edit API's JSON body, so both go through one parser."""
    body: dict[str, Any] = {}
    if request.version:
        body["version"] = request.version
    if request.field:
        body["field"] = request.field
    if request.HasField("text"):
        body["text"] = request.text
        return body
    edits: list[dict[str, Any]] = []
    for edit in request.edits:
        kind = edit.WhichOneof("edit")
        if kind == "range":
            edits.append({"start": edit.range.start, "end": edit.range.end, "text": edit.range.text})
        elif kind == "find":
            edits.append({"find": edit.find.find, "replace": edit.find.replace})
        else:
            raise invalid("each edit needs 'range' or 'find'", "invalid_edit")
    body["edits"] = edits
    return body


class Listing(Protocol):
    """A request for a document's newest rows."""

    @property
    def document(self) -> str: ...

    @property
    def limit(self) -> int: ...


M = TypeVar("M", bound=Message)
R = TypeVar("R")


def _row(message: type[M], row: object) -> M:
    """A store row as the message with the same field names (a missing value: the default)."""
    values = {field.name: getattr(row, field.name) for field in message.DESCRIPTOR.fields}
    return message(**{key: value for key, value in values.items() if value is not None})


def _limit(raw: int, default: int, most: int) -> int:
    if raw == 0:
        return default
    if raw > most:
        raise invalid(f"'limit' must be at most {most}", "invalid_limit")
    return raw


class CollabService(collab_pb2_grpc.CollabServicer):
    def __init__(self, state: AppState, metrics: GrpcMetrics) -> None:
        self._state = state
        self._durability = state.durability
        self._search_service = state.search
        self._guard = CallGuard(state.access)
        self._metrics = metrics
        settings = state.settings
        self._limits = OutboxLimits.of(settings)

    # -- the frame every call runs in ---------------------------------------------------

    async def _unary(self, method: str, context: Context, work: Awaitable[T]) -> T:
        with self._metrics.call(method) as outcome:
            try:
                return await work
            except Exception as exc:
                await self._fail(context, exc, outcome)
                raise

    async def _stream(self, method: str, context: Context, events: AsyncIterator[T]) -> AsyncIterator[T]:
        with self._metrics.call(method, stream=True) as outcome:
            try:
                async for event in events:
                    yield event
            except Exception as exc:
                await self._fail(context, exc, outcome)
                raise

    async def _fail(self, context: Context, exc: Exception, outcome: CallOutcome) -> None:
        """Answer ``exc`` as a status with details (raises the abort)."""
        if isinstance(exc, grpc.aio.AbortError):
            return
        failure = translate(exc)
        if failure is None:
            logger.exception("grpc: unexpected error")
            failure = RpcFailure(500, "internal_error", "unexpected error; see the hub's log")
        outcome.code = failure.code.name
        await abort(context, failure)

    async def _require_existing(self, name: str) -> None:
        if not await self._state.documents.exists(name):
            raise RpcFailure(404, "document_not_found", f"no document named {name!r}")

    # -- documents ------------------------------------------------------------------------

    async def GetDocument(self, request: pb.GetDocumentRequest, context: Context) -> pb.Document:
        return await self._unary("GetDocument", context, self._get_document(request, context))

    async def _get_document(self, request: pb.GetDocumentRequest, context: Context) -> pb.Document:
        name = document_name(request.document)
        self._guard.require(context, name, Role.READ)
        fields = list(request.fields) or [DEFAULT_FIELD]
        if len(fields) > MAX_FIELDS or not all(fields):
            raise invalid(f"'fields': 1-{MAX_FIELDS} non-empty names")
        await self._require_existing(name)
        async with self._state.documents.using(name) as room:
            texts = {field: str(room.doc.get(field, type=pycrdt.Text)) for field in fields}
            return pb.Document(
                document=name, texts=texts, state=room.doc.get_update(), version=version_token(room.doc)
            )

    async def ListDocuments(
        self, request: pb.ListDocumentsRequest, context: Context
    ) -> pb.ListDocumentsResponse:
        return await self._unary("ListDocuments", context, self._list_documents(context))

    async def _list_documents(self, context: Context) -> pb.ListDocumentsResponse:
        principal = self._guard.principal(context)
        summaries = [
            pb.DocumentSummary(
                document=s.name,
                loaded=s.loaded,
                connections=s.connections,
                presence=s.presence,
                updated_at=s.updated_at,
            )
            for s in await self._state.documents.summaries()
            if may_read(principal, s.name)
        ]
        return pb.ListDocumentsResponse(documents=summaries)

    # -- edits and suggestions -----------------------------------------------------------

    async def Edit(self, request: pb.EditRequest, context: Context) -> pb.EditResponse:
        return await self._unary("Edit", context, self._edit(request, context))

    async def _edit(self, request: pb.EditRequest, context: Context) -> pb.EditResponse:
        name, result = await self._change(request, context, http_edits.edit_in_room)
        return pb.EditResponse(
            document=name,
            version=result["version"],
            text=result["text"],
            applied=result["applied"],
            changed=result["changed"],
        )

    async def Suggest(self, request: pb.EditRequest, context: Context) -> pb.SuggestResponse:
        return await self._unary("Suggest", context, self._suggest(request, context))

    async def _suggest(self, request: pb.EditRequest, context: Context) -> pb.SuggestResponse:
        name, result = await self._change(request, context, http_suggestions.suggest_in_room)
        record = result["suggestion"]
        return pb.SuggestResponse(
            document=name,
            suggestion=pb.Suggestion(
                id=record["id"],
                author=record["author"],
                version=record["version"],
                field=record["field"],
                edits=[pb.RangeEdit(**edit) for edit in record["edits"]],
                status=record["status"],
                created_at=record["created_at"],
            ),
        )

    async def _change(
        self, request: pb.EditRequest, context: Context, change: Callable[[Room, dict[str, Any], str], T]
    ) -> tuple[str, T]:
        """An edit request through the HTTP API's parser and its durable write: refused before
        anything is touched when the store fails, and (strict durability) answered once stored
        (bounded; the call's deadline also applies)."""
        name = document_name(request.document)
        principal = self._guard.require(context, name, Role.WRITE)
        actor = self._guard.actor(principal, request.actor, "agent:anonymous")
        body = edit_body(request)
        result = await durable_write(
            self._state.documents,
            self._durability,
            name,
            lambda room: change(room, body, actor),
            must_exist=bool(request.version),
        )
        return name, result

    # -- streams --------------------------------------------------------------------------

    async def Subscribe(
        self, request: pb.SubscribeRequest, context: Context
    ) -> AsyncIterator[pb.DocumentEvent]:
        # grpc.aio serves a server stream from an async generator function (not one returned).
        async for event in self._stream("Subscribe", context, self._subscribe(request, context)):
            yield event

    async def _subscribe(
        self, request: pb.SubscribeRequest, context: Context
    ) -> AsyncIterator[pb.DocumentEvent]:
        self._guard.require(context, document_name(request.document), Role.READ)
        async for event in subscribe(self._state, request, self._limits):
            yield event

    async def Sync(self, request_iterator: AsyncIterator[pb.SyncMessage], context: Context) -> None:
        with self._metrics.call("Sync", stream=True) as outcome:
            try:
                await SyncSession(self._state, self._guard, context, self._limits).run(request_iterator)
            except Exception as exc:
                await self._fail(context, exc, outcome)
                raise

    # -- presence and search --------------------------------------------------------------

    async def SetPresence(self, request: pb.SetPresenceRequest, context: Context) -> pb.SetPresenceResponse:
        return await self._unary("SetPresence", context, self._set_presence(request, context))

    async def _set_presence(self, request: pb.SetPresenceRequest, context: Context) -> pb.SetPresenceResponse:
        name = document_name(request.document)
        principal = self._guard.require(context, name, Role.WRITE)
        if not request.agent or len(request.agent) > MAX_TEXT_CHARS:
            raise invalid(f"'agent' (an id of 1-{MAX_TEXT_CHARS} characters) is required")
        ttl = request.ttl_seconds or DEFAULT_TTL_SECONDS
        if not math.isfinite(ttl) or ttl <= 0 or ttl > MAX_TTL_SECONDS:
            raise invalid(f"'ttl_seconds' must be a number of seconds in (0, {MAX_TTL_SECONDS:g}]")
        data: dict[str, Any] = {"agent": request.agent, "name": request.name, "color": request.color}
        if request.model:
            data["model"] = request.model
        if request.HasField("cursor_index"):
            data["cursor"] = {"index": request.cursor_index, "length": request.cursor_length}
        try:
            state = presence_state(data)
        except InvalidPresence as exc:
            raise invalid(str(exc)) from None
        # As over HTTP: the lease is the caller's, and with auth on the token's identity is shown.
        caller, identity = "", None
        if self._state.access.enabled:
            caller, identity = principal.subject, Identity.of_subject(principal.subject, principal.kind)
        try:
            async with self._state.documents.using(name) as room:
                client_id = self._state.agents.set(
                    room, caller, request.agent, state, ttl_seconds=ttl, identity=identity
                )
        except PresenceRefused as exc:
            raise RpcFailure(400, "presence_refused", str(exc)) from None
        return pb.SetPresenceResponse(document=name, client_id=client_id, ttl_seconds=ttl)

    async def Search(self, request: pb.SearchRequest, context: Context) -> pb.SearchResponse:
        return await self._unary("Search", context, self._search(request, context))

    async def _search(self, request: pb.SearchRequest, context: Context) -> pb.SearchResponse:
        principal = self._guard.principal(context)
        limit = _limit(request.limit, http_search.DEFAULT_LIMIT, http_search.MAX_LIMIT)
        if not request.query.strip():
            raise invalid("the query is empty", "empty_query")
        index = self._search_service.index
        if index is None:
            raise RpcFailure(503, "search_unavailable", "search is not enabled on this hub")
        try:
            hits = await index.search(request.query, limit)
        except EmptyQuery as exc:
            raise invalid(str(exc), "empty_query") from None
        except IndexUnavailable:
            raise RpcFailure(503, "search_unavailable", "the search index is unavailable") from None
        return pb.SearchResponse(
            results=[
                pb.SearchHit(document=h.document, start=h.start, end=h.end, snippet=h.snippet, score=h.score)
                for h in hits
                if may_read(principal, h.document)
            ]
        )

    # -- history --------------------------------------------------------------------------

    async def GetHistory(self, request: pb.GetHistoryRequest, context: Context) -> pb.GetHistoryResponse:
        return await self._unary("GetHistory", context, self._history(request, context))

    async def _history(self, request: pb.GetHistoryRequest, context: Context) -> pb.GetHistoryResponse:
        name, versions = await self._recent(request, context, self._state.store.history)
        return pb.GetHistoryResponse(document=name, versions=[_row(pb.Version, v) for v in versions])

    async def GetVersion(self, request: pb.GetVersionRequest, context: Context) -> pb.GetVersionResponse:
        return await self._unary("GetVersion", context, self._version(request, context))

    async def _version(self, request: pb.GetVersionRequest, context: Context) -> pb.GetVersionResponse:
        name = document_name(request.document)
        self._guard.require(context, name, Role.READ)
        if request.seq <= 0:
            raise invalid("'seq' must be a positive seq from GetHistory")
        parts = await self._state.store.read_version(name, request.seq)
        text = text_of_version(parts, request.field or DEFAULT_FIELD)
        return pb.GetVersionResponse(document=name, seq=request.seq, text=text)

    async def GetActivity(self, request: pb.GetActivityRequest, context: Context) -> pb.GetActivityResponse:
        return await self._unary("GetActivity", context, self._activity(request, context))

    async def _activity(self, request: pb.GetActivityRequest, context: Context) -> pb.GetActivityResponse:
        name, entries = await self._recent(request, context, self._state.store.activity)
        return pb.GetActivityResponse(document=name, activity=[_row(pb.Activity, e) for e in entries])

    async def _recent(
        self, request: Listing, context: Context, fetch: Callable[[str, int], Awaitable[Sequence[R]]]
    ) -> tuple[str, Sequence[R]]:
        """A readable document's newest rows (history, activity), up to the request's limit."""
        name = document_name(request.document)
        self._guard.require(context, name, Role.READ)
        return name, await fetch(
            name, _limit(request.limit, http_history.DEFAULT_LIMIT, http_history.MAX_LIMIT)
        )

    async def Restore(self, request: pb.RestoreRequest, context: Context) -> pb.RestoreResponse:
        return await self._unary("Restore", context, self._restore(request, context))

    async def _restore(self, request: pb.RestoreRequest, context: Context) -> pb.RestoreResponse:
        name = document_name(request.document)
        principal = self._guard.require(context, name, Role.ADMIN)
        if request.seq < 0:
            raise invalid("'seq' (a non-negative integer version) is required")
        who = self._guard.actor(principal, request.actor, "restore")
        require_store(self._durability)
        old = await self._state.store.read_version(name, request.seq)
        changed = await restore_text(
            self._state.documents, self._durability, name, old, field=request.field or DEFAULT_FIELD, who=who
        )
        self._state.access.record("restore", who, name, f"to version {request.seq} (grpc)")
        return pb.RestoreResponse(document=name, restored_from=request.seq, changed=changed)
