"""Prometheus metrics. Defined once here; exposed by the API at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PLACEMENTS = Counter(
    "canopy_placements_total", "Scheduling decisions", ["result", "cloud"]
)
CLOUD_CALLS = Counter(
    "canopy_cloud_calls_total", "Calls to cloud drivers", ["cloud", "op", "result"]
)
CLOUD_CALL_SECONDS = Histogram(
    "canopy_cloud_call_seconds", "Latency of cloud driver calls", ["cloud", "op"]
)
CONTROLLER_STEPS = Counter(
    "canopy_controller_steps_total", "Rows processed by controllers", ["controller", "outcome"]
)
