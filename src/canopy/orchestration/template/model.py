"""The values the template language hands to the engine (see HEAT_INTERFACE.md)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class StackIdentity:
    """Who the stack is: the pseudo parameters (OS::stack_name, AWS::Region ...) read it."""

    name: str
    id: str
    project_id: str
    region: str = "RegionOne"
    availability_zones: tuple[str, ...] = ("nova",)  # what Fn::GetAZs answers


ConstraintCheck = Callable[[str, str], bool]
"""(custom constraint such as "nova.flavor", value) -> does it exist?"""


@dataclass(frozen=True)
class ParameterInfo:
    """A declared parameter, as /validate and `stack show` describe it."""

    name: str
    type: str  # "String" | "Number" | "Json" | "CommaDelimitedList" | "Boolean"
    default: Any
    description: str
    label: str
    hidden: bool
    constraints: list[dict[str, Any]]


@dataclass(frozen=True)
class ResourceDefinition:
    """A resource of a bound template; `properties` and `metadata` are unresolved trees."""

    name: str
    type: str
    properties: Any
    depends_on: frozenset[str]
    deletion_policy: str  # "Delete" | "Retain" | "Snapshot"
    metadata: Any
    update_policy: Any
    # The id of an existing resource this one stands for (`external_id`): nothing is
    # created, updated or deleted for it, and its properties are not used.
    external_id: str | None = None


@dataclass(frozen=True)
class OutputDefinition:
    """An output of a bound template; `value` is unresolved (None when its condition fails)."""

    name: str
    value: Any
    description: str
    depends_on: frozenset[str]
    condition_true: bool


class ResolveContext(Protocol):
    """What the engine knows about live resources when it resolves a value."""

    def reference(self, resource: str) -> Any:
        """get_resource / Ref: the physical id, or None."""
        ...

    def attribute(self, resource: str, path: Sequence[Any]) -> Any:
        """get_attr / Fn::GetAtt: `path` is [attribute name] ([] for all); None if missing."""
        ...
