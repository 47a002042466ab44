from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.hub import HubProcess

pytest_plugins = ["tests.support.pytest_services"]


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    """A hub process with the embedded SQLite store, fast presence expiry and pings."""
    process = HubProcess(tmp_path, ping_interval_seconds=1.0, ping_timeout_seconds=1.0).start()
    yield process
    process.stop()


@pytest.fixture
def memory_hub(tmp_path: Path) -> Iterator[HubProcess]:
    process = HubProcess(
        tmp_path, store="memory", ping_interval_seconds=1.0, ping_timeout_seconds=1.0
    ).start()
    yield process
    process.stop()
