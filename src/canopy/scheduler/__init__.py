"""Placement: a pure pipeline from cloud snapshots and a request to a decision with reasons."""

from canopy.scheduler.pipeline import apply_claim, schedule

__all__ = ["apply_claim", "schedule"]
