"""The Hocuspocus wire format (pure encode/decode, no I/O).

Every Hocuspocus message is an envelope: the document name (a y-protocols ``varString``),
then a message type (``varUint``), then the body. Types 0 (sync), 1 (awareness) and 3
(query awareness) carry exactly the y-protocols body, so ``envelope + y-protocols frame``
is a Hocuspocus message and the hub's own frames are forwarded with only a prefix.
Type 2 differs from y-protocols: its sub-type 0 carries a token (client → hub), 1 a
permission-denied reason and 2 the granted scope (hub → client).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import crdt_core
from crdt_core import ProtocolError


class MessageType(enum.IntEnum):
    SYNC = 0
    AWARENESS = 1
    AUTH = 2
    QUERY_AWARENESS = 3
    SYNC_REPLY = 4  # a sync message that must not trigger another sync step 1
    STATELESS = 5
    BROADCAST_STATELESS = 6
    CLOSE = 7
    SYNC_STATUS = 8


# Provider 4.x: a bare one-byte message (no envelope) pings the other side, which answers Pong.
PING = b"\x09"
PONG = b"\x0a"
# Provider 4.x with ``sessionAwareness``: the envelope names "document\0session", so one socket
# can hold several sessions of the same document.
SESSION_SEPARATOR = "\0"


def split_routing_key(key: str) -> tuple[str, str | None]:
    """(document, session) of an envelope's name; session is None without a separator."""
    document, separator, session = key.partition(SESSION_SEPARATOR)
    return document, (session if separator else None)


class AuthType(enum.IntEnum):
    TOKEN = 0
    PERMISSION_DENIED = 1
    AUTHENTICATED = 2


SCOPE_READ_ONLY = "readonly"
SCOPE_READ_WRITE = "read-write"


@dataclass(frozen=True, slots=True)
class Envelope:
    """One received message: the document it is for, its type, and where its frame starts.

    ``frame`` starts at the type byte, so for sync and awareness it is a y-protocols frame.
    """

    document: str
    type: int
    frame: bytes
    body_offset: int  # offset of the body inside ``frame`` (after the type)


def read_var_string(data: bytes, offset: int) -> tuple[str, int]:
    size, offset = crdt_core.decode_var_uint(data, offset)
    end = offset + size
    if end > len(data):
        raise ProtocolError(f"string of {size} bytes runs past the end of the message")
    try:
        return data[offset:end].decode("utf-8"), end
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"string is not UTF-8: {exc}") from exc


def var_string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return crdt_core.encode_var_uint(len(raw)) + raw


def parse_document_name(data: bytes) -> tuple[str, int]:
    """The document name an envelope starts with, and the offset after it.

    Raises ProtocolError when not even the name can be read: such a message cannot be
    attributed to a document, so only the whole socket can be told.
    """
    return read_var_string(data, 0)


def parse_envelope(data: bytes) -> Envelope:
    name, offset = parse_document_name(data)
    if offset >= len(data):
        raise ProtocolError("envelope without a message type")
    kind, body = crdt_core.decode_var_uint(data, offset)
    return Envelope(name, kind, data[offset:], body - offset)


def token_of(envelope: Envelope) -> str | None:
    """The token of an auth message (sub-type 0), or None for any other auth sub-type."""
    kind, offset = crdt_core.decode_var_uint(envelope.frame, envelope.body_offset)
    if kind != AuthType.TOKEN:
        return None
    token, _ = read_var_string(envelope.frame, offset)
    return token


def stateless_payload(envelope: Envelope) -> str:
    payload, _ = read_var_string(envelope.frame, envelope.body_offset)
    return payload


def prefix(document: str) -> bytes:
    """The envelope bytes of ``document``: prepend them to a y-protocols frame."""
    return var_string(document)


def authenticated(document: str, *, read_only: bool) -> bytes:
    scope = SCOPE_READ_ONLY if read_only else SCOPE_READ_WRITE
    return prefix(document) + bytes((MessageType.AUTH, AuthType.AUTHENTICATED)) + var_string(scope)


def permission_denied(document: str, reason: str) -> bytes:
    return prefix(document) + bytes((MessageType.AUTH, AuthType.PERMISSION_DENIED)) + var_string(reason)


def sync_status(document: str, *, applied: bool) -> bytes:
    return prefix(document) + bytes((MessageType.SYNC_STATUS, 1 if applied else 0))


def stateless(document: str, payload: str) -> bytes:
    return prefix(document) + bytes((MessageType.STATELESS,)) + var_string(payload)


def close(document: str, code: int, reason: str) -> bytes:
    """Close one document on the socket. The provider only reads a reason, so the code leads it."""
    return prefix(document) + bytes((MessageType.CLOSE,)) + var_string(f"{code} {reason}")
