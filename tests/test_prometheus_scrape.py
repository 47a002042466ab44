"""A real Prometheus server (Debian's `prometheus`, scripts/install_prometheus.sh) scraping a
real hub process: the metrics the dashboard and alerts in docker/ read arrive in Prometheus
with the values the hub has, and every dashboard and alert query is one Prometheus accepts.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
import yaml

from tests.support.hub import HubProcess, free_port

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
JOB = "nova-hub-test"
SCRAPE_INTERVAL = "1s"
READY_TIMEOUT_SECONDS = 15.0
SCRAPE_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0
# Grafana's interval variables, replaced by a window that holds a few 1 s scrapes.
GRAFANA_VARIABLES = {"$__rate_interval": "15s", "$__interval": "15s", "$__range": "1m"}


class PrometheusServer:
    """`prometheus` on a free loopback port with a generated config; data in ``workdir``."""

    def __init__(self, workdir: Path, targets: list[str]) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.config_path = workdir / "prometheus.yml"
        self.log_path = workdir / "prometheus.log"
        self.targets = targets
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PrometheusServer:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail("prometheus is not installed; run scripts/install_prometheus.sh")
        config = {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "scrape_timeout": SCRAPE_INTERVAL},
            "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": self.targets}]}],
        }
        self.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=log,
                cwd=self.workdir,
            )
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"prometheus not ready within {READY_TIMEOUT_SECONDS}s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_SECONDS)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def prometheus(tmp_path: Path, memory_hub: HubProcess) -> Iterator[PrometheusServer]:
    workdir = tmp_path / "prometheus"
    workdir.mkdir()
    server = PrometheusServer(workdir, [f"127.0.0.1:{memory_hub.port}"]).start()
    yield server
    server.stop()


async def query(client: httpx.AsyncClient, expression: str) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/query", params={"query": expression})
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", f"{expression}: {body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


async def wait_for_value(
    client: httpx.AsyncClient, expression: str, expected: float, timeout: float = SCRAPE_TIMEOUT_SECONDS
) -> None:
    """Poll Prometheus until ``expression`` has exactly one series, equal to ``expected``."""
    deadline = time.monotonic() + timeout
    seen: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        seen = await query(client, expression)
        if len(seen) == 1 and float(seen[0]["value"][1]) == expected:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{expression} did not become {expected} within {timeout}s; last result {seen}")


def dashboard_and_alert_expressions() -> list[str]:
    dashboard = json.loads((DOCKER / "grafana" / "dashboards" / "nova.json").read_text(encoding="utf-8"))
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    alerts = yaml.safe_load((DOCKER / "alerts.yml").read_text(encoding="utf-8"))
    expressions += [str(rule["expr"]) for group in alerts["groups"] for rule in group["rules"]]
    for variable, window in GRAFANA_VARIABLES.items():
        expressions = [expression.replace(variable, window) for expression in expressions]
    return expressions


async def test_prometheus_scrapes_the_hub(prometheus: PrometheusServer, memory_hub: HubProcess) -> None:
    async with httpx.AsyncClient(base_url=prometheus.url, timeout=5) as client:
        await wait_for_value(client, f'up{{job="{JOB}"}}', 1)
        await wait_for_value(client, f'nova_connections{{job="{JOB}"}}', 0)
        async with websockets.connect(memory_hub.url("scraped-document")):
            # The hub's gauge moves, and Prometheus sees it at the next scrape.
            await wait_for_value(client, f'nova_connections{{job="{JOB}"}}', 1)
            await wait_for_value(client, f'nova_documents_loaded{{job="{JOB}"}}', 1)
        await wait_for_value(client, f'nova_connections{{job="{JOB}"}}', 0)
        series = await query(client, f'{{job="{JOB}", __name__=~"nova_.*"}}')
        names = {entry["metric"]["__name__"] for entry in series}
        assert {"nova_store_healthy", "nova_persist_backlog", "nova_fanout_seconds_bucket"} <= names


async def test_prometheus_accepts_every_dashboard_and_alert_query(prometheus: PrometheusServer) -> None:
    expressions = dashboard_and_alert_expressions()
    assert len(expressions) > 10
    async with httpx.AsyncClient(base_url=prometheus.url, timeout=5) as client:
        for expression in expressions:
            await query(client, expression)  # a parse or type error is a 400 with status "error"
        with pytest.raises(AssertionError, match="bad_data"):
            await query(client, "sum(rate(nova_updates_in_total))")  # rate() needs a range
