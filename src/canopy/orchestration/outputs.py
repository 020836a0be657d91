"""A stack's outputs and shown parameters, resolved against its resources as they are now."""

from __future__ import annotations

from typing import Any

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.binding import bind_stack
from canopy.orchestration.resolving import RowsContext
from canopy.orchestration.states import Desired
from canopy.orchestration.template import BoundTemplate, StackIdentity, TemplateError
from canopy.store.models import Stack, StackResource


def bound_of(stack: Stack, region: str) -> BoundTemplate | None:
    """The stack's template bound to its parameters (None if it no longer binds)."""
    try:
        return bind_stack(
            stack.template,
            stack.files,
            stack.environment,
            stack.parameters,
            StackIdentity(stack.name, stack.id, stack.project_id, region),
        )
    except (TemplateError, InvalidRequest):
        return None


def outputs(bound: BoundTemplate | None, rows: list[StackResource]) -> list[dict[str, Any]]:
    """Each output: key, value, description, and `output_error` when it cannot be had."""
    if bound is None:
        return []
    ctx = RowsContext({r.name: r for r in rows if r.desired == Desired.PRESENT})
    out: list[dict[str, Any]] = []
    for name, o in sorted(bound.outputs().items()):
        entry: dict[str, Any] = {"output_key": name, "description": o.description}
        if not o.condition_true:
            entry["output_value"] = None
        else:
            try:
                entry["output_value"] = bound.resolve(o.value, ctx)
            except TemplateError as e:
                entry["output_value"] = None
                entry["output_error"] = str(e)
        out.append(entry)
    return out


def shown_parameters(bound: BoundTemplate | None) -> dict[str, str]:
    return {} if bound is None else dict(bound.shown_parameters())


def resource_metadata(
    bound: BoundTemplate | None, rows: list[StackResource], name: str
) -> dict[str, Any]:
    """A template resource's `metadata` section, resolved against the resources as they
    are now (what `stack resource show` and `stack resource metadata` show); {} for a
    resource without one, and for a group's member (its metadata is its group's
    `resource_def`, not a section of this template)."""
    if bound is None:
        return {}
    try:
        definition = bound.resources().get(name)
        if definition is None or not definition.metadata:
            return {}
        ctx = RowsContext({r.name: r for r in rows if r.desired == Desired.PRESENT})
        value = bound.resolve(definition.metadata, ctx)
    except TemplateError:
        return {}  # refers to what is not there now (a resource not yet made)
    return value if isinstance(value, dict) else {}
