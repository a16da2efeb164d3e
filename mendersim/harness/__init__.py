"""The Locust harness: one Locust user per simulated device."""
