"""Archive endpoints: status, an archive pass on demand, and restoring one document from the
archive to a point in time (a seq or a timestamp), as a live edit or as a copy."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import crdt_core
from collab_server.api.access import actor_of, caller, document_of
from collab_server.api.bodies import optional_string, read_json_object
from collab_server.api.context import state_of
from collab_server.api.durability import committed, require_store
from collab_server.api.edits import DEFAULT_TEXT, MAX_FIELD_CHARS
from collab_server.api.errors import ApiError
from collab_server.api.history import restore_text
from collab_server.archiving import ArchiveService
from collab_server.auth import Role
from collab_server.document_access import MAX_ACTOR_CHARS, RoleMissing, require_role
from collab_server.document_names import InvalidDocumentName, check_document_name
from persistence.archive.archiver import version_parts
from persistence.encryption.store import keys_of, open_with_key


def _service(request: Request) -> ArchiveService:
    archive = state_of(request).archive
    if archive is None:
        raise ApiError(409, "archive_not_configured", "this hub has no archive (--archive)")
    return archive


async def status(request: Request) -> Response:
    return JSONResponse(_service(request).status())


async def archive_now(request: Request) -> Response:
    report = await _service(request).archive_now()
    return JSONResponse(
        {
            "documents": report.documents,
            "unchanged": report.unchanged,
            "objects": report.objects,
            "bytes": report.bytes,
            "seconds": report.seconds,
        }
    )


def _point(data: dict[str, Any]) -> tuple[int | None, float | None]:
    seq, at = data.get("seq"), data.get("at")
    if (seq is None) == (at is None):
        raise ApiError(400, "invalid_request", "give exactly one of 'seq' (a version) or 'at' (unix seconds)")
    if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool) or seq < 0):
        raise ApiError(400, "invalid_request", "'seq' must be a non-negative integer")
    if at is not None and (not isinstance(at, int | float) or isinstance(at, bool)):
        raise ApiError(400, "invalid_request", "'at' must be a number (unix seconds)")
    return seq, None if at is None else float(at)


async def restore_from_archive(request: Request) -> Response:
    """``{"seq": N}`` or ``{"at": UNIX}``; ``"as": "live"`` (default: the text becomes that
    version's, as a new edit everyone sees) or ``"copy"`` with ``"target"`` (a new document)."""
    name = document_of(request)
    data = await read_json_object(request)
    seq, at = _point(data)
    mode = data.get("as", "live")
    if mode not in ("live", "copy"):
        raise ApiError(400, "invalid_request", "'as' must be 'live' or 'copy'")
    who = actor_of(request, optional_string(data, "actor", MAX_ACTOR_CHARS), "archive-restore")
    service = _service(request)
    manifest = await service.archiver.manifest(name)
    if manifest is None:
        raise ApiError(404, "not_archived", f"{name!r} has no archive")
    export = await service.archiver.read_export(manifest)
    version, stored = version_parts(export, seq=seq, at=at)
    parts = open_with_key(stored, export.data_key, keys_of(state_of(request).store))
    require_store(state_of(request).durability)
    if mode == "live":
        field = optional_string(data, "field", MAX_FIELD_CHARS, default=DEFAULT_TEXT) or DEFAULT_TEXT
        changed = await restore_text(
            state_of(request).documents, state_of(request).durability, name, parts, field=field, who=who
        )
        state_of(request).access.record(
            "archive-restore", who, name, f"to version {version} from the archive"
        )
        return JSONResponse({"document": name, "restored_from": version, "changed": changed})
    target = await _empty_target(request, data)
    state = crdt_core.merge_updates(parts.parts)
    async with state_of(request).documents.using(target) as room:
        room.apply_update(state, None, who)
        await committed(state_of(request).durability, target)
    state_of(request).access.record(
        "archive-restore", who, target, f"copy of {name!r} at version {version} from the archive"
    )
    return JSONResponse({"document": target, "copied_from": name, "version": version})


async def _empty_target(request: Request, data: dict[str, Any]) -> str:
    raw = data.get("target")
    if not isinstance(raw, str):
        raise ApiError(
            400, "invalid_request", "'target' (the new document's name) is required with 'as': 'copy'"
        )
    try:
        target = check_document_name(raw)
    except InvalidDocumentName as exc:
        raise ApiError(400, "invalid_document_name", str(exc)) from exc
    try:
        require_role(
            state_of(request).access, caller(request), target, Role.WRITE, "http archive restore into"
        )
    except RoleMissing:
        raise ApiError(403, "forbidden", f"this token may not write {target!r}") from None
    if state_of(request).lifecycle.is_deleted(target) or await state_of(request).documents.exists(target):
        raise ApiError(409, "target_exists", f"{target!r} already exists: copy into a new document")
    return target
