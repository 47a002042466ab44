"""Pure-Python y-protocol framing: lib0 varints and the y-websocket message envelope.

This is the fallback the native crate mirrors function for function; both must
produce the same bytes and raise ``ValueError`` (``ProtocolError``) on the same input.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from crdt_core._types import AwarenessEntry, Message, MessageKind, ProtocolError

# Outer message types of the y-websocket protocol.
MESSAGE_SYNC = 0
MESSAGE_AWARENESS = 1
MESSAGE_AUTH = 2
MESSAGE_QUERY_AWARENESS = 3
# Sub-types inside a sync message.
SYNC_STEP1 = 0
SYNC_STEP2 = 1
SYNC_UPDATE = 2
# y-protocols/auth: the only auth sub-type defined.
AUTH_PERMISSION_DENIED = 0

# lib0 varuints in this protocol never exceed 53 bits (JavaScript's safe integers).
_MAX_VARUINT_BITS = 53


def encode_var_uint(value: int) -> bytes:
    if value < 0:
        raise ValueError("varuint must be non-negative")
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_var_uint(data: bytes, offset: int = 0) -> tuple[int, int]:
    """Read one varuint at ``offset``; return (value, offset after it)."""
    value = 0
    shift = 0
    length = len(data)
    while True:
        if offset >= length:
            raise ProtocolError("truncated varuint")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, offset
        shift += 7
        if shift >= _MAX_VARUINT_BITS + 7:
            raise ProtocolError("varuint longer than 53 bits")


def _read_var_bytes(data: bytes, offset: int) -> tuple[bytes, int]:
    size, offset = decode_var_uint(data, offset)
    end = offset + size
    if end > len(data):
        raise ProtocolError(f"truncated byte array: declared {size} bytes, {len(data) - offset} present")
    return data[offset:end], end


def _var_bytes(payload: bytes) -> bytes:
    return encode_var_uint(len(payload)) + payload


def parse_message(data: bytes) -> Message:
    """Decode one y-websocket message; trailing bytes are an error (no client sends them)."""
    outer, offset = decode_var_uint(data, 0)
    if outer == MESSAGE_SYNC:
        sub, offset = decode_var_uint(data, offset)
        if sub not in (SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE):
            raise ProtocolError(f"unknown sync message type {sub}")
        payload, offset = _read_var_bytes(data, offset)
        kind = (MessageKind.SYNC_STEP1, MessageKind.SYNC_STEP2, MessageKind.SYNC_UPDATE)[sub]
    elif outer == MESSAGE_AWARENESS:
        payload, offset = _read_var_bytes(data, offset)
        kind = MessageKind.AWARENESS
    elif outer == MESSAGE_AUTH:
        sub, offset = decode_var_uint(data, offset)
        if sub != AUTH_PERMISSION_DENIED:
            raise ProtocolError(f"unknown auth message type {sub}")
        payload, offset = _read_var_bytes(data, offset)
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("auth reason is not UTF-8") from exc
        kind = MessageKind.AUTH
    elif outer == MESSAGE_QUERY_AWARENESS:
        payload = b""
        kind = MessageKind.QUERY_AWARENESS
    else:
        raise ProtocolError(f"unknown message type {outer}")
    if offset != len(data):
        raise ProtocolError(f"{len(data) - offset} trailing bytes after message")
    return Message(kind, payload)


def parse_messages(frames: Sequence[bytes]) -> list[Message]:
    return [parse_message(frame) for frame in frames]


def frame_sync_step1(state_vector: bytes) -> bytes:
    return b"\x00\x00" + _var_bytes(state_vector)


def frame_sync_step2(update: bytes) -> bytes:
    return b"\x00\x01" + _var_bytes(update)


def frame_update(update: bytes) -> bytes:
    return b"\x00\x02" + _var_bytes(update)


def frame_awareness(awareness_update: bytes) -> bytes:
    return b"\x01" + _var_bytes(awareness_update)


def frame_auth_denied(reason: str) -> bytes:
    return b"\x02\x00" + _var_bytes(reason.encode("utf-8"))


def frame_query_awareness() -> bytes:
    return b"\x03"


def decode_awareness(update: bytes) -> list[AwarenessEntry]:
    count, offset = decode_var_uint(update, 0)
    entries: list[AwarenessEntry] = []
    for _ in range(count):
        client_id, offset = decode_var_uint(update, offset)
        clock, offset = decode_var_uint(update, offset)
        raw_state, offset = _read_var_bytes(update, offset)
        try:
            state = raw_state.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("awareness state is not UTF-8") from exc
        entries.append(AwarenessEntry(client_id, clock, state))
    if offset != len(update):
        raise ProtocolError(f"{len(update) - offset} trailing bytes after awareness update")
    return entries


def encode_awareness(entries: Iterable[AwarenessEntry]) -> bytes:
    items = list(entries)
    out = bytearray(encode_var_uint(len(items)))
    for entry in items:
        out += encode_var_uint(entry.client_id)
        out += encode_var_uint(entry.clock)
        out += _var_bytes(entry.state.encode("utf-8"))
    return bytes(out)


def coalesce_awareness(updates: Sequence[bytes]) -> bytes:
    """Merge awareness updates into one: per client the highest clock wins.

    On equal clocks the later update wins, which matches y-protocols: a removal
    (state ``null``) is sent with the same clock bump as any other change.
    """
    newest: dict[int, AwarenessEntry] = {}
    for update in updates:
        for entry in decode_awareness(update):
            current = newest.get(entry.client_id)
            if current is None or entry.clock >= current.clock:
                newest[entry.client_id] = entry
    return encode_awareness(newest.values())


def frame_message(message: Message) -> bytes:
    """Frame one ``Message``: the inverse of ``parse_message``."""
    kind, payload = message.kind, message.payload
    if kind == MessageKind.SYNC_STEP1:
        return frame_sync_step1(payload)
    if kind == MessageKind.SYNC_STEP2:
        return frame_sync_step2(payload)
    if kind == MessageKind.SYNC_UPDATE:
        return frame_update(payload)
    if kind == MessageKind.AWARENESS:
        return frame_awareness(payload)
    if kind == MessageKind.AUTH:
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("auth reason is not UTF-8") from exc
        return b"\x02\x00" + _var_bytes(payload)
    if kind == MessageKind.QUERY_AWARENESS:
        if payload:
            raise ProtocolError("a query-awareness message carries no payload")
        return frame_query_awareness()
    raise ProtocolError(f"unknown message kind {kind}")


def frame_messages(messages: Iterable[Message]) -> list[bytes]:
    """Frame a batch of messages (the inverse of ``parse_messages``)."""
    return [frame_message(message) for message in messages]
