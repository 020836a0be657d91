"""What a resource type is: a typed schema and start-then-poll steps (no reflection).

Each type is a small class with the methods of `ResourceType`; the engine calls `create`
once (in the step's transaction) and then `check_create` on every later step until it says
done or failed; likewise `delete` / `check_delete`, and `update` for a change made in place.
A step never sleeps: a type that has to wait says until when (`Progress.until`) or that it
is waiting on a server row (`Progress.waiting`), and the engine comes back then.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeGuard, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.clock import Clock
from canopy.domain.context import RequestContext
from canopy.services.servers import ServerService
from canopy.store.models import Stack, StackResource


@dataclass(frozen=True)
class Prop:
    """One property of a resource type, as `/resource_types/{type}` shows it."""

    type: str  # "string" | "integer" | "number" | "boolean" | "map" | "list"
    description: str = ""
    required: bool = False
    default: Any = None
    update_allowed: bool = False
    allowed: tuple[Any, ...] = ()
    # A string property that refuses a map or a list (as Heat refuses it for every string
    # property) instead of taking it as JSON text.
    strict: bool = False

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.type,
            "description": self.description,
            "required": self.required,
            "update_allowed": self.update_allowed,
            "immutable": False,
        }
        if self.default is not None:
            out["default"] = self.default
        if self.allowed:
            out["constraints"] = [{"allowed_values": list(self.allowed)}]
        return out


@dataclass(frozen=True)
class Progress:
    """Where a step left a resource: done, failed (with why), or still going."""

    done: bool = False
    failed: str | None = None
    until: datetime | None = None  # still going: look again at this time

    @staticmethod
    def complete() -> Progress:
        return Progress(done=True)

    @staticmethod
    def failure(reason: str) -> Progress:
        # A reason may quote what a server sent (a wait condition's FAILURE reasons, a
        # deployment's error output: megabytes); it is copied to the resource, the stack,
        # their events and every `stack show`, so it is cut.
        if len(reason) > MAX_REASON:
            reason = reason[: MAX_REASON - len(CUT)] + CUT
        return Progress(failed=reason)


MAX_REASON = 4096  # characters of a failure's reason
CUT = " ... (cut)"


@dataclass
class Step:
    """What a resource type may use in a step: the stack's transaction and its owner."""

    session: AsyncSession
    stack: Stack
    clock: Clock
    servers: ServerService
    ctx: RequestContext
    notes: list[str] = field(default_factory=list)
    # Server id -> its latest placement's reason, read in bulk before the walk (prefetch.py)
    # for the servers that have answered; a server not in it is looked up on its own.
    reasons: dict[str, str] = field(default_factory=dict)
    # The rows prefetch.py loaded, held here for the step: the session's identity map
    # holds them only weakly, and `session.get` finds them there only while they live.
    held: list[object] = field(default_factory=list)
    # Servers prefetch.py found still going (not ACTIVE, SHUTOFF, ERROR or deleted) and did
    # not load: their checks wait. A step that acts on one of them takes it out first.
    going: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Lookups:
    """What exists, prefetched for validation (names and ids)."""

    flavors: frozenset[str] = frozenset()
    images: frozenset[str] = frozenset()
    keypairs: frozenset[str] = frozenset()
    zones: frozenset[str] = frozenset()
    # The names of the stack's files (a group's members may be template resources).
    files: frozenset[str] = frozenset()
    # The environment's resource_registry (type -> type or file), for the member types
    # of groups, which the registry maps as it maps the template's own resources.
    registry: Mapping[str, str] = field(default_factory=dict)
    # The one region canopy serves (its identity settings); "" when not known.
    region: str = ""


class ResourceType(Protocol):
    """A kind of resource the engine can create, update in place and delete."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def properties(self) -> Mapping[str, Prop]: ...

    @property
    def attributes(self) -> Mapping[str, str]: ...

    @property
    def open_properties(self) -> bool:
        """Whether any property is taken (OS::Heat::None stands in for any other type)."""
        ...

    def reference(self, res: StackResource) -> Any:
        """What get_resource / Ref gives for this resource (usually its physical id)."""
        ...

    def validate(self, props: Mapping[str, Any], known: Lookups) -> None:
        """Refuse what can be refused before anything exists (InvalidRequest).

        `props` are typed and defaulted; a value still unknown (it refers to another
        resource) is None and is not checked."""
        ...

    def in_place(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        """Whether a change from `old` to `new` properties can be made without replacing."""
        ...

    async def create(self, step: Step, res: StackResource) -> Progress:
        """Start creating `res` from `res.properties` (resolved and typed)."""
        ...

    async def update(self, step: Step, res: StackResource, new: dict[str, Any]) -> Progress:
        """Start changing `res` in place to the properties `new` (only if `in_place`)."""
        ...

    async def delete(self, step: Step, res: StackResource) -> Progress:
        """Start deleting `res` (idempotent: what is already gone is deleted)."""
        ...

    async def check(self, step: Step, res: StackResource) -> Progress:
        """How the action started on `res` (`res.action`) is going."""
        ...


@runtime_checkable
class CreatesMany(Protocol):
    """A type whose new resources one step starts together (servers: one quota check and
    one write for all of them rather than one each)."""

    async def create_many(
        self,
        step: Step,
        rows: Sequence[StackResource],
        before: Callable[[], Awaitable[None]] | None = None,
    ) -> list[Progress]:
        """`create` for each of `rows`, in order; each fails or goes on alone. `before` is
        awaited once, after the rows have their ids of what they create and before
        anything of theirs is written."""
        ...


_MANY: dict[type, bool] = {}


def creates_many(kind: object) -> TypeGuard[CreatesMany]:
    """`isinstance(kind, CreatesMany)`, remembered by class: a protocol's isinstance
    inspects the class each time, and a step asks it once per new resource."""
    cls = type(kind)
    found = _MANY.get(cls)
    if found is None:
        found = _MANY[cls] = isinstance(kind, CreatesMany)
    return found


def changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> set[str]:
    """The property names whose values differ."""
    return {k for k in set(old) | set(new) if old.get(k) != new.get(k)}


def updatable(schema: Mapping[str, Prop], old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether every changed property allows an update in place."""
    return all(name in schema and schema[name].update_allowed for name in changed(old, new))
