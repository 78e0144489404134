#!/usr/bin/env bash
# Install atheris (Google's coverage-guided Python fuzzer) where bench/fuzz/run.py finds it,
# kept out of Shipyard's dependencies: it needs a C++ toolchain to build where no wheel fits.
#
#   bash bench/fuzz/setup.sh
#
# Creates bench/fuzz/.venv (git-ignored) holding only atheris; run.py runs on Shipyard's own
# venv with that folder on its path, so the fuzzed code is exactly what the tests import.
# Override the interpreter with PYTHON=/path/to/python3.11 bash bench/fuzz/setup.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
if "$VENV/bin/python" -c "import atheris" 2>/dev/null; then
    echo "atheris is installed in $VENV"
    exit 0
fi
"$VENV/bin/pip" install --quiet atheris
"$VENV/bin/python" -c "import atheris; print('atheris', atheris.__version__ if hasattr(atheris, '__version__') else '', 'installed in $VENV')"
