"""The gRPC API against a real hub process: edits, conflicts, suggestions, Subscribe with
resume, a Sync peer converging with yjs clients, roles, bad messages, health, reflection."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pycrdt
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

import crdt_core
from collab_server.auth import mint
from collab_server.client import YClient
from collab_server.rpc import collab_pb2 as pb
from collab_server.rpc.client import CollabClient
from collab_server.rpc.codegen import drift
from collab_server.rpc.errors import failure_of
from crdt_core import MessageKind
from tests.support.hub import HubProcess, free_port
from tests.support.node import NodeClients
from tests.support.waiting import eventually

SECRET = "grpc-test-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def grpc_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """One hub for the module (each test uses its own documents): hub starts are the slow part."""
    workdir = tmp_path_factory.mktemp("grpc-hub")
    process = HubProcess(workdir, grpc_port=free_port(), grpc_max_message_bytes=1 << 20).start()
    yield process
    process.stop()


def target(hub: HubProcess) -> str:
    return f"127.0.0.1:{hub.options['grpc_port']}"


async def expect_failure(call: Any, code: grpc.StatusCode, reason: str) -> dict[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    got_code, got_reason, metadata = failure_of(raised.value)
    assert (got_code, got_reason) == (code, reason), raised.value.details()
    return metadata


def test_generated_stubs_match_the_proto() -> None:
    # grpcio-tools regenerates the stubs in a scratch directory; they must equal the checked-in ones.
    assert drift() == []


async def test_edit_conflict_and_suggest(grpc_hub: HubProcess) -> None:
    async with CollabClient(target(grpc_hub)) as client:
        await expect_failure(client.get_document("g-edit"), grpc.StatusCode.NOT_FOUND, "document_not_found")
        created = await client.edit("g-edit", text="hello world", actor="agent:test")
        assert created.text == "hello world" and created.changed
        # The answer came after the commit (strict durability): the change is in the history.
        history = await client.history("g-edit")
        assert history and "agent:test" in history[0].actors

        first = await client.get_document("g-edit")
        assert first.texts["content"] == "hello world" and first.version
        state_doc: pycrdt.Doc[Any] = pycrdt.Doc()
        state_doc.apply_update(first.state)
        assert str(state_doc.get("content", type=pycrdt.Text)) == "hello world"

        moved = await client.edit("g-edit", [{"find": "world", "replace": "there"}], version=first.version)
        assert moved.text == "hello there"
        # Against the old version: an insertion elsewhere rebases, a change to the same words conflicts.
        rebased = await client.edit("g-edit", [{"start": 0, "end": 0, "text": ">> "}], version=first.version)
        assert rebased.text == ">> hello there"
        metadata = await expect_failure(
            client.edit("g-edit", [{"find": "world", "replace": "planet"}], version=first.version),
            grpc.StatusCode.ABORTED,
            "conflict",
        )
        assert metadata["expected"] == "world" and {"start", "end", "found"} <= metadata.keys()
        assert (await client.get_document("g-edit")).texts["content"] == ">> hello there"

        suggested = await client.suggest("g-edit", [{"find": "there", "replace": "you"}], actor="agent:s")
        assert suggested.suggestion.status == "open" and suggested.suggestion.author == "agent:s"
        assert suggested.suggestion.edits[0].text == "you"
        assert (await client.get_document("g-edit")).texts["content"] == ">> hello there"

        listed = await client.list_documents()
        assert "g-edit" in [d.document for d in listed]
        assert await client.version_text("g-edit", history[0].seq) == "hello world"
        assert await client.restore("g-edit", history[0].seq)
        assert (await client.get_document("g-edit")).texts["content"] == "hello world"
        presence = await client.set_presence("g-edit", "summarizer", name="Summarizer", ttl_seconds=5)
        assert presence.client_id > 0
        # This hub runs without a search index (--search off): the HTTP API's 503 code.
        await expect_failure(client.search("hello"), grpc.StatusCode.UNAVAILABLE, "search_unavailable")

    metrics = httpx.get(f"{grpc_hub.http}/metrics").text
    assert 'nova_grpc_calls_total{code="OK",method="Edit"}' in metrics
    assert 'nova_grpc_calls_total{code="ABORTED",method="Edit"}' in metrics


async def test_bad_messages_are_invalid_argument(grpc_hub: HubProcess) -> None:
    async with CollabClient(target(grpc_hub)) as client:
        await client.edit("g-bad", text="abc")
        bad = grpc.StatusCode.INVALID_ARGUMENT
        await expect_failure(client.edit("", text="x"), bad, "invalid_document_name")
        await expect_failure(client.edit("a/../b", text="x"), bad, "invalid_document_name")
        await expect_failure(client.edit("g-bad", []), bad, "invalid_edit")
        await expect_failure(client.edit("g-bad", [{"start": 5, "end": 9, "text": "x"}]), bad, "invalid_edit")
        await expect_failure(client.edit("g-bad", [{"find": "zzz"}]), bad, "invalid_edit")
        await expect_failure(
            client.stub.Edit(pb.EditRequest(document="g-bad", edits=[pb.TextEdit()])), bad, "invalid_edit"
        )
        await expect_failure(client.edit("g-bad", text="y", version="not-a-version"), bad, "invalid_version")
        await expect_failure(client.get_document("g-bad", fields=[""]), bad, "invalid_request")
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            async for _ in client.subscribe("g-bad", from_version="@@@"):
                pass
        assert failure_of(raised.value)[:2] == (bad, "invalid_version")
        # A Sync stream whose message is not a y-protocol message.
        call = client.sync()
        await call.write(pb.SyncMessage(document="g-bad", message=b"\xff\xff\xff"))
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            async for _ in call:
                pass
        assert failure_of(raised.value)[:2] == (bad, "invalid_message")
        # Over the named message limit (--grpc-max-message-bytes, 1 MiB here).
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await client.edit("g-bad", text="x" * (2 << 20))
        assert raised.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        # Nothing above changed the document.
        assert (await client.get_document("g-bad")).texts["content"] == "abc"
        # Deadlines: a Subscribe that outlives its deadline ends with DEADLINE_EXCEEDED.
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            async for _ in client.subscribe("g-bad", timeout=0.5):
                pass
        assert raised.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED


async def test_subscribe_resumes_without_skipping_or_repeating(grpc_hub: HubProcess) -> None:
    received: pycrdt.Doc[Any] = pycrdt.Doc()
    text = received.get("content", type=pycrdt.Text)
    tokens = [f"<{i}>" for i in range(40)]

    def apply(event: pb.DocumentEvent, first: bool) -> None:
        before = received.get_state()
        received.apply_update(event.update)
        # Every live event adds something the subscriber did not have: nothing is repeated.
        assert first or received.get_state() != before, "an event repeated what was already delivered"

    async with CollabClient(target(grpc_hub)) as client, YClient(grpc_hub.url("g-sub")) as writer:
        await writer.wait_synced()
        writer.text += "start;"
        await eventually(lambda: grpc_hub.text("g-sub") == "start;", what="first edit stored")
        call = client.subscribe("g-sub")
        events = 0
        version = ""
        async for event in call:
            apply(event, events == 0)
            version = event.version
            events += 1
            if events <= 10:
                writer.text += tokens[events - 1]
            if events == 11:
                break
        call.cancel()  # the stream dies mid-way; the writer keeps writing meanwhile
        for token in tokens[10:]:
            writer.text += token
        await eventually(lambda: grpc_hub.text("g-sub").endswith(tokens[-1]), what="writer's edits stored")
        resumed = client.subscribe("g-sub", from_version=version)
        async for event in resumed:
            apply(event, False)  # even the catch-up event brings only what was missed
            if str(text) == grpc_hub.text("g-sub"):
                break
        resumed.cancel()
        assert str(text) == "start;" + "".join(tokens)


async def test_sync_peer_converges_with_yjs_clients(grpc_hub: HubProcess) -> None:
    """A service that speaks y-protocol over gRPC edits one document with two yjs clients."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("content", type=pycrdt.Text)
    async with CollabClient(target(grpc_hub)) as client, NodeClients() as nodes:
        await nodes.open("a", grpc_hub.ws, "g-sync")
        await nodes.open("b", grpc_hub.ws, "g-sync")
        await nodes.call("insert", client="a", index=0, text="from yjs a;")
        call = client.sync()
        outgoing: list[bytes] = []
        doc.observe(lambda event: outgoing.append(event.update))
        await call.write(
            pb.SyncMessage(document="g-sync", message=crdt_core.frame_sync_step1(doc.get_state()))
        )

        async def read() -> None:
            async for reply in call:
                message = crdt_core.parse_message(reply.message)
                if message.kind is MessageKind.SYNC_STEP1:
                    await call.write(
                        pb.SyncMessage(message=crdt_core.frame_sync_step2(doc.get_update(message.payload)))
                    )
                elif message.kind in (MessageKind.SYNC_STEP2, MessageKind.SYNC_UPDATE):
                    doc.apply_update(message.payload)

        reader = asyncio.create_task(read())
        try:
            await eventually(lambda: str(text) == "from yjs a;", what="gRPC peer synced")
            outgoing.clear()
            text.insert(len(text), "from grpc;")
            for update in outgoing:
                await call.write(pb.SyncMessage(message=crdt_core.frame_update(update)))
            await nodes.call("insert", client="b", index=0, text="from yjs b;")
            for name in ("a", "b"):
                await nodes.call("wait_text", client=name, text="from yjs b;from yjs a;from grpc;")
            await eventually(
                lambda: str(text) == "from yjs b;from yjs a;from grpc;", what="gRPC peer converged"
            )
            assert grpc_hub.text("g-sync") == str(text)
        finally:
            reader.cancel()
            call.cancel()


async def test_roles_and_tokens(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path, grpc_port=free_port(), auth_secret=SECRET).start()
    try:
        writer = mint(SECRET, "agent:writer", [("g-*", "write")], kind="agent")
        reader = mint(SECRET, "viewer", [("g-*", "read")])
        async with CollabClient(target(hub), token=writer) as client:
            await client.edit("g-auth", text="owned", actor="someone-else")
            activity = await client.activity("g-auth")
            assert activity[0].actor == "agent:writer"  # attribution comes from the token
            await expect_failure(
                client.edit("other", text="x"), grpc.StatusCode.PERMISSION_DENIED, "forbidden"
            )
            # Agent presence shows the token's identity, not the name the caller claims.
            await client.set_presence("g-auth", "bot", name="Someone Else", ttl_seconds=60)
            status = httpx.get(f"{hub.http}/api/documents/g-auth/status?token={writer}").json()
            users = [json.loads(state)["user"] for state in status["presence"].values()]
            assert users == [
                {"name": "agent:writer", "id": "agent:writer", "kind": "agent", "color": "#8b5cf6"}
            ]
        async with CollabClient(target(hub), token=reader) as client:
            assert (await client.get_document("g-auth")).texts["content"] == "owned"
            await expect_failure(
                client.edit("g-auth", text="x"), grpc.StatusCode.PERMISSION_DENIED, "forbidden"
            )
            await expect_failure(
                client.suggest("g-auth", text="x"), grpc.StatusCode.PERMISSION_DENIED, "forbidden"
            )
            await expect_failure(client.restore("g-auth", 1), grpc.StatusCode.PERMISSION_DENIED, "forbidden")
            # Over Sync, a read-only peer's update is dropped and it is told once (permission denied).
            call = client.sync()
            update_doc: pycrdt.Doc[Any] = pycrdt.Doc()
            update_doc.get("content", type=pycrdt.Text).insert(0, "forged")
            await call.write(
                pb.SyncMessage(document="g-auth", message=crdt_core.frame_update(update_doc.get_update()))
            )
            denied = False
            async for reply in call:
                if crdt_core.parse_message(reply.message).kind is MessageKind.AUTH:
                    denied = True
                    break
            call.cancel()
            assert denied
            assert (await client.get_document("g-auth")).texts["content"] == "owned"
        async with CollabClient(target(hub)) as anonymous:
            await expect_failure(
                anonymous.get_document("g-auth"), grpc.StatusCode.UNAUTHENTICATED, "unauthorized"
            )
    finally:
        hub.stop()


async def test_health_and_reflection(grpc_hub: HubProcess) -> None:
    async with grpc.aio.insecure_channel(target(grpc_hub)) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        answer = await health.Check(health_pb2.HealthCheckRequest(service="nova.collab.v1.Collab"))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        async for response in reflection.ServerReflectionInfo(iter([request])):
            names = {service.name for service in response.list_services_response.service}
            assert {"nova.collab.v1.Collab", "grpc.health.v1.Health"} <= names
            break


async def test_subscribe_from_a_stored_seq_with_presence(grpc_hub: HubProcess) -> None:
    async with CollabClient(target(grpc_hub)) as client:
        await client.edit("g-seq", text="one ")
        seq = (await client.history("g-seq"))[0].seq
        await client.edit("g-seq", [{"start": 4, "end": 4, "text": "two"}])
        # From the seq of "one ": the first event holds only what came after it.
        call = client.subscribe("g-seq", from_seq=seq, include_presence=True)
        first = await call.read()
        assert b"two" in first.update and b"one" not in first.update
        async with YClient(grpc_hub.url("g-seq"), presence={"user": {"name": "Ada", "color": "#2563eb"}}):
            while True:
                event = await asyncio.wait_for(call.read(), 10)
                if event.WhichOneof("event") == "presence":
                    states = [s.state_json for s in event.presence.states]
                    assert any("Ada" in state for state in states)
                    break
        call.cancel()


async def test_follow_resumes_across_a_hub_restart(grpc_hub: HubProcess) -> None:
    """The client helper's ``follow`` reconnects after the server ends the stream (a restart)
    and resumes from the last version it delivered: the copy ends equal, nothing repeated."""
    received: pycrdt.Doc[Any] = pycrdt.Doc()
    text = received.get("content", type=pycrdt.Text)
    async with CollabClient(target(grpc_hub)) as client:
        await client.edit("g-follow", text="a;")
        events = client.follow("g-follow", max_retries=50, retry_delay=0.1)
        first = await anext(events)
        received.apply_update(first.update)
        assert str(text) == "a;"
        grpc_hub.terminate()  # the stream breaks (UNAVAILABLE) while the hub is down
        grpc_hub.start()
        await client.edit("g-follow", [{"start": 2, "end": 2, "text": "b;"}])
        while str(text) != "a;b;":
            event = await asyncio.wait_for(anext(events), 30)
            before = received.get_state()
            received.apply_update(event.update)
            assert received.get_state() != before, "a resumed stream repeated an update"
        await events.aclose()


async def test_health_follows_the_store(tmp_path: Path, postgres_server: Any, postgres_dsn: str) -> None:
    """grpc.health.v1 says NOT_SERVING while the store is down (like /readyz), SERVING after."""
    hub = HubProcess(tmp_path, store=postgres_dsn, grpc_port=free_port()).start()
    try:
        async with grpc.aio.insecure_channel(target(hub)) as channel:
            health = health_pb2_grpc.HealthStub(channel)

            async def status() -> int:
                answer = await health.Check(health_pb2.HealthCheckRequest(service="nova.collab.v1.Collab"))
                return int(answer.status)

            async def wait_status(wanted: int, what: str) -> None:
                for _ in range(300):
                    if await status() == wanted:
                        return
                    await asyncio.sleep(0.1)
                raise AssertionError(f"health never became {what}")

            await wait_status(health_pb2.HealthCheckResponse.SERVING, "SERVING")
            await postgres_server.astop()
            try:
                await wait_status(health_pb2.HealthCheckResponse.NOT_SERVING, "NOT_SERVING")
            finally:
                await postgres_server.astart()
            await wait_status(health_pb2.HealthCheckResponse.SERVING, "SERVING again")
    finally:
        hub.stop()
