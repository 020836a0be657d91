"""Reading a path into a resource's attribute value, as `get_attr` does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def dig(value: Any, path: Sequence[Any]) -> Any:
    """`value[path[0]][path[1]]...`, or None as soon as a step is missing (Heat's rule)."""
    for key in path:
        if isinstance(value, Mapping):
            value = value.get(key) if isinstance(key, str) else value.get(str(key))
        elif isinstance(value, list) and not isinstance(key, bool):
            try:
                value = value[int(key)]
            except (ValueError, IndexError, TypeError):
                return None
        else:
            return None
    return value
