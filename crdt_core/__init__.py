"""Functions on encoded Yjs data: protocol framing, update merge/diff, awareness coalescing.

Two backends give the same results: the native crate (``crdt_core_rs``, built with
maturin into the private module ``_crdt_core_native`` by ``scripts/build_native.sh``)
and a pure-Python fallback. The native one is used when it imports.
``NOVA_CRDT_BACKEND=python`` forces the fallback; ``NOVA_CRDT_BACKEND=rust`` makes a
missing native module an ``ImportError``. ``BACKEND`` says which one is active.

Framing, varints and awareness give identical bytes on both backends. ``merge_updates``
and ``compact`` give updates that decode to the same document on both (the native
merge joins typing runs that pycrdt's leaves apart); the v2 functions need the native
backend.
"""

from __future__ import annotations

import importlib
import logging
import os
from types import ModuleType, SimpleNamespace

from crdt_core import _framing, _updates
from crdt_core._types import AwarenessEntry, Message, MessageKind, ProtocolError
from crdt_core._untrusted import is_rust_panic, untrusted

logger = logging.getLogger(__name__)

NATIVE_MODULE = "_crdt_core_native"
BACKEND_ENV = "NOVA_CRDT_BACKEND"


def _checked_decode_var_uint(data: bytes, offset: int = 0) -> tuple[int, int]:
    if offset < 0:
        raise ProtocolError("negative offset")
    return _framing.decode_var_uint(data, offset)


# The pure-Python functions, by facade name.
_FALLBACK = {
    "encode_var_uint": _framing.encode_var_uint,
    "decode_var_uint": _checked_decode_var_uint,
    "parse_message": _framing.parse_message,
    "parse_messages": _framing.parse_messages,
    "frame_messages": _framing.frame_messages,
    "frame_sync_step1": _framing.frame_sync_step1,
    "frame_sync_step2": _framing.frame_sync_step2,
    "frame_update": _framing.frame_update,
    "frame_awareness": _framing.frame_awareness,
    "frame_auth_denied": _framing.frame_auth_denied,
    "frame_query_awareness": _framing.frame_query_awareness,
    "decode_awareness": _framing.decode_awareness,
    "encode_awareness": _framing.encode_awareness,
    "coalesce_awareness": _framing.coalesce_awareness,
    "merge_updates": _updates.merge_updates,
    "diff_update": _updates.diff_update,
    "state_vector": _updates.state_vector,
    "text_of": _updates.text_of,
    "compact": _updates.compact,
    "update_v1_to_v2": _updates.update_v1_to_v2,
    "update_v2_to_v1": _updates.update_v2_to_v1,
    "merge_updates_v2": _updates.merge_updates_v2,
}


def load_native() -> ModuleType:
    """Import the native module; ``ImportError`` with a hint if it is not built."""
    try:
        return importlib.import_module(NATIVE_MODULE)
    except ImportError as exc:
        raise ImportError(
            f"the native crdt_core backend ({NATIVE_MODULE}) is not installed; "
            "build it with scripts/build_native.sh"
        ) from exc


def backend_functions(name: str) -> SimpleNamespace:
    """All facade functions of one backend ("rust" or "python"), for tests and benchmarks."""
    if name == "python":
        return SimpleNamespace(**_FALLBACK)
    if name == "rust":
        native = load_native()
        return SimpleNamespace(**{fn: getattr(native, fn) for fn in _FALLBACK})
    raise ValueError(f"unknown crdt_core backend {name!r} (expected 'rust' or 'python')")


def _choose() -> tuple[str, ModuleType | None]:
    wanted = os.environ.get(BACKEND_ENV, "").strip().lower()
    if wanted not in ("", "rust", "python"):
        raise ImportError(f"{BACKEND_ENV} must be 'rust' or 'python', not {wanted!r}")
    if wanted == "python":
        return "python", None
    try:
        return "rust", load_native()
    except ImportError:
        if wanted == "rust":
            raise
        return "python", None


BACKEND, _native = _choose()

encode_var_uint = _framing.encode_var_uint
decode_var_uint = _checked_decode_var_uint
parse_message = _framing.parse_message
parse_messages = _framing.parse_messages
frame_messages = _framing.frame_messages
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
compact = _updates.compact
update_v1_to_v2 = _updates.update_v1_to_v2
update_v2_to_v1 = _updates.update_v2_to_v1
merge_updates_v2 = _updates.merge_updates_v2

if _native is not None:
    # Same signatures as the fallback (see _crdt_core_native.pyi); the types above stand.
    encode_var_uint = _native.encode_var_uint
    decode_var_uint = _native.decode_var_uint
    parse_message = _native.parse_message
    parse_messages = _native.parse_messages
    frame_messages = _native.frame_messages
    frame_sync_step1 = _native.frame_sync_step1
    frame_sync_step2 = _native.frame_sync_step2
    frame_update = _native.frame_update
    frame_awareness = _native.frame_awareness
    frame_auth_denied = _native.frame_auth_denied
    frame_query_awareness = _native.frame_query_awareness
    decode_awareness = _native.decode_awareness
    encode_awareness = _native.encode_awareness
    coalesce_awareness = _native.coalesce_awareness
    merge_updates = _native.merge_updates
    diff_update = _native.diff_update
    state_vector = _native.state_vector
    text_of = _native.text_of
    compact = _native.compact
    update_v1_to_v2 = _native.update_v1_to_v2
    update_v2_to_v1 = _native.update_v2_to_v1
    merge_updates_v2 = _native.merge_updates_v2

__all__ = [
    "BACKEND",
    "AwarenessEntry",
    "Message",
    "MessageKind",
    "ProtocolError",
    "backend_functions",
    "coalesce_awareness",
    "compact",
    "decode_awareness",
    "decode_var_uint",
    "describe_backend",
    "diff_update",
    "encode_awareness",
    "encode_var_uint",
    "frame_auth_denied",
    "frame_awareness",
    "frame_messages",
    "frame_query_awareness",
    "frame_sync_step1",
    "frame_sync_step2",
    "frame_update",
    "is_rust_panic",
    "load_native",
    "merge_updates",
    "merge_updates_v2",
    "parse_message",
    "parse_messages",
    "state_vector",
    "text_of",
    "update_v1_to_v2",
    "untrusted",
    "update_v2_to_v1",
]


def describe_backend() -> str:
    return BACKEND


logger.info("crdt_core backend: %s (%s=%r)", BACKEND, BACKEND_ENV, os.environ.get(BACKEND_ENV, ""))
