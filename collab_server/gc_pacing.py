"""The garbage collector's pace in a serving hub process.

CPython's full (oldest-generation) collection walks every tracked object while the event
loop stands still. With thousands of sockets that is hundreds of thousands of objects: in a
presence storm (1,500 clients in one document) it stopped every relay for about 0.2 s, every
15 s or so, which alone put the document updates' p99 above 100 ms. Two changes, made once
when the server is about to run (never in a test process that only embeds a Hub):

- ``gc.freeze()``: everything imported and built before serving (~70k objects: modules,
  classes, the app) moves to the permanent generation and is never walked again;
- the full collection waits for ``full_after`` middle-generation collections instead of
  CPython's 10. Young and middle collections (short pauses, most cyclic garbage) keep their
  pace; cyclic garbage that survived both is freed a few minutes later instead of seconds.
"""

from __future__ import annotations

import gc


def pace_collector(full_after: int) -> None:
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, full_after)
    gc.freeze()
