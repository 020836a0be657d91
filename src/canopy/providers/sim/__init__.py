"""The simulated cloud: a real, working driver with capacity, latency, prices and faults."""
