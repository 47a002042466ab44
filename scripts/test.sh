#!/usr/bin/env bash
# The whole test suite: set-up, static checks (ruff, mypy --strict, cargo fmt/clippy/test,
# tsc/eslint where a TypeScript package exists), then pytest (which starts its own hub,
# PostgreSQL, Redis and browser processes on loopback).
#
#   scripts/test.sh            everything (what CI runs)
#   scripts/test.sh --fast     the in-process tier only (pytest -m fast: no subprocess, no
#                              service; under a minute), after the same set-up check
#   scripts/test.sh ARGS...    pytest ARGS (e.g. one file) after the set-up and checks
#
# The set-up is skipped when nothing it depends on changed since it last succeeded here
# (a hash of its scripts and package manifests, kept in the cache directory).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

fast=0
if [[ "${1:-}" == "--fast" ]]; then
    fast=1
    shift
fi

scripts/setup-if-changed.sh

if [[ "$fast" == 1 ]]; then
    printf '\n== pytest: fast tier\n'
    # Only the files that hold fast tests are collected (collecting the rest imports seconds of modules).
    mapfile -t files < <(grep -rl --include='test_*.py' 'pytest.mark.fast' tests | sort)
    # Property tests in the tier run fewer examples than in the full suite (120).
    export FUZZ_EXAMPLES="${FUZZ_EXAMPLES:-30}"
    python3 -m pytest -p no:cacheprovider -m fast "${files[@]}" "$@"
    printf '\n== fast tier finished in %ss\n' "$(( $(date +%s) - started ))"
    exit 0
fi

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
