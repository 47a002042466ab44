"""The hub's own CLI under tracemalloc, for memory breakdowns (load_tests/bench_idle_memory.py).

    python load_tests/traced_hub.py SNAPSHOT_DIR serve --port 4000 ...

runs ``python -m collab_server serve ...`` unchanged. The first SIGUSR1 starts tracemalloc
(so start-up runs at full speed and is not counted); each SIGUSR1 then collects garbage and
writes the next snapshot, ``SNAPSHOT_DIR/<n>.snapshot`` (under a temporary name, then
renamed: a snapshot that exists is complete). The snapshots hold what was allocated after
tracing began and is still alive. Nothing of the hub is imported here: it runs exactly as
the suite starts it.
"""

from __future__ import annotations

import gc
import itertools
import os
import runpy
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

FRAMES = 12  # traceback depth kept per allocation: enough to tell who asked for it


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    numbers = itertools.count()

    def snapshot(_signum: int, _frame: FrameType | None) -> None:
        if not tracemalloc.is_tracing():
            tracemalloc.start(FRAMES)
        gc.collect()
        path = out / f"{next(numbers)}.snapshot"
        partial = path.with_suffix(".partial")
        tracemalloc.take_snapshot().dump(str(partial))
        os.replace(partial, path)

    signal.signal(signal.SIGUSR1, snapshot)
    # This checkout's hub, as `python -m collab_server` from its root runs it (not whichever
    # checkout an editable install points at).
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.argv = ["collab_server", *sys.argv[2:]]
    runpy.run_module("collab_server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
