#!/bin/sh
# Installs the time-series servers the InfluxDB listener and dashboard tests run against:
# VictoriaMetrics (accepts the InfluxDB v2 write API) and InfluxDB 1.x (Debian ships 1.6; its
# InfluxQL engine is what the dashboard queries are checked on). Starts nothing: the tests start
# each server themselves on a free 127.0.0.1 port with a temporary data directory.
set -eu

have() { command -v "$1" >/dev/null 2>&1; }

missing=""
if ! have victoria-metrics && ! have victoria-metrics-prod; then
    missing="$missing victoria-metrics"
fi
if ! have influxd; then
    missing="$missing influxdb"
fi
[ -z "$missing" ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d 101 keeps the packages' services from being started by the install.
policy=/usr/sbin/policy-rc.d
created_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    created_policy=1
fi
# shellcheck disable=SC2086
$SUDO apt-get install -y --no-install-recommends $missing || {
    $SUDO apt-get update
    # shellcheck disable=SC2086
    $SUDO apt-get install -y --no-install-recommends $missing
}
if [ -n "$created_policy" ]; then
    $SUDO rm -f "$policy"
fi
