"""Blazar's error body: `{"error": <code>, "error_message": "<text>"}`.

python-blazarclient shows `error_message` as the command's error.
"""

from __future__ import annotations

from typing import Any


def blazar_fault(code: int, message: str) -> dict[str, Any]:
    return {"error": code, "error_message": message}
