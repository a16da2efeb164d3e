"""The device engine: a simulated Mender client that knows nothing of Locust."""
