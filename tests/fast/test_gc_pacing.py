"""The serving process's collector pace (collab_server/gc_pacing.py), checked in a child
process so this test process's own collector is left as it is."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.fast

_PROBE = """
import gc, json
from collab_server.gc_pacing import pace_collector
from collab_server.settings import Settings
before = gc.get_threshold()
pace_collector(Settings().gc_full_collection_threshold)
print(json.dumps({"before": before, "after": gc.get_threshold(), "frozen": gc.get_freeze_count()}))
"""


def test_the_serving_process_freezes_its_start_and_spaces_full_collections() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    seen = json.loads(done.stdout)
    young, middle, _ = seen["before"]
    assert seen["after"] == [young, middle, 100]  # the young and middle pace are kept
    assert seen["frozen"] > 10_000  # the imported program is out of every collection's walk
