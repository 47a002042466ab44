#!/usr/bin/env bash
# Install the browser the viewer tests drive: Debian's `chromium` package
# (playwright-core, from tests/browser, launches it by its path on PATH; no
# browser build is ever downloaded).
#
# Idempotent and non-interactive; meant for a Debian 12 machine, run as root
# (or through sudo). When chromium is already installed it only runs one dpkg
# query. `apt-get update` runs only when the package has no install candidate
# in the local package lists.
set -euo pipefail

PACKAGE=chromium

if [[ ${EUID} -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo -- "$0" "$@"
    fi
    echo "install_browser.sh: must run as root (no sudo found)" >&2
    exit 1
fi

status="$(dpkg-query -W -f='${db:Status-Status}' "${PACKAGE}" 2>/dev/null || true)"
if [[ "${status}" == "installed" ]] && command -v chromium >/dev/null 2>&1; then
    echo "install_browser.sh: already installed: ${PACKAGE}"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
candidate="$(apt-cache policy "${PACKAGE}" 2>/dev/null | awk '/Candidate:/ {print $2}')"
if [[ -z "${candidate}" || "${candidate}" == "(none)" ]]; then
    echo "install_browser.sh: refreshing package lists"
    apt-get update -q
fi

echo "install_browser.sh: installing ${PACKAGE}"
# fonts-dejavu-core: readable text in screenshots on a machine with no fonts.
apt-get install -y -q --no-install-recommends "${PACKAGE}" fonts-dejavu-core

command -v chromium >/dev/null || { echo "install_browser.sh: chromium not on PATH" >&2; exit 1; }
chromium --version
echo "install_browser.sh: done"
