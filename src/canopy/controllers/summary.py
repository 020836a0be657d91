"""Human text for faults: what was tried, where, and why each attempt failed."""

from __future__ import annotations

from typing import Any


def attempts_text(log: list[Any]) -> str:
    """'1) private: capacity error: ...; 2) public: boot failed: ...'"""
    parts = []
    for i, a in enumerate(log, start=1):
        parts.append(f"{i}) {a.get('cloud') or '?'}: {a.get('error', 'unknown error')}")
    return "; ".join(parts)
