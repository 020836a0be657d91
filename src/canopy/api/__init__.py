"""The HTTP API: app factory, dependencies, fault bodies and the routers of each service."""
