from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.hub import HubProcess

pytest_plugins = ["tests.support.pytest_services"]


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    """A hub process with the embedded SQLite store and the default pings.

    Default pings (not 1 s/1 s): on a loaded machine a live client can take over a second to
    answer, and a fast ping would drop it mid-test. Tests of dead-peer detection start their
    own hub with fast pings.
    """
    process = HubProcess(tmp_path).start()
    yield process
    process.stop()


@pytest.fixture
def memory_hub(tmp_path: Path) -> Iterator[HubProcess]:
    process = HubProcess(tmp_path, store="memory").start()  # default pings, as for ``hub``
    yield process
    process.stop()
