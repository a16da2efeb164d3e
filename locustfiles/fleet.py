"""A fleet of simulated Mender devices: `locust -f locustfiles/fleet.py`.

Locust's `--help` cannot list this file's options (it prints before loading it):
`mendersim options` lists every one with its environment variable and default.
"""

from locust import events

from mendersim.harness import plugin
from mendersim.harness.reporting import console, influx, thresholds
from mendersim.harness.worker.user import DeviceUser

# Order matters: Locust calls `quitting` listeners last-registered first, so the harness (set up
# last) stops the devices and writes the store and reports before InfluxDB's final flush and
# the threshold verdict read the figures; the console summary, set up first, comes last.
console.setup(events)
influx.setup(events)
thresholds.setup(events)
plugin.setup(events)

__all__ = ["DeviceUser"]
