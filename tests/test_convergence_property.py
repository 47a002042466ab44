"""Property: any interleaving of clients' edits, disconnects and reconnects converges on the hub."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pycrdt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collab_server import textops
from collab_server.client import YClient
from tests.support.hub import HubProcess
from tests.support.waiting import eventually

CLIENTS = 3
_documents = itertools.count()

operation = st.one_of(
    st.tuples(
        st.just("insert"),
        st.integers(0, CLIENTS - 1),
        st.floats(0, 1),
        st.text("abcxyz é🙂", min_size=1, max_size=4),
    ),
    st.tuples(st.just("delete"), st.integers(0, CLIENTS - 1), st.floats(0, 1), st.integers(1, 3)),
    st.tuples(st.just("disconnect"), st.integers(0, CLIENTS - 1), st.just(0.0), st.just("")),
    st.tuples(st.just("reconnect"), st.integers(0, CLIENTS - 1), st.just(0.0), st.just("")),
    st.tuples(st.just("yield"), st.integers(0, CLIENTS - 1), st.just(0.0), st.just("")),
)


@pytest.fixture(scope="module")
def shared_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    process = HubProcess(Path(tmp_path_factory.mktemp("property"))).start()
    yield process
    process.stop()


async def run_scenario(hub: HubProcess, operations: list[tuple[str, int, float, Any]]) -> None:
    document = f"prop-{next(_documents)}"
    docs: list[pycrdt.Doc[Any]] = [pycrdt.Doc() for _ in range(CLIENTS)]
    online: dict[int, YClient] = {}

    async def go_online(index: int) -> None:
        client = YClient(hub.url(document), doc=docs[index])
        await client.__aenter__()
        await client.wait_synced()
        online[index] = client

    async def go_offline(index: int) -> None:
        client = online.pop(index)
        await client.__aexit__(None, None, None)

    for index in range(CLIENTS):
        await go_online(index)
    for kind, index, where, arg in operations:
        text = docs[index].get("content", type=pycrdt.Text)
        current = str(text)  # positions in code points, converted by textops
        if kind == "insert":
            textops.insert(text, current, int(where * len(current)), arg)
        elif kind == "delete" and current:
            start = min(int(where * len(current)), len(current) - 1)
            textops.delete(text, current, start, min(len(current), start + arg))
        elif kind == "disconnect" and index in online:
            await go_offline(index)
        elif kind == "reconnect" and index not in online:
            await go_online(index)
        elif kind == "yield":
            await asyncio.sleep(0)
    for index in range(CLIENTS):
        if index not in online:
            await go_online(index)

    def texts() -> list[str]:
        return [str(doc.get("content", type=pycrdt.Text)) for doc in docs]

    await eventually(lambda: len(set(texts())) == 1, what=f"clients converge: {texts()!r}")
    await eventually(lambda: hub.text(document) == texts()[0], what="hub equals clients")
    for index in list(online):
        await go_offline(index)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(operation, min_size=1, max_size=25))
def test_random_interleavings_converge_to_the_hub_state(
    shared_hub: HubProcess, operations: list[tuple[str, int, float, Any]]
) -> None:
    asyncio.run(run_scenario(shared_hub, operations))
