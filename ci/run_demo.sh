#!/usr/bin/env bash
# The README's main command: a bounded headless load run of the demo fleet against the embedded
# Mender server, with a rollout to 10 % of the fleet; Locust's HTML report and CSVs land in
# runs/<timestamp>/. Usage: ci/run_demo.sh [seconds] (default 60). Needs python3 (>= 3.10) with venv.
set -euo pipefail

cd "$(dirname "$0")/.."
RUN_SECONDS="${1:-60}"
FLEET_DB="runs/demo/fleet.db"
OUT="runs/$(date -u +%Y%m%dT%H%M%SZ)"

VENV="${MENDERSIM_VENV:-.venv}"  # an existing environment may be given instead
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
if ! "$VENV/bin/python" -c "import mendersim, locust" 2>/dev/null; then
    "$VENV/bin/python" -m pip install --quiet -e .
fi

mkdir -p "$OUT" runs/demo
if [ ! -f "$FLEET_DB" ]; then
    "$VENV/bin/mendersim" seed profiles/fleets/demo.yaml --db "$FLEET_DB"
fi

# Time scale 1/300: a 30-minute poll interval takes 6 s, installs and reboots take a second.
"$VENV/bin/locust" -f locustfiles/fleet.py --headless \
    --users 300 --spawn-rate 100 --run-time "${RUN_SECONDS}s" \
    --mendersim-db "$FLEET_DB" \
    --mendersim-time-scale 0.00333 \
    --mendersim-scenario rollout --mendersim-rollout-share 0.1 --mendersim-rollout-delay 30 \
    --html "$OUT/report.html" --csv "$OUT/stats" \
    2> "$OUT/locust.log" || status=$?

echo "report: $OUT/report.html  statistics: $OUT/stats_*.csv  log: $OUT/locust.log"
exit "${status:-0}"
