"""The endpoint benchmark: steadybot's HTTP front door against a bare ASGI floor."""
