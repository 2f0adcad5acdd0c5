"""Measurement records and where they go: the run directory, later InfluxDB."""
