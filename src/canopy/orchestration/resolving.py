"""What the template language reads of live resources: references and attributes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from canopy.orchestration.attribute_paths import dig
from canopy.orchestration.resources import registry
from canopy.store.models import StackResource


class RowsContext:
    """A `ResolveContext` over the stack's resource rows (the current one of each name)."""

    def __init__(self, rows: Mapping[str, StackResource]) -> None:
        self.rows = rows

    def reference(self, resource: str) -> Any:
        row = self.rows.get(resource)
        return None if row is None else registry.row_type(row.type).reference(row)

    def attribute(self, resource: str, path: Sequence[Any]) -> Any:
        row = self.rows.get(resource)
        if row is None:
            return None
        reader = registry.READERS.get(row.type)
        if reader is not None:
            return reader(row, path)
        return dig(row.attributes, path)


class NothingLive:
    """Before anything exists (validation, preview): every reference is unknown."""

    def reference(self, resource: str) -> Any:
        return None

    def attribute(self, resource: str, path: Sequence[Any]) -> Any:
        return None
