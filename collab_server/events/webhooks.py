"""Webhook sinks: each endpoint gets the same JSON envelope by HTTP POST, signed.

Signature: header ``Nova-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.
A receiver recomputes it over the raw body and refuses a timestamp outside its replay
window (``verify`` does both). Each endpoint is its own sink (its own cursor, so a slow
one never holds back Kafka or another endpoint), filters events by type and document
glob, retries with exponential backoff, and after ``max_attempts`` puts the event in the
dead-letter list (admin API) and goes on. Every attempt lands in the delivery log.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from collab_server.events.envelope import EVENT_TYPES, Event
from persistence.base import DeadLetter, DeliveryRecord, Store, StoreError

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Nova-Signature"
EVENT_ID_HEADER = "Nova-Event-Id"
EVENT_TYPE_HEADER = "Nova-Event-Type"
DEFAULT_TOLERANCE_SECONDS = 300.0


class InvalidSignature(Exception):
    pass


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(
    secret: str,
    body: bytes,
    header: str,
    *,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Raise InvalidSignature unless ``header`` signs ``body`` with ``secret`` within the window."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        raise InvalidSignature("no timestamp in the signature header") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise InvalidSignature(f"timestamp {timestamp} is outside the {tolerance_seconds:.0f}s window")
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, parts.get("v1", "")):
        raise InvalidSignature("signature does not match")


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    url: str
    secret: str
    events: tuple[str, ...] = ()  # event types; empty: all
    documents: tuple[str, ...] = ()  # document globs; empty: all

    def wants(self, event: Event) -> bool:
        if self.events and event.type not in self.events:
            return False
        if self.documents:
            return event.document is not None and any(
                fnmatch.fnmatchcase(event.document, pattern) for pattern in self.documents
            )
        return True


def parse_endpoints(text: str) -> list[Endpoint]:
    """Endpoints from JSON: ``[{"name", "url", "secret", "events": [...], "documents": [...]}]``."""
    if not text.strip():
        return []
    if text.strip().startswith("@"):
        with open(text.strip()[1:], encoding="utf-8") as handle:
            text = handle.read()
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"webhooks must be a JSON list of endpoints: {exc}") from None
    if not isinstance(raw, list):
        raise ValueError("webhooks must be a JSON list of endpoints")  # noqa: TRY004
    endpoints = []
    for item in raw:
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) for k in ("name", "url", "secret")
        ):
            raise ValueError("each webhook needs string 'name', 'url' and 'secret'")
        if not item["url"].startswith(("http://", "https://")):
            raise ValueError(f"webhook {item['name']!r}: url must be http:// or https://")
        events = tuple(item.get("events") or ())
        unknown = set(events) - set(EVENT_TYPES)
        if unknown:
            raise ValueError(f"webhook {item['name']!r}: unknown event types {sorted(unknown)}")
        endpoints.append(
            Endpoint(item["name"], item["url"], item["secret"], events, tuple(item.get("documents") or ()))
        )
    names = [endpoint.name for endpoint in endpoints]
    if len(set(names)) != len(names):
        raise ValueError("webhook names must be unique")
    return endpoints


@dataclass
class RetryPolicy:
    max_attempts: int = 8
    backoff_seconds: float = 0.5  # doubled after each failure
    max_backoff_seconds: float = 60.0
    timeout_seconds: float = 10.0


@dataclass
class WebhookStats:
    delivered: int = 0
    failed_attempts: int = 0
    dead_lettered: int = 0
    last_error: str | None = None
    recent: list[DeliveryRecord] = field(default_factory=list)


class WebhookSink:
    def __init__(
        self, endpoint: Endpoint, store: Store, client: httpx.AsyncClient, policy: RetryPolicy
    ) -> None:
        self.endpoint = endpoint
        self.name = f"webhook:{endpoint.name}"
        self.store = store
        self._client = client
        self._policy = policy
        self.stats = WebhookStats()

    def __repr__(self) -> str:
        return f"WebhookSink({self.endpoint.name} -> {self.endpoint.url})"

    def wants(self, event: Event) -> bool:
        return self.endpoint.wants(event)

    async def publish(self, events: Sequence[Event]) -> None:
        for event in events:
            if self.wants(event):
                await self._deliver(event)

    async def _deliver(self, event: Event) -> None:
        body = event.encode()
        backoff = self._policy.backoff_seconds
        error = ""
        for attempt in range(1, self._policy.max_attempts + 1):
            ok, status, error, took = await self.post(event, body)
            await self.record(
                DeliveryRecord(self.name, event.id, event.type, attempt, time.time(), ok, status, error, took)
            )
            if ok:
                self.stats.delivered += 1
                return
            self.stats.failed_attempts += 1
            self.stats.last_error = error
            if attempt < self._policy.max_attempts:
                logger.warning(
                    "webhook %s: event %s attempt %d failed (%s); retrying in %.2fs",
                    self.endpoint.name,
                    event.id,
                    attempt,
                    error,
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._policy.max_backoff_seconds)
        letter = DeadLetter(
            0,
            self.name,
            event.id,
            event.type,
            event.document,
            body.decode(),
            error,
            self._policy.max_attempts,
            time.time(),
        )
        await self.store.add_dead_letter(letter)  # a StoreError propagates: the event is offered again
        self.stats.dead_lettered += 1
        logger.error(
            "webhook %s: event %s dead-lettered after %d attempts: %s",
            self.endpoint.name,
            event.id,
            self._policy.max_attempts,
            error,
        )

    async def post(self, event: Event, body: bytes) -> tuple[bool, int | None, str, float]:
        """One signed POST: (ok, status, error, milliseconds)."""
        headers = {
            "content-type": "application/json",
            SIGNATURE_HEADER: sign(self.endpoint.secret, body, int(time.time())),
            EVENT_ID_HEADER: event.id,
            EVENT_TYPE_HEADER: event.type,
        }
        started = time.perf_counter()
        try:
            response = await self._client.post(
                self.endpoint.url, content=body, headers=headers, timeout=self._policy.timeout_seconds
            )
        except httpx.HTTPError as exc:
            return False, None, f"{type(exc).__name__}: {exc}", (time.perf_counter() - started) * 1000
        took = (time.perf_counter() - started) * 1000
        if 200 <= response.status_code < 300:
            return True, response.status_code, "", took
        return False, response.status_code, f"HTTP {response.status_code}", took

    async def record(self, record: DeliveryRecord) -> None:
        try:
            await self.store.record_deliveries([record])
        except StoreError as exc:  # the delivery itself is not undone by a missing log line
            logger.warning("webhook %s: delivery log write failed: %s", self.endpoint.name, exc)

    async def close(self) -> None:
        return None


async def redeliver(sink: WebhookSink, letter: DeadLetter) -> tuple[bool, str]:
    """One signed attempt of a dead letter's stored envelope (admin retry)."""
    event_view = Event(letter.event_id, letter.event_type, letter.document, letter.at, "")
    ok, status, error, took = await sink.post(event_view, letter.payload.encode())
    await sink.record(
        DeliveryRecord(
            sink.name,
            letter.event_id,
            letter.event_type,
            letter.attempts + 1,
            time.time(),
            ok,
            status,
            error,
            took,
        )
    )
    return ok, error
