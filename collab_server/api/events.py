"""Admin endpoints of the change-event publisher: sink status, webhook delivery logs, dead letters.

All need admin on every document (declared in app.py, checked by collab_server/api/access.py).
"""

from __future__ import annotations

import dataclasses

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab_server.api.bodies import MAX_INTEGER, bounded_int, query_int
from collab_server.api.context import state_of
from collab_server.api.errors import error_response
from collab_server.events.publisher import EventPublisher
from collab_server.events.webhooks import WebhookSink, redeliver
from persistence.base import StoreError

MAX_LIMIT = 1000  # rows one events-API call returns at most (dead letters, deliveries): a response-size bound


def publisher_of(request: Request) -> EventPublisher | None:
    return state_of(request).events


def _limit(request: Request) -> int:
    return query_int(request, "limit", 100, 1, MAX_LIMIT)


def _letter(request: Request) -> int:
    return bounded_int(request.path_params["letter"], "letter", 0, MAX_INTEGER)


def _webhook(request: Request, name: str) -> WebhookSink | None:
    publisher = publisher_of(request)
    for runner in publisher.runners if publisher is not None else []:
        if isinstance(runner.sink, WebhookSink) and runner.sink.endpoint.name == name:
            return runner.sink
    return None


async def status(request: Request) -> Response:
    publisher = publisher_of(request)
    return JSONResponse({"enabled": publisher is not None, "sinks": publisher.status() if publisher else {}})


async def deliveries(request: Request) -> Response:
    name = request.path_params["endpoint"]
    sink = _webhook(request, name)
    if sink is None:
        return error_response(404, "unknown_webhook", f"no webhook endpoint named {name!r}")
    limit = _limit(request)
    try:
        records = await sink.store.deliveries(sink.name, limit)
    except StoreError as exc:
        return error_response(503, "store_unavailable", str(exc))
    return JSONResponse({"endpoint": name, "deliveries": [dataclasses.asdict(r) for r in records]})


async def dead_letters(request: Request) -> Response:
    publisher = publisher_of(request)
    if publisher is None:
        return JSONResponse({"dead_letters": []})
    limit = _limit(request)
    endpoint = request.query_params.get("endpoint")
    try:
        letters = await publisher.store.dead_letters(f"webhook:{endpoint}" if endpoint else None, limit)
    except StoreError as exc:
        return error_response(503, "store_unavailable", str(exc))
    return JSONResponse({"dead_letters": [dataclasses.asdict(letter) for letter in letters]})


async def retry_dead_letter(request: Request) -> Response:
    """Deliver a dead letter once more; on success it leaves the list."""
    publisher = publisher_of(request)
    letter_id = _letter(request)
    try:
        letters = await publisher.store.dead_letters(None, 100_000) if publisher else []
    except StoreError as exc:
        return error_response(503, "store_unavailable", str(exc))
    letter = next((item for item in letters if item.id == letter_id), None)
    if letter is None:
        return error_response(404, "unknown_dead_letter", f"no dead letter {letter_id}")
    sink = _webhook(request, letter.sink.removeprefix("webhook:"))
    if sink is None:
        return error_response(409, "unknown_webhook", f"{letter.sink} is no longer configured")
    ok, error = await redeliver(sink, letter)
    if not ok:
        return error_response(502, "delivery_failed", error)
    assert publisher is not None
    await publisher.store.remove_dead_letter(letter.id)
    return JSONResponse({"delivered": letter.event_id})


async def delete_dead_letter(request: Request) -> Response:
    publisher = publisher_of(request)
    letter_id = _letter(request)
    removed = await publisher.store.remove_dead_letter(letter_id) if publisher else None
    if removed is None:
        return error_response(404, "unknown_dead_letter", f"no dead letter {letter_id}")
    return JSONResponse({"removed": dataclasses.asdict(removed)})
