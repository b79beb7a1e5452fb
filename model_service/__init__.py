"""The mock detector: answers a prepared car box half of the time."""
