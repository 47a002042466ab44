#!/usr/bin/env bash
# Run scripts/setup.sh (arguments passed on) unless nothing it reads changed since it last
# succeeded in this checkout: a hash of its scripts and package manifests, kept in the cache
# directory, one stamp per checkout and mode. A full set-up's stamp also covers --hub-only.
# Used by scripts/test.sh and scripts/run-hub.sh, so neither repeats a minute of checks.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${XDG_CACHE_HOME:-$HOME/.cache}/nova-collab"
mkdir -p "$cache"
checkout=$(pwd | sha256sum | cut -c1-16)
full="$cache/setup-${checkout}.stamp"
hub_only="$cache/setup-hub-only-${checkout}.stamp"
# What the set-up reads: its scripts, Python and node manifests, the crate, the front-end sources.
inputs=$(git ls-files -z -- scripts pyproject.toml '*package.json' '*package-lock.json' crdt_core_rs \
    collab_server/frontend | xargs -0 sha256sum | sha256sum | cut -c1-64)

if [[ "${1:-}" == "--hub-only" ]]; then
    stamps=("$full" "$hub_only")
    own=$hub_only
else
    stamps=("$full")
    own=$full
fi
for stamp in "${stamps[@]}"; do
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$inputs" ]]; then
        printf '== set-up: unchanged since the last successful run, skipped\n'
        exit 0
    fi
done
scripts/setup.sh "$@"
printf '%s' "$inputs" >"$own"
