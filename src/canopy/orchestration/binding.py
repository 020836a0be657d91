"""A stack's template bound to its parameters: what the API validates and the engine walks.

The template language is `canopy.orchestration.template` (pure); this module only gathers
what it needs from a stack: the merged parameters and the stack's identity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.nesting import mapped_types, registry_of
from canopy.orchestration.template import (
    BoundTemplate,
    ConstraintCheck,
    StackIdentity,
    Template,
    parse_template,
)


def environment_parameters(
    template: Template, environment: Mapping[str, Any], given: Mapping[str, Any]
) -> dict[str, Any]:
    """The parameter values: the environment's `parameters`, its `parameter_defaults` for
    the parameters the template declares, then what was given on the request."""
    env = environment or {}
    if not isinstance(env, Mapping):
        raise InvalidRequest("environment must be a map.")
    declared = {p.name for p in template.parameter_infos()}
    defaults = env.get("parameter_defaults") or {}
    params = env.get("parameters") or {}
    if not isinstance(defaults, Mapping) or not isinstance(params, Mapping):
        raise InvalidRequest("environment parameters and parameter_defaults must be maps.")
    out: dict[str, Any] = {k: v for k, v in defaults.items() if k in declared}
    out.update(params)
    out.update(given)
    return out


def bind_stack(
    template: Mapping[str, Any],
    files: Mapping[str, Any],
    environment: Mapping[str, Any],
    parameters: Mapping[str, Any],
    identity: StackIdentity,
    check: ConstraintCheck | None = None,
    *,
    strict: bool = True,
) -> BoundTemplate:
    """Parse and bind; raises TemplateError (the user's) or InvalidRequest."""
    registry = registry_of(environment)  # type -> type or template file
    texts = {str(k): str(v) for k, v in (files or {}).items()}
    parsed = parse_template(mapped_types(template, registry), texts)
    values = environment_parameters(parsed, environment, parameters)
    return parsed.bind(values, identity, check, strict=strict)
