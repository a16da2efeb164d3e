"""A fleet of simulated Mender devices: `locust -f locustfiles/fleet.py` (options: `--help`)."""

from locust import events

from mendersim.harness import influx, plugin, thresholds
from mendersim.harness.user import DeviceUser

# Order matters: Locust calls `quitting` listeners last-registered first, so the harness (set up
# last) stops the devices and writes the store and reports before InfluxDB's final flush and
# the threshold verdict read the figures.
influx.setup(events)
thresholds.setup(events)
plugin.setup(events)

__all__ = ["DeviceUser"]
