#!/usr/bin/env bash
# The README's main command: a bounded headless load run of the demo fleet against the embedded
# Mender server, with a rollout to 10 % of the fleet; Locust's HTML report and CSVs land in
# runs/<timestamp>/. Usage: ci/run_demo.sh [seconds] (default 60). Needs python3 >= 3.10; installs the rest.
set -euo pipefail

cd "$(dirname "$0")/.."
RUN_SECONDS="${1:-60}"
FLEET_DB="runs/demo/fleet.db"
OUT="runs/$(date -u +%Y%m%dT%H%M%SZ)"

source ci/setup.sh
ensure_apt python3-venv mosquitto
ensure_venv fast

mkdir -p "$OUT" runs/demo
if [ ! -f "$FLEET_DB" ]; then
    "$VENV/bin/mendersim" seed profiles/fleets/demo.yaml --db "$FLEET_DB"
fi

# Time scale 1/300: a 30-minute poll interval takes 6 s, installs and reboots take a second.
# The devices also stream telemetry to a Mosquitto of their own on a free port.
MQTT_PORT="$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nuser %s\n' \
    "$MQTT_PORT" "$(id -un)" > "$OUT/mosquitto.conf"
/usr/sbin/mosquitto -c "$OUT/mosquitto.conf" 2> "$OUT/mosquitto.log" &
MQTT_PID=$!
trap 'kill "$MQTT_PID" 2>/dev/null || true' EXIT

"$VENV/bin/locust" -f locustfiles/fleet.py --headless \
    --users 300 --spawn-rate 100 --run-time "${RUN_SECONDS}s" \
    --mendersim-db "$FLEET_DB" \
    --mendersim-time-scale 0.00333 \
    --mendersim-scenario rollout --mendersim-rollout-share 0.1 --mendersim-rollout-delay 30 \
    --mendersim-log-file "$OUT/simulator.log" --mendersim-server-log "$OUT/server.log" \
    --mendersim-mqtt-host 127.0.0.1 --mendersim-mqtt-port "$MQTT_PORT" \
    --mendersim-telemetry-truth "$OUT/anomalies.jsonl" \
    --html "$OUT/report.html" --csv "$OUT/stats" \
    --thresholds profiles/thresholds/smoke.yaml --thresholds-junit "$OUT/junit.xml" \
    --exit-code-on-error 0 \
    2> "$OUT/locust.log" || status=$?

echo "report: $OUT/report.html  statistics: $OUT/stats_*.csv  anomalies: $OUT/anomalies.jsonl"
echo "logs: $OUT/locust.log $OUT/simulator.log $OUT/server.log"
exit "${status:-0}"
