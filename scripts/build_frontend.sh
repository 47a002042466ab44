#!/usr/bin/env bash
# Build the browser viewer's bundle (collab_server/frontend → collab_server/static/build/),
# which the hub serves at / and /d/<document>. Never committed: every set-up builds it.
#
# Idempotent: skips when the sources (src/, package files, build script) hash the same as
# for the bundle that is there. Runs `npm ci` first when node_modules is missing, then a
# strict type check (tsc --strict --noEmit) and the esbuild bundle. --force rebuilds.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
frontend="${repo}/collab_server/frontend"
out="${repo}/collab_server/static/build"
stamp="${out}/.sources.sha256"

sources_hash() {
    cd "${frontend}"
    { node --version; find package.json package-lock.json build.mjs tsconfig.json src -type f -print0 \
        | sort -z | xargs -0 sha256sum; } | sha256sum | cut -d' ' -f1
}

if ! command -v node >/dev/null 2>&1; then
    echo "build_frontend: node is not installed; the viewer pages will answer 503 until it is built" >&2
    exit 1
fi

hash=$(sources_hash)
if [[ "${1:-}" != "--force" && -f "${stamp}" && "$(cat "${stamp}")" == "${hash}" \
    && -f "${out}/viewer.js" && -f "${out}/landing.js" && -f "${out}/style.css" ]]; then
    echo "build_frontend: collab_server/static/build is up to date"
    exit 0
fi

cd "${frontend}"
if [[ ! -d node_modules/esbuild || ! -d node_modules/yjs ]]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent typecheck
npm run --silent build
echo "${hash}" > "${stamp}"
