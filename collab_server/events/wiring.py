"""Chooses the event sinks from the settings and runs the publisher for the hub's lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx

from collab_server.events.kafka import KafkaOptions, KafkaSink
from collab_server.events.publisher import EventPublisher, PublisherOptions
from collab_server.events.sink import EventSink
from collab_server.events.webhooks import RetryPolicy, WebhookSink, parse_endpoints
from collab_server.hub import Hub
from collab_server.settings import Settings

logger = logging.getLogger(__name__)


def publisher_options(settings: Settings) -> PublisherOptions:
    return PublisherOptions(
        node_id=settings.node_id,
        window_seconds=settings.events_window_ms / 1000.0,
        poll_seconds=settings.events_poll_ms / 1000.0,
        partitions=settings.events_partitions,
        max_backlog_per_document=settings.events_max_backlog,
        text_fields=tuple(f.strip() for f in settings.events_text_fields.split(",") if f.strip()),
    )


def kafka_options(settings: Settings) -> KafkaOptions:
    return KafkaOptions(
        brokers=settings.events_kafka_brokers,
        topic=settings.events_kafka_topic,
        security_protocol=settings.events_kafka_security_protocol,
        sasl_mechanism=settings.events_kafka_sasl_mechanism,
        sasl_username=settings.events_kafka_sasl_username,
        sasl_password=settings.events_kafka_sasl_password,
        ssl_cafile=settings.events_kafka_ssl_cafile,
        send_timeout_seconds=settings.events_kafka_send_timeout_seconds,
        client_id=f"nova-collab-{settings.node_id}",
    )


@contextlib.asynccontextmanager
async def running_events(settings: Settings, hub: Hub) -> AsyncIterator[EventPublisher | None]:
    """The publisher, running while the context is open; None when no sink is configured."""
    endpoints = parse_endpoints(settings.webhooks)
    if not settings.events_kafka_brokers and not endpoints:
        yield None
        return
    async with httpx.AsyncClient(follow_redirects=False) as client:
        sinks: list[EventSink] = []
        if settings.events_kafka_brokers:
            sinks.append(KafkaSink(kafka_options(settings)))
        policy = RetryPolicy(
            max_attempts=settings.webhook_max_attempts,
            backoff_seconds=settings.webhook_backoff_ms / 1000.0,
            timeout_seconds=settings.webhook_timeout_seconds,
        )
        sinks += [WebhookSink(endpoint, hub.store, client, policy) for endpoint in endpoints]
        publisher = EventPublisher(
            hub.store, sinks, publisher_options(settings), hub.metrics.registry, hub.writer
        )
        hub.compactions.limit = publisher.compaction_limit
        logger.info("change events: publishing to %s", ", ".join(runner.name for runner in publisher.runners))
        task = asyncio.create_task(publisher.run(), name="events")
        try:
            yield publisher
        finally:
            hub.compactions.limit = None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
