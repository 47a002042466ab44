"""A small async client for the hub's gRPC API (part of the SDK, like ``collab_server.agent``).

    async with CollabClient("127.0.0.1:50051", token=TOKEN) as client:
        doc = await client.get_document("notes")
        await client.edit("notes", [{"find": "teh", "replace": "the"}], version=doc.version)
        async for event in client.follow("notes", from_version=doc.version):
            ...  # every change once, across reconnects

Errors are ``grpc.aio.AioRpcError``; ``collab_server.rpc.errors.failure_of`` gives the code,
the HTTP API's error code (reason) and its metadata.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from types import TracebackType
from typing import Any, Self, TypedDict, Unpack

import grpc

from collab_server.rpc import collab_pb2 as pb
from collab_server.rpc import collab_pb2_grpc

# Failures after which ``follow`` resumes from the last version it delivered.
RESUMABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL)


def text_edit(edit: Mapping[str, Any]) -> pb.TextEdit:
    """``{"start", "end", "text"}`` or ``{"find", "replace"}`` (the HTTP API's shapes)."""
    if "find" in edit:
        return pb.TextEdit(find=pb.FindReplace(find=edit["find"], replace=edit.get("replace", "")))
    start = edit["start"]
    return pb.TextEdit(range=pb.RangeEdit(start=start, end=edit.get("end", start), text=edit.get("text", "")))


class EditOptions(TypedDict, total=False):
    version: str  # the version the edits were made against (rebased onto the live text)
    text: str  # replace the whole field with this text instead of edits
    field: str  # the text field (default "content")
    actor: str  # attribution when the hub runs without auth


def edit_request(
    document: str, edits: Iterable[Mapping[str, Any]], **options: Unpack[EditOptions]
) -> pb.EditRequest:
    request = pb.EditRequest(
        document=document,
        version=options.get("version", ""),
        field=options.get("field", ""),
        actor=options.get("actor", ""),
        edits=[text_edit(e) for e in edits],
    )
    if "text" in options:
        request.text = options["text"]
    return request


class CollabClient:
    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        root_certificates: bytes | None = None,
        tls: bool = False,
        max_message_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        """``target`` is host:port; TLS when ``tls`` or ``root_certificates`` (PEM CAs) is given."""
        self.target = target
        self.metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
        options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        if tls or root_certificates is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self.channel = grpc.aio.secure_channel(target, credentials, options=options)
        else:
            self.channel = grpc.aio.insecure_channel(target, options=options)
        self.stub = collab_pb2_grpc.CollabStub(self.channel)  # type: ignore[no-untyped-call]

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self.channel.close()

    # -- calls ----------------------------------------------------------------------------

    async def get_document(
        self, document: str, fields: Iterable[str] = (), timeout: float | None = 30.0
    ) -> pb.Document:
        request = pb.GetDocumentRequest(document=document, fields=list(fields))
        result: pb.Document = await self.stub.GetDocument(request, metadata=self.metadata, timeout=timeout)
        return result

    async def list_documents(self, timeout: float | None = 30.0) -> list[pb.DocumentSummary]:
        result = await self.stub.ListDocuments(
            pb.ListDocumentsRequest(), metadata=self.metadata, timeout=timeout
        )
        return list(result.documents)

    async def edit(
        self,
        document: str,
        edits: Iterable[Mapping[str, Any]] = (),
        *,
        timeout: float | None = 30.0,
        **options: Unpack[EditOptions],
    ) -> pb.EditResponse:
        """Apply ``edits`` (or replace the whole ``text``), optionally against an older ``version``."""
        request = edit_request(document, edits, **options)
        result: pb.EditResponse = await self.stub.Edit(request, metadata=self.metadata, timeout=timeout)
        return result

    async def suggest(
        self,
        document: str,
        edits: Iterable[Mapping[str, Any]] = (),
        *,
        timeout: float | None = 30.0,
        **options: Unpack[EditOptions],
    ) -> pb.SuggestResponse:
        """Propose the same edits as ``edit`` would apply, for a person to accept or reject."""
        request = edit_request(document, edits, **options)
        result: pb.SuggestResponse = await self.stub.Suggest(request, metadata=self.metadata, timeout=timeout)
        return result

    def subscribe(
        self,
        document: str,
        *,
        from_version: str = "",
        from_seq: int = 0,
        include_presence: bool = False,
        timeout: float | None = None,
    ) -> grpc.aio.UnaryStreamCall[pb.SubscribeRequest, pb.DocumentEvent]:
        """One Subscribe stream (iterate it; ``cancel()`` ends it)."""
        request = pb.SubscribeRequest(document=document, include_presence=include_presence)
        if from_version:
            request.from_version = from_version
        elif from_seq:
            request.from_seq = from_seq
        call: grpc.aio.UnaryStreamCall[pb.SubscribeRequest, pb.DocumentEvent] = self.stub.Subscribe(
            request, metadata=self.metadata, timeout=timeout
        )
        return call

    async def follow(
        self,
        document: str,
        *,
        from_version: str = "",
        include_presence: bool = False,
        max_retries: int = 10,
        retry_delay: float = 0.2,
    ) -> AsyncIterator[pb.DocumentEvent]:
        """Subscribe and resume after a broken stream from the last version delivered."""
        version, retries = from_version, 0
        while True:
            call = self.subscribe(document, from_version=version, include_presence=include_presence)
            try:
                async for event in call:
                    retries = 0
                    if event.version:
                        version = event.version
                    yield event
                return
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RESUMABLE or retries >= max_retries:
                    raise
                retries += 1
                await asyncio.sleep(retry_delay * retries)  # back-off before reconnecting
            finally:
                call.cancel()

    def sync(self) -> grpc.aio.StreamStreamCall[pb.SyncMessage, pb.SyncMessage]:
        """A Sync stream: write SyncMessage(document=..., message=...) first, then y-protocol messages."""
        call: grpc.aio.StreamStreamCall[pb.SyncMessage, pb.SyncMessage] = self.stub.Sync(
            metadata=self.metadata
        )
        return call

    async def set_presence(
        self,
        document: str,
        agent: str,
        *,
        name: str = "",
        ttl_seconds: float = 0.0,
        timeout: float | None = 30.0,
    ) -> pb.SetPresenceResponse:
        request = pb.SetPresenceRequest(document=document, agent=agent, name=name, ttl_seconds=ttl_seconds)
        result: pb.SetPresenceResponse = await self.stub.SetPresence(
            request, metadata=self.metadata, timeout=timeout
        )
        return result

    async def history(self, document: str, limit: int = 0) -> list[pb.Version]:
        result = await self.stub.GetHistory(
            pb.GetHistoryRequest(document=document, limit=limit), metadata=self.metadata
        )
        return list(result.versions)

    async def version_text(self, document: str, seq: int, field: str = "") -> str:
        result = await self.stub.GetVersion(
            pb.GetVersionRequest(document=document, seq=seq, field=field), metadata=self.metadata
        )
        return str(result.text)

    async def activity(self, document: str, limit: int = 0) -> list[pb.Activity]:
        result = await self.stub.GetActivity(
            pb.GetActivityRequest(document=document, limit=limit), metadata=self.metadata
        )
        return list(result.activity)

    async def search(self, query: str, limit: int = 0) -> list[pb.SearchHit]:
        result = await self.stub.Search(pb.SearchRequest(query=query, limit=limit), metadata=self.metadata)
        return list(result.results)

    async def restore(self, document: str, seq: int, field: str = "", timeout: float | None = 30.0) -> bool:
        request = pb.RestoreRequest(document=document, seq=seq, field=field)
        result = await self.stub.Restore(request, metadata=self.metadata, timeout=timeout)
        return bool(result.changed)
