#!/usr/bin/env bash
# A long fuzzing run: the parser on both backends, presence (awareness) rules, and whole
# connections against a live hub (random frames and random awareness entries), the HTTP API
# (JSON and raw bodies, paths, query strings: tests/test_fuzz_http.py), then the native
# crate's property tests. FUZZ_EXAMPLES (default 2000) sets the size.
set -euo pipefail
cd "$(dirname "$0")/.."
export FUZZ_EXAMPLES="${FUZZ_EXAMPLES:-2000}"
started=$(date +%s)
python3 -m pytest -p no:cacheprovider -q tests/test_fuzz.py tests/test_fuzz_http.py --hypothesis-show-statistics "$@"
(cd crdt_core_rs && PROPTEST_CASES="${PROPTEST_CASES:-200000}" cargo test --release --quiet --test proptest_inputs)
echo "fuzzing finished in $(( $(date +%s) - started ))s with FUZZ_EXAMPLES=${FUZZ_EXAMPLES}"
