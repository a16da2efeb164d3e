"""What a run tells: statistics names, InfluxDB, the console, thresholds, the recorder and
the web tab."""
