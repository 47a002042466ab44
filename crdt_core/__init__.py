"""Functions on encoded Yjs data: protocol framing, update merge/diff, awareness coalescing.

Two backends give identical results: the native crate (``crdt_core_rs``, built with
maturin into the private module ``_crdt_core_native``) and a pure-Python fallback.
The native one is used when it imports; ``NOVA_CRDT_BACKEND=python`` forces the fallback.
"""

from __future__ import annotations

import logging
import os

from crdt_core import _framing, _updates
from crdt_core._types import AwarenessEntry, Message, MessageKind, ProtocolError

logger = logging.getLogger(__name__)

encode_var_uint = _framing.encode_var_uint
decode_var_uint = _framing.decode_var_uint
parse_message = _framing.parse_message
parse_messages = _framing.parse_messages
frame_sync_step1 = _framing.frame_sync_step1
frame_sync_step2 = _framing.frame_sync_step2
frame_update = _framing.frame_update
frame_awareness = _framing.frame_awareness
frame_auth_denied = _framing.frame_auth_denied
frame_query_awareness = _framing.frame_query_awareness
decode_awareness = _framing.decode_awareness
encode_awareness = _framing.encode_awareness
coalesce_awareness = _framing.coalesce_awareness
merge_updates = _updates.merge_updates
diff_update = _updates.diff_update
state_vector = _updates.state_vector
text_of = _updates.text_of

BACKEND = "python"

__all__ = [
    "BACKEND",
    "AwarenessEntry",
    "Message",
    "MessageKind",
    "ProtocolError",
    "coalesce_awareness",
    "decode_awareness",
    "decode_var_uint",
    "diff_update",
    "encode_awareness",
    "encode_var_uint",
    "frame_auth_denied",
    "frame_awareness",
    "frame_query_awareness",
    "frame_sync_step1",
    "frame_sync_step2",
    "frame_update",
    "merge_updates",
    "parse_message",
    "parse_messages",
    "state_vector",
    "text_of",
]


def describe_backend() -> str:
    return BACKEND


logger.debug("crdt_core backend: %s (NOVA_CRDT_BACKEND=%s)", BACKEND, os.environ.get("NOVA_CRDT_BACKEND", ""))
