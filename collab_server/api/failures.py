"""The hub's own exceptions as HTTP errors: one table, used by the app for every endpoint."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from collab_server.api.errors import ApiError, error_response
from collab_server.documents import DocumentUnavailable, HubStopping, TooManyConnections
from collab_server.lifecycle import NotDeleted, UnknownDocument
from collab_server.pending import PendingLimitExceeded
from collab_server.rebase import Conflict, EditError
from collab_server.room import DocumentTooLarge
from persistence.archive.base import ArchiveUnavailable
from persistence.archive.manifest import ArchiveCorrupt
from persistence.base import CorruptDocument, StoreError, UnknownVersion
from persistence.group_commit import BacklogFull

Handler = Callable[[Request, Exception], Awaitable[Response]]

# exception -> (status, code); the message is the exception's own.
_TABLE: dict[type[Exception], tuple[int, str]] = {
    UnknownVersion: (404, "unknown_version"),
    UnknownDocument: (404, "unknown_document"),
    NotDeleted: (404, "not_deleted"),
    ArchiveUnavailable: (503, "archive_unavailable"),
    ArchiveCorrupt: (500, "archive_corrupt"),
    DocumentTooLarge: (413, "document_too_large"),
    PendingLimitExceeded: (413, "dependencies_missing"),
    TooManyConnections: (429, "too_many_connections"),
    BacklogFull: (503, "try_again_later"),
    DocumentUnavailable: (503, "document_unavailable"),
    HubStopping: (503, "document_unavailable"),
    CorruptDocument: (500, "corrupt_document"),
    StoreError: (503, "store_unavailable"),
}


async def _from_table(_request: Request, exc: Exception) -> Response:
    for kind in type(exc).__mro__:
        if kind in _TABLE:
            status, code = _TABLE[kind]
            return error_response(status, code, str(exc) or kind.__name__)
    raise exc


async def _edit_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EditError)
    return error_response(400, exc.code, str(exc))


async def _conflict(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Conflict)
    return error_response(
        409,
        "conflict",
        str(exc),
        range={"start": exc.start, "end": exc.end},
        expected=exc.expected,
        found=exc.found,
    )


def domain_error_handlers() -> dict[type[Exception], Handler]:
    handlers: dict[type[Exception], Handler] = dict.fromkeys(_TABLE, _from_table)
    handlers[EditError] = _edit_error
    handlers[Conflict] = _conflict
    return handlers


__all__ = ["ApiError", "domain_error_handlers"]
