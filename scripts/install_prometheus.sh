#!/usr/bin/env bash
# Install Debian's `prometheus` package for the tests: `tests/test_prometheus_scrape.py`
# starts its own Prometheus server (on a free loopback port, with a generated config)
# scraping a real hub, and `tests/test_deployment_files.py` runs `promtool check config`
# on docker/prometheus.yml.
#
# Idempotent and non-interactive; meant for a Debian 12 machine, run as root (or through
# sudo). When the package is installed it only runs one dpkg query. `apt-get update` runs
# only when the package has no install candidate in the local package lists. The system
# service the package would start is not needed: while this script installs, a temporary
# policy-rc.d (only when the machine has none) keeps apt from starting it.
set -euo pipefail

PACKAGE=prometheus

if [[ ${EUID} -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo -- "$0" "$@"
    fi
    echo "install_prometheus.sh: must run as root (no sudo found)" >&2
    exit 1
fi

is_installed() {
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" == "installed" ]]
}

has_candidate() {
    local candidate
    candidate="$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')"
    [[ -n "${candidate}" && "${candidate}" != "(none)" ]]
}

if is_installed "${PACKAGE}"; then
    echo "install_prometheus.sh: already installed: ${PACKAGE}"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive

policy=/usr/sbin/policy-rc.d
if [[ ! -e "${policy}" ]]; then
    printf '#!/bin/sh\n# temporary, from install_prometheus.sh\nexit 101\n' >"${policy}"
    chmod 0755 "${policy}"
    trap 'rm -f "${policy}"' EXIT
fi

if ! has_candidate "${PACKAGE}"; then
    echo "install_prometheus.sh: refreshing package lists"
    apt-get update -q
fi

echo "install_prometheus.sh: installing ${PACKAGE}"
apt-get install -y -q --no-install-recommends "${PACKAGE}"

# Fail loudly now rather than in the test suite.
for binary in prometheus promtool; do
    command -v "${binary}" >/dev/null || { echo "install_prometheus.sh: ${binary} not on PATH" >&2; exit 1; }
done
echo "install_prometheus.sh: done"
