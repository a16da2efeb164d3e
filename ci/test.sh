#!/usr/bin/env bash
# The whole test suite on a fresh Debian or Ubuntu machine: system packages, venv, lint, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/setup.sh
ensure_apt python3-venv mender-artifact victoria-metrics influxdb wrk
ensure_venv test,fast
"$VENV/bin/ruff" check .
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
