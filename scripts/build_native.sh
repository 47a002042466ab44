#!/usr/bin/env bash
# Build the native crdt_core backend (crdt_core_rs, a maturin/PyO3 crate) in release
# mode and pip-install its wheel into the current python (python3, or $PYTHON).
#
# Idempotent: skips the build when the crate's sources hash is unchanged since the
# last install and `_crdt_core_native` already imports. The cargo target dir lives
# outside the repository so rebuilds are incremental across runs.
# Needs cargo (rustup) on PATH; installs maturin from pip if it is missing.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
crate="${repo}/crdt_core_rs"
python=${PYTHON:-python3}
cache="${XDG_CACHE_HOME:-${HOME}/.cache}/nova-collab"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${cache}/cargo-target}"
stamp="${cache}/crdt_core_native.stamp"

sources_hash() {
    {
        "${python}" -c 'import sys; print(sys.executable, sys.version)'
        cd "${crate}"
        find Cargo.toml pyproject.toml _crdt_core_native.pyi src -type f -print0 \
            | sort -z | xargs -0 sha256sum
    } | sha256sum | cut -d' ' -f1
}

hash=$(sources_hash)
if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${hash}" ]] \
    && "${python}" -c 'import _crdt_core_native' 2>/dev/null; then
    echo "build_native: _crdt_core_native is up to date"
    exit 0
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "build_native: cargo not found; install Rust (rustup) to build the native backend." >&2
    echo "build_native: without it crdt_core uses its pure-Python fallback." >&2
    exit 1
fi
if ! "${python}" -m maturin --version >/dev/null 2>&1; then
    "${python}" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "maturin>=1.7,<2"
fi

wheels=$(mktemp -d)
trap 'rm -rf "${wheels}"' EXIT
echo "build_native: building crdt_core_rs (target dir ${CARGO_TARGET_DIR})"
(cd "${crate}" && "${python}" -m maturin build --release --interpreter "${python}" --out "${wheels}")
"${python}" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    --force-reinstall --no-deps "${wheels}"/*.whl
"${python}" -c 'import _crdt_core_native'
mkdir -p "${cache}"
echo "${hash}" > "${stamp}"
echo "build_native: installed _crdt_core_native"
