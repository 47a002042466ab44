"""Prometheus metrics of one hub, on a registry of its own (no process-global state)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric

# Series with this label name a document: shown only to an authorised scraper (README, Security).
DOCUMENT_LABEL = "document"


@dataclass
class HubMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.connections = Gauge("nova_connections", "Open WebSocket connections", registry=r)
        self.documents_loaded = Gauge("nova_documents_loaded", "Documents held in memory", registry=r)
        self.updates_in = Counter(
            "nova_updates_in_total", "Document updates received and applied", registry=r
        )
        self.remote_updates_in = Counter(
            "nova_remote_updates_in_total",
            "Document updates received from other hub nodes (relayed to this node's clients)",
            registry=r,
        )
        self.remote_updates_applied = Counter(
            "nova_remote_updates_applied_total",
            "Updates from other hub nodes integrated into this node's copy (only when its state is needed)",
            registry=r,
        )
        self.updates_out = Counter("nova_updates_out_total", "Document frames queued to clients", registry=r)
        self.bytes_in = Counter("nova_bytes_in_total", "Bytes received in WebSocket messages", registry=r)
        self.bytes_out = Counter("nova_bytes_out_total", "Bytes sent in WebSocket messages", registry=r)
        self.awareness_in = Counter("nova_awareness_in_total", "Awareness messages received", registry=r)
        self.fanout_seconds = Histogram(
            "nova_fanout_seconds",
            "Time from receiving an update to queueing it for every other client",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        self.outbox_merges = Counter("nova_outbox_merges_total", "Slow-client outbox merges", registry=r)
        self.closes = Counter("nova_closes_total", "Connections closed by the hub", ["code"], registry=r)
        self.persist_backlog = Gauge(
            "nova_persist_backlog", "Updates accepted but not yet stored", registry=r
        )
        self.persist_healthy = Gauge(
            "nova_store_healthy", "1 when the last store write succeeded", registry=r
        )
        self.last_persisted = Gauge(
            "nova_last_persisted_timestamp_seconds",
            "When the newest update of a loaded document was stored (unix time)",
            ["document"],
            registry=r,
        )
        self.compactions = Counter("nova_compactions_total", "Compactions completed", registry=r)
        self.documents_set_aside = Counter(
            "nova_documents_set_aside_total",
            "Documents set aside because the store refused their updates (clients closed with 4500)",
            registry=r,
        )
        self.audit_dropped = Gauge(
            "nova_audit_events_dropped", "Audit events dropped while the store was down", registry=r
        )
        self.load_failures = Counter("nova_document_load_failures_total", "Failed document loads", registry=r)

    def exposition(self, *, per_document: bool) -> bytes:
        """The text exposition; without ``per_document`` every series naming a document is left out."""
        return generate_latest(self.registry if per_document else _AggregatesOnly(self.registry))


class _AggregatesOnly:
    """A view of a registry without the series that carry a document label."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            kept = [sample for sample in family.samples if DOCUMENT_LABEL not in sample.labels]
            if kept or not family.samples:
                trimmed = Metric(family.name, family.documentation, family.type, family.unit)
                trimmed.samples = kept
                yield trimmed
