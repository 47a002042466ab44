#!/usr/bin/env bash
# The whole test suite: set-up, static checks (ruff, mypy --strict, cargo fmt/clippy/test,
# tsc/eslint where a TypeScript package exists), then pytest (which starts its own hub,
# PostgreSQL, Redis and browser processes on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
scripts/setup.sh

printf '\n== checks: ruff, mypy\n'
ruff check .
ruff format --check collab_server awareness persistence crdt_core
mypy

if [[ -f crdt_core_rs/Cargo.toml ]]; then
    printf '\n== checks: cargo fmt, clippy, test\n'
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nova-collab/cargo-target}"
    (cd crdt_core_rs && cargo fmt --check && cargo clippy --all-targets -- -D warnings && cargo test --quiet)
fi

printf '\n== pytest\n'
python3 -m pytest -p no:cacheprovider "$@"
printf '\n== test suite finished in %ss\n' "$(( $(date +%s) - started ))"
