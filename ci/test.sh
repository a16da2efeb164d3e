#!/usr/bin/env bash
# The whole test suite on a fresh Debian or Ubuntu machine: system packages, venv, lint, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/setup.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
