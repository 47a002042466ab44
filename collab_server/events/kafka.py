"""The Kafka sink: one topic per deployment, key = document name, acks from all replicas.

The producer is idempotent (``enable_idempotence``), so its own retries never reorder or
duplicate within a session; a batch that fails is re-sent from the store's cursor by the
publisher (duplicates then carry the same event id). Security options (SASL, TLS) are
passed through to aiokafka.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from collab_server.events.envelope import Event
from collab_server.events.sink import SinkUnavailable
from collab_server.settings import KafkaSaslMechanism, KafkaSecurityProtocol

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class KafkaOptions:
    brokers: str
    topic: str = "nova.events"
    security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    sasl_mechanism: KafkaSaslMechanism = ""
    sasl_username: str = ""
    sasl_password: str = ""
    ssl_cafile: str = ""
    client_id: str = "nova-collab"
    send_timeout_seconds: float = 15.0  # one batch; then the broker is treated as unavailable

    def producer_arguments(self) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "bootstrap_servers": [b.strip() for b in self.brokers.split(",") if b.strip()],
            "client_id": self.client_id,
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": 0,
            "request_timeout_ms": 10_000,
            "retry_backoff_ms": 200,
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            arguments["sasl_mechanism"] = self.sasl_mechanism
            arguments["sasl_plain_username"] = self.sasl_username
            arguments["sasl_plain_password"] = self.sasl_password
        if "SSL" in self.security_protocol:
            arguments["ssl_context"] = ssl.create_default_context(cafile=self.ssl_cafile or None)
        return arguments


class KafkaSink:
    def __init__(self, options: KafkaOptions, name: str = "kafka") -> None:
        self.name = name
        self.options = options
        self._producer: Any = None

    def __repr__(self) -> str:
        return f"KafkaSink({self.options.brokers} topic {self.options.topic!r})"

    def wants(self, event: Event) -> bool:
        return True

    async def _connected(self) -> Any:
        if self._producer is None:
            from aiokafka import AIOKafkaProducer

            producer = AIOKafkaProducer(**self.options.producer_arguments())
            try:
                await producer.start()
            except Exception as exc:
                await _quietly_stop(producer)
                raise SinkUnavailable(f"{self!r}: cannot connect: {exc!r}") from exc
            self._producer = producer
            logger.info("events: connected to Kafka at %s", self.options.brokers)
        return self._producer

    async def publish(self, events: Sequence[Event]) -> None:
        if not events:
            return
        producer = await self._connected()
        try:
            async with asyncio.timeout(self.options.send_timeout_seconds):
                # Queue every message first (ordered per partition), then wait for all acks.
                pending = [
                    await producer.send(self.options.topic, event.encode(), key=event.key.encode())
                    for event in events
                ]
                await asyncio.gather(*pending)
        except Exception as exc:
            # Start afresh next time: a producer that failed mid-batch may hold stale state.
            await self.close()
            raise SinkUnavailable(f"{self!r}: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await _quietly_stop(producer)


async def _quietly_stop(producer: Any) -> None:
    try:
        async with asyncio.timeout(5.0):
            await asyncio.shield(producer.stop())
    except Exception as exc:  # stopping a producer whose broker is gone may fail; nothing to save
        logger.debug("events: Kafka producer stop failed: %s", exc)
