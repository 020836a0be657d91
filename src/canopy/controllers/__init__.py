"""Level-triggered controllers: read rows whose observed state differs from desired, take one
idempotent step, record the result. Every cloud call happens here, never in the API."""
