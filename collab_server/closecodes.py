"""Every WebSocket close code the hub sends, with the reason text it sends with it."""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    NORMAL = 1000
    UNSUPPORTED_DATA = 1003  # a text frame: the protocol is binary
    INVALID_PAYLOAD = 1007  # bytes that are not a valid y-protocol message or update
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012  # the hub restarts: reconnect (to this or another node)
    TRY_AGAIN_LATER = 1013  # storage backlog full or commits too slow for a joiner: retry later
    # Application codes (4000-4999), mirroring HTTP statuses where one fits.
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    INVALID_DOCUMENT_NAME = 4400
    SLOW_CONSUMER = 4408  # outbox overflowed: reconnect and re-sync
    TOO_MANY_CONNECTIONS = 4409  # per-document connection limit
    DOCUMENT_DELETED = 4410  # soft-deleted or erased (HTTP 410 Gone); an admin may restore it
    RATE_LIMITED = 4429
    DOCUMENT_TOO_LARGE = 4413
    # Too many bytes held back waiting for missing dependencies (per connection or document).
    DEPENDENCIES_MISSING = 4412
    TOKEN_EXPIRED = 4498  # re-authenticate: the token expired or was revoked
    DOCUMENT_SET_ASIDE = 4500  # the store refused this document's updates: reconnect later and re-send
    DOCUMENT_UNAVAILABLE = 4503  # the document failed to load, or too many documents are loaded


REASONS: dict[CloseCode, str] = {
    CloseCode.NORMAL: "closed",
    CloseCode.UNSUPPORTED_DATA: "text frames are not supported: send binary y-protocol messages",
    CloseCode.INVALID_PAYLOAD: "malformed message",
    CloseCode.MESSAGE_TOO_BIG: "message too big",
    CloseCode.INTERNAL_ERROR: "internal error",
    CloseCode.SERVICE_RESTART: "hub restarting: reconnect",
    CloseCode.TRY_AGAIN_LATER: "storage behind: try again later",
    CloseCode.UNAUTHORIZED: "authentication required",
    CloseCode.FORBIDDEN: "permission denied",
    CloseCode.INVALID_DOCUMENT_NAME: "invalid document name",
    CloseCode.SLOW_CONSUMER: "client too slow: reconnect to re-sync",
    CloseCode.TOO_MANY_CONNECTIONS: "too many connections to this document",
    CloseCode.DOCUMENT_DELETED: "document deleted",
    CloseCode.RATE_LIMITED: "message rate limit exceeded",
    CloseCode.DOCUMENT_SET_ASIDE: "document set aside: the store refused its updates",
    CloseCode.DOCUMENT_UNAVAILABLE: "document unavailable",
    CloseCode.DOCUMENT_TOO_LARGE: "document too large",
    CloseCode.DEPENDENCIES_MISSING: "too many updates waiting for missing dependencies: re-sync",
    CloseCode.TOKEN_EXPIRED: "token expired or revoked: re-authenticate",
}


def reason_for(code: CloseCode, detail: str | None = None) -> str:
    """The close reason: the code's text plus an optional detail, within WebSocket's 123-byte limit."""
    text = REASONS[code] if detail is None else f"{REASONS[code]}: {detail}"
    encoded = text.encode("utf-8")
    if len(encoded) <= 123:
        return text
    return encoded[:120].decode("utf-8", errors="ignore") + "..."
