#!/usr/bin/env bash
# Installs the time-series servers the InfluxDB listener and dashboard tests run against:
# VictoriaMetrics (accepts the InfluxDB v2 write API) and InfluxDB 1.x (Debian ships 1.6; its
# InfluxQL engine is what the dashboard queries are checked on). Starts nothing: the tests start
# each server themselves on a free 127.0.0.1 port with a temporary data directory.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
ensure_apt victoria-metrics influxdb
