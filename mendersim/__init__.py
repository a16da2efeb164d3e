"""mendersim: a Locust load-testing harness where every user is a Mender OTA device."""

__version__ = "0.1.0"

# The client version the simulated devices report in inventory (mender_client_version).
CLIENT_VERSION = "5.0.0"
