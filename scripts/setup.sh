#!/usr/bin/env bash
# Install everything the hub and its test suite need on a fresh machine of this kind:
# Python packages (editable install of this repo), the Rust crate (native backend),
# node packages for the interop tests and load tests, and the PostgreSQL, Redis,
# Chromium and Kafka packages the tests start their own throwaway instances of.
# Idempotent: a second run only checks. Pass --hub-only to skip what only the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."

hub_only=0
[[ "${1:-}" == "--hub-only" ]] && hub_only=1

step() { printf '\n== setup: %s\n' "$*"; }

# npm ci, skipped when node_modules was installed from this very lock file.
npm_install() {
    local dir=$1 stamp want
    stamp="$1/node_modules/.nova-lock.sha256"
    want=$(sha256sum "${dir}/package-lock.json" | cut -d' ' -f1)
    if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
        echo "node packages in ${dir}: up to date"
        return
    fi
    (cd "${dir}" && npm ci --no-audit --no-fund --loglevel=error)
    echo "${want}" >"${stamp}"
}

step "python packages"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e ".[dev]"

if [[ -x scripts/build_native.sh ]]; then
    step "native crate (crdt_core_rs)"
    if ! scripts/build_native.sh; then
        if [[ ${hub_only} -eq 1 ]]; then
            echo "setup: native crate did not build; the hub runs on the pure-Python backend" >&2
        else
            exit 1
        fi
    fi
fi

if [[ -x scripts/install_models.sh ]]; then
    step "embedding model (semantic search)"
    scripts/install_models.sh
fi

if [[ -f collab_server/frontend/package-lock.json && -x scripts/build_frontend.sh ]]; then
    step "viewer front end"
    npm_install collab_server/frontend
    scripts/build_frontend.sh
fi

[[ ${hub_only} -eq 1 ]] && exit 0

step "system packages (PostgreSQL, Redis, Chromium)"
scripts/install_services.sh
if [[ -x scripts/install_prometheus.sh ]]; then
    scripts/install_prometheus.sh
fi
if [[ -x scripts/install_k8s_tools.sh ]]; then
    step "Kubernetes chart checker (helm lint + strict API decoding, built from Go modules; cached)"
    scripts/install_k8s_tools.sh
fi
if [[ -x scripts/install_browser.sh ]]; then
    scripts/install_browser.sh
fi
if [[ -x scripts/install_kafka.sh ]]; then
    step "Apache Kafka broker for the change-event tests (jars from Maven Central; cached)"
    scripts/install_kafka.sh
fi
if [[ -x scripts/install_s3proxy.sh ]]; then
    step "S3Proxy, an S3-compatible server for the archive tests (jars from Maven Central; cached)"
    scripts/install_s3proxy.sh
fi
if [[ -x scripts/install_node24.sh ]]; then
    step "Node 24 (for the @hocuspocus/provider 4.x interop tests; cached)"
    scripts/install_node24.sh >/dev/null
fi

if [[ -x vscodium-client/scripts/install-code-server.sh ]]; then
    step "code-server (a real VS Code workbench for the extension's end-to-end test; cached)"
    vscodium-client/scripts/install-code-server.sh
fi

for dir in tests/js tests/browser tests/browser/editors load_tests load_tests/node/crdt vscodium-client; do
    if [[ -f "${dir}/package-lock.json" ]]; then
        step "node packages in ${dir}"
        npm_install "${dir}"
    fi
done
