"""Human text for faults: what was tried, where, and why each attempt failed."""

from __future__ import annotations

from typing import Any


def attempts_text(log: list[Any]) -> str:
    """'1) private: capacity error: ...; 2) public (zone b): boot failed: ...'"""
    parts = []
    for i, a in enumerate(log, start=1):
        where = a.get("cloud") or "?"
        if a.get("zone"):
            where = f"{where} (zone {a['zone']})"
        if a.get("uncounted"):
            where = f"{where} (not counted)"
        parts.append(f"{i}) {where}: {a.get('error', 'unknown error')}")
    return "; ".join(parts)


def attempted(log: list[Any]) -> list[Any]:
    """The entries of `log` that were attempts (what placement passes over)."""
    return [a for a in log if not a.get("uncounted")]


def clouds_tried(log: list[Any]) -> int:
    """How many clouds a server has failed on: what `max_attempts` counts.

    Each zone of a cloud is tried at most once (placement passes over the zones already
    tried), and a cloud is one attempt however many of its zones were tried, so a cloud
    with many zones does not use up a server's attempts before the next cloud is tried.
    Without zones this is the number of failed attempts, as before. An `uncounted` entry
    (the cloud's fault, not the attempt's: see attempts.back_to_placement) is not an attempt.
    """
    return len({a.get("cloud") for a in attempted(log)})
