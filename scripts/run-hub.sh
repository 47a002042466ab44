#!/usr/bin/env bash
# Run the hub with the embedded SQLite store on 127.0.0.1:1234 (no other services needed).
# Extra arguments go to `collab-server serve` (see `collab-server serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-if-changed.sh --hub-only >&2
# This checkout's code (the repository root is on the path), whichever checkout the
# installed `collab-server` command was last installed from.
exec python3 -m collab_server serve "$@"
