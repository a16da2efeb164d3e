"""A fleet of simulated Mender devices: `locust -f locustfiles/fleet.py` (see `--help`)."""

from locust import events

from mendersim.harness import plugin
from mendersim.harness.user import DeviceUser

plugin.setup(events)

__all__ = ["DeviceUser"]
