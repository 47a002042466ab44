#!/usr/bin/env bash
# Build the offline Kubernetes chart checker (deploy/validate: helm's lint and renderer plus
# strict decoding into the official API types of the pinned k8s.io/api), from Go modules.
# Cached outside the repo, rebuilt only when its sources change.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${XDG_CACHE_HOME:-$HOME/.cache}/nova-collab/bin"
binary="${cache}/nova-chart-check"
stamp="${binary}.sha256"
want=$(cat deploy/validate/go.mod deploy/validate/go.sum deploy/validate/main.go | sha256sum | cut -d' ' -f1)
if [[ -x "${binary}" && -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
    echo "install_k8s_tools.sh: nova-chart-check up to date"
    exit 0
fi
command -v go >/dev/null || { echo "install_k8s_tools.sh: Go is required" >&2; exit 1; }
mkdir -p "${cache}"
echo "install_k8s_tools.sh: building nova-chart-check (first time: a few minutes)"
(cd deploy/validate && go build -mod=readonly -trimpath -buildvcs=false -o "${binary}" .)
echo "${want}" >"${stamp}"
echo "install_k8s_tools.sh: done"
