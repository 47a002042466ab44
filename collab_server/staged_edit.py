"""Server-side edits made all-or-nothing: prepared on a copy, applied to the live document as one update.

A pycrdt transaction is not a rollback: if the third of five changes raises, the first two
stay. So an edit is made on a scratch copy of the live document (same client id, same
clocks) and only the resulting update reaches the live document, which applies it whole
or not at all. Nothing may await between ``stage`` and applying its update.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pycrdt


def stage(live: pycrdt.Doc[Any], mutate: Callable[[pycrdt.Doc[Any]], object]) -> bytes:
    """The update ``mutate`` makes to a copy of ``live`` (``live`` itself is not touched).

    Any exception from ``mutate`` propagates and the live document stays as it was. The
    update is empty-ish (``b"\\x00\\x00"``) when ``mutate`` changed nothing.
    """
    scratch: pycrdt.Doc[Any] = pycrdt.Doc(client_id=live.client_id, skip_gc=True)
    scratch.apply_update(live.get_update())
    before = live.get_state()
    with scratch.transaction():
        mutate(scratch)
    update: bytes = scratch.get_update(before)
    return update
