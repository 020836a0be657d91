"""Prometheus metrics. Defined once here; exposed by the API at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PLACEMENTS = Counter("canopy_placements_total", "Scheduling decisions", ["result", "cloud"])
# Every call a controller makes to a cloud (controllers.runtime.Runtime.call). `outcome` is
# ok, timeout, transient, capacity, cloud_quota, not_found, error, lease_lost (cancelled
# because this worker's lease on the row ran out) or cancelled (the worker stopped).
CLOUD_CALLS = Counter(
    "canopy_cloud_calls_total", "Calls to cloud drivers", ["cloud", "operation", "outcome"]
)
CLOUD_CALL_SECONDS = Histogram(
    "canopy_cloud_call_seconds",
    "Latency of cloud driver calls",
    ["cloud", "operation", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
# Rows processed by controllers; outcome `lease_lost` is a step abandoned because this
# worker no longer held the row's lease (no call made after that, no result recorded).
CONTROLLER_STEPS = Counter(
    "canopy_controller_steps_total", "Rows processed by controllers", ["controller", "outcome"]
)

# Refreshed from the database at scrape time (canopy.api.metrics), not kept up in process.
CLOUD_UTILISATION = Gauge(
    "canopy_cloud_utilisation", "Largest claimed fraction of a cloud's capacity (0..1)", ["cloud"]
)
CLOUD_SPEND_PER_HOUR = Gauge(
    "canopy_cloud_spend_per_hour", "Summed hourly price of servers claimed on a cloud", ["cloud"]
)
CLOUD_HEALTHY = Gauge("canopy_cloud_healthy", "1 if the cloud is healthy, else 0", ["cloud"])
SERVERS = Gauge(
    "canopy_servers", "Non-deleted servers by cloud ('' = none yet) and status", ["cloud", "status"]
)
SPEND_CAP_PER_HOUR = Gauge(
    "canopy_spend_cap_per_hour", "scheduler.max_spend_per_hour, the cap on tiers >= 1"
)
DATABASE_UP = Gauge("canopy_database_up", "1 if the last scrape could read the database")
