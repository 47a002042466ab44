"""Per-method gRPC metrics on the hub's own registry (``/metrics``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class CallOutcome:
    code: str = "OK"


class GrpcMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.calls = Counter(
            "nova_grpc_calls_total",
            "gRPC calls finished, by method and status code",
            ["method", "code"],
            registry=registry,
        )
        self.seconds = Histogram(
            "nova_grpc_call_seconds",
            "Duration of unary gRPC calls (streams: their whole life)",
            ["method"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 10.0, 60.0),
            registry=registry,
        )
        self.open_streams = Gauge(
            "nova_grpc_open_streams", "Open gRPC streams", ["method"], registry=registry
        )

    @contextmanager
    def call(self, method: str, *, stream: bool = False) -> Iterator[CallOutcome]:
        outcome = CallOutcome()
        started = time.perf_counter()
        if stream:
            self.open_streams.labels(method).inc()
        try:
            yield outcome
        except BaseException as exc:
            if outcome.code == "OK":
                outcome.code = "CANCELLED" if type(exc).__name__ == "CancelledError" else "UNKNOWN"
            raise
        finally:
            if stream:
                self.open_streams.labels(method).dec()
            self.calls.labels(method, outcome.code).inc()
            self.seconds.labels(method).observe(time.perf_counter() - started)
