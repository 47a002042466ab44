#!/usr/bin/env bash
# Run the hub with the embedded SQLite store on 127.0.0.1:1234 (no other services needed).
# Extra arguments go to `collab-server serve` (see `collab-server serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --hub-only >&2
exec collab-server serve "$@"
