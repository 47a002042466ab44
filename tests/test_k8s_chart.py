"""The Helm chart in deploy/helm, validated offline: helm's lint, every rendered manifest
strictly decoded into the official Kubernetes API types of the pinned version (the
nova-chart-check program built by scripts/install_k8s_tools.sh), and the topology checked."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_deployment_files import serve_env_options

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "deploy" / "helm" / "nova-collab"
CHECKER = (
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    / "nova-collab"
    / "bin"
    / "nova-chart-check"
)
VALUES = ("values-trial.yaml", "values-production.yaml")


def check(*args: str) -> subprocess.CompletedProcess[str]:
    if not CHECKER.is_file():
        raise RuntimeError(f"{CHECKER} is missing: run scripts/setup.sh (scripts/install_k8s_tools.sh)")
    return subprocess.run([str(CHECKER), *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("rendered")
    args = ["-chart", str(CHART), "-out", str(out)]
    for name in VALUES:
        args += ["-values", str(CHART / name)]
    result = check(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("lint clean") == len(VALUES), result.stdout
    return {
        name: [doc for doc in yaml.safe_load_all((out / name.replace(".yaml", ".yaml")).read_text()) if doc]
        for name in VALUES
    }


def objects(stream: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in stream if doc["kind"] == kind]


def one(stream: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = objects(stream, kind)
    assert len(found) == 1, (kind, [d["metadata"]["name"] for d in found])
    return found[0]


def test_strict_decoding_rejects_what_kubernetes_would(tmp_path: Path) -> None:
    good = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "x"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"a": "b"}}},
    }
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(good))
    assert check("-manifest", str(path)).returncode == 0
    for broken, why in (
        ({**good, "spec": {**good["spec"], "minAvailabel": 1}}, "unknown field"),
        ({**good, "spec": {**good["spec"], "minAvailable": [1]}}, ""),
        ({**good, "apiVersion": "policy/v1beta7"}, "no kind"),
    ):
        path.write_text(yaml.safe_dump(broken))
        result = check("-manifest", str(path))
        assert result.returncode == 1, broken
        assert why in result.stderr, result.stderr


def test_default_values_demand_secrets_and_external_services() -> None:
    result = check("-chart", str(CHART))
    assert result.returncode == 1
    assert "required" in result.stderr


def test_hub_deployment_fits_the_rolling_upgrade(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for stream in rendered.values():
        deployment = one(stream, "Deployment")
        config = (
            one(stream, "ConfigMap")
            if len(objects(stream, "ConfigMap")) == 1
            else next(c for c in objects(stream, "ConfigMap") if "NOVA_PORT" in c["data"])
        )
        spec = deployment["spec"]
        assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
        pod = spec["template"]["spec"]
        hub = pod["containers"][0]
        assert hub["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert hub["livenessProbe"]["httpGet"]["path"] == "/healthz"
        pre_stop = hub["lifecycle"]["preStop"]["exec"]["command"]
        assert pre_stop[0] == "sleep"
        shutdown = float(config["data"]["NOVA_SHUTDOWN_TIMEOUT_SECONDS"])
        assert pod["terminationGracePeriodSeconds"] > shutdown + float(pre_stop[1])
        assert {"cpu", "memory"} <= hub["resources"]["requests"].keys()
        assert "memory" in hub["resources"]["limits"]
        anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        assert anti[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
        assert pod["securityContext"]["runAsNonRoot"] is True
        # Every setting handed to the hub is a real `collab-server serve` option.
        env_names = set(config["data"]) | {e["name"] for e in hub["env"]}
        assert {n for n in env_names if n.startswith("NOVA_")} <= serve_env_options()
        ports = {p["name"]: p["containerPort"] for p in hub["ports"]}
        assert str(ports["grpc"]) == config["data"]["NOVA_GRPC_PORT"]


def test_services_ingress_budget_autoscaler(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for name, stream in rendered.items():
        services = {s["metadata"]["name"]: s for s in objects(stream, "Service")}
        assert any(s["spec"].get("clusterIP") == "None" and "-pods" in n for n, s in services.items())
        ingress = next(i for i in objects(stream, "Ingress") if not i["metadata"]["name"].endswith("-grpc"))
        annotations = ingress["metadata"]["annotations"]
        assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
        assert ingress["spec"]["tls"][0]["secretName"]
        pdb = one(stream, "PodDisruptionBudget")
        hpa = one(stream, "HorizontalPodAutoscaler")
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        # A node drain can always evict one pod: the budget is below the smallest size.
        assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"], name


def test_trial_and_production_topologies(rendered: dict[str, list[dict[str, Any]]]) -> None:
    trial, production = rendered["values-trial.yaml"], rendered["values-production.yaml"]
    assert {s["metadata"]["name"] for s in objects(trial, "StatefulSet")} == {
        "nova-nova-collab-postgresql",
        "nova-nova-collab-redis",
    }
    assert not objects(production, "StatefulSet")
    config = next(c for c in objects(production, "ConfigMap") if "NOVA_PORT" in c["data"])
    assert config["data"]["NOVA_REDIS_URL"].startswith("rediss://")
    assert config["data"]["NOVA_STORE_SSL_MODE"] == "verify-full"
    assert config["data"]["NOVA_REDIS_TLS_CA_FILE"] == config["data"]["NOVA_STORE_SSL_ROOT_CERT"]
    monitor = one(production, "ServiceMonitor")
    headless = next(s for s in objects(production, "Service") if s["spec"].get("clusterIP") == "None")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= headless["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    grpc_ingress = next(i for i in objects(production, "Ingress") if i["metadata"]["name"].endswith("-grpc"))
    assert grpc_ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == "GRPC"


def test_dashboard_is_the_repository_dashboard(rendered: dict[str, list[dict[str, Any]]]) -> None:
    dashboard = next(
        c for c in objects(rendered["values-trial.yaml"], "ConfigMap") if "nova.json" in c["data"]
    )
    shipped = (REPO / "docker" / "grafana" / "dashboards" / "nova.json").read_text()
    assert dashboard["data"]["nova.json"].strip() == shipped.strip()
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_values_schema_refuses_a_wrong_setting(tmp_path: Path) -> None:
    values = yaml.safe_load((CHART / "values-trial.yaml").read_text())
    values["hub"] = {"durability": "sometimes"}
    path = tmp_path / "bad-values.yaml"
    path.write_text(yaml.safe_dump(values))
    result = check("-chart", str(CHART), "-values", str(path))
    assert result.returncode == 1
    assert "hub.durability" in result.stderr
