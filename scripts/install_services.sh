#!/usr/bin/env bash
# Install the database servers the test suite starts on its own (throwaway
# PostgreSQL clusters and Redis instances on free loopback ports):
# Debian's `postgresql` and `redis-server` packages.
#
# Idempotent and non-interactive; meant for a Debian 12 machine, run as root
# (or through sudo). When both packages are already installed it only runs two
# dpkg queries. `apt-get update` runs only when a package has no install
# candidate in the local package lists.
#
# The services these packages would normally start are not needed: tests never
# use them. While this script installs, a temporary policy-rc.d (only when the
# machine has none) keeps apt from starting them.
set -euo pipefail

PACKAGES=(postgresql redis-server)

if [[ ${EUID} -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo -- "$0" "$@"
    fi
    echo "install_services.sh: must run as root (no sudo found)" >&2
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

missing=()
for package in "${PACKAGES[@]}"; do
    if ! is_installed "${package}"; then
        missing+=("${package}")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install_services.sh: already installed: ${PACKAGES[*]}"
    exit 0
fi

need_update=0
for package in "${missing[@]}"; do
    if ! has_candidate "${package}"; then
        need_update=1
    fi
done

export DEBIAN_FRONTEND=noninteractive

policy=/usr/sbin/policy-rc.d
if [[ ! -e "${policy}" ]]; then
    printf '#!/bin/sh\n# temporary, from install_services.sh\nexit 101\n' >"${policy}"
    chmod 0755 "${policy}"
    trap 'rm -f "${policy}"' EXIT
fi

if [[ ${need_update} -eq 1 ]]; then
    echo "install_services.sh: refreshing package lists"
    apt-get update -q
fi

echo "install_services.sh: installing ${missing[*]}"
apt-get install -y -q --no-install-recommends "${missing[@]}"

# Fail loudly now rather than in the test suite.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    echo "install_services.sh: initdb not found under /usr/lib/postgresql/*/bin" >&2
    exit 1
fi
command -v redis-server >/dev/null || { echo "install_services.sh: redis-server not on PATH" >&2; exit 1; }
echo "install_services.sh: done"
