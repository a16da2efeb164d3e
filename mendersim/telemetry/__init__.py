"""Sensor telemetry, anomaly injection with ground truth, MQTT sessions, commands, edge gateways."""
