"""gRPC errors: a standard status code plus a ``google.rpc.ErrorInfo`` detail whose reason is
the HTTP API's error code, so a client handles both APIs' failures the same way."""

from __future__ import annotations

from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from collab_server.documents import DocumentUnavailable, HubStopping, TooManyConnections
from collab_server.pending import PendingLimitExceeded
from collab_server.rebase import Conflict, EditError
from collab_server.room import DocumentTooLarge, JoinWaitExpired
from crdt_core import ProtocolError
from persistence.base import StoreError, UnknownVersion
from persistence.group_commit import BacklogFull

DOMAIN = "nova.collab"

# The HTTP statuses the API answers with, as gRPC codes (gRPC's own HTTP mapping, with 409 as
# ABORTED: a concurrency conflict the caller resolves by re-reading).
CODE_FOR_HTTP_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ABORTED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    503: grpc.StatusCode.UNAVAILABLE,
}


class RpcFailure(Exception):
    """An answer that is not a success: HTTP-style status and code, message, detail metadata."""

    def __init__(self, http_status: int, reason: str, message: str, **metadata: object) -> None:
        super().__init__(message)
        self.code = CODE_FOR_HTTP_STATUS.get(http_status, grpc.StatusCode.UNKNOWN)
        self.reason = reason
        self.message = message
        self.metadata = {key: str(value) for key, value in metadata.items()}

    def status(self) -> grpc.Status:
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN, metadata=self.metadata))
        proto = status_pb2.Status(code=self.code.value[0], message=self.message, details=[detail])
        status: grpc.Status = rpc_status.to_status(proto)
        return status


def invalid(message: str, reason: str = "invalid_request") -> RpcFailure:
    return RpcFailure(400, reason, message)


def translate(exc: BaseException) -> RpcFailure | None:
    """The failure the HTTP API would answer for ``exc`` (None: not an expected error)."""
    if isinstance(exc, RpcFailure):
        return exc
    api_status = getattr(exc, "status", None)
    api_code = getattr(exc, "code", None)
    if isinstance(api_status, int) and isinstance(api_code, str):  # the HTTP layer's ApiError
        return RpcFailure(api_status, api_code, str(exc), **getattr(exc, "extra", {}))
    if isinstance(exc, Conflict):
        return RpcFailure(
            409, "conflict", str(exc), start=exc.start, end=exc.end, expected=exc.expected, found=exc.found
        )
    if isinstance(exc, EditError):
        return RpcFailure(400, exc.code, str(exc))
    if isinstance(exc, UnknownVersion):
        return RpcFailure(404, "unknown_version", str(exc))
    if isinstance(exc, DocumentTooLarge):
        return RpcFailure(413, "document_too_large", str(exc))
    if isinstance(exc, PendingLimitExceeded):  # a socket gets close 4412 for the same
        return RpcFailure(413, "dependencies_missing", str(exc))
    if isinstance(exc, ProtocolError):
        return RpcFailure(400, "invalid_message", str(exc))
    if isinstance(exc, (BacklogFull, JoinWaitExpired)):
        return RpcFailure(503, "try_again_later", str(exc))
    if isinstance(exc, TooManyConnections):
        return RpcFailure(429, "too_many_connections", f"document {exc} has too many connections")
    if isinstance(exc, (DocumentUnavailable, HubStopping, StoreError)):
        return RpcFailure(503, "document_unavailable", str(exc) or type(exc).__name__)
    return None


async def abort(context: grpc.aio.ServicerContext[Any, Any], failure: RpcFailure) -> NoReturn:
    await context.abort_with_status(failure.status())
    raise AssertionError("unreachable: abort_with_status raises")  # for the type checker


def failure_of(error: grpc.aio.AioRpcError | grpc.RpcError) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    """Client side: (code, reason, metadata) of a failed call."""
    status = rpc_status.from_call(error)
    code: grpc.StatusCode = error.code()
    if status is not None:
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                return code, info.reason, dict(info.metadata)
    return code, "", {}
