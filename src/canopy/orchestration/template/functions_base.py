"""What every template function is: a small typed unit with validate, result, dependencies.

A function call in a template is a one-key map whose key names a function of the
template's version ({"get_param": "flavor"}). Parsing turns each call into a `Function`
node holding its parsed arguments; the engine treats nodes as opaque and asks
`BoundTemplate.resolve` to evaluate them. Every other value is plain JSON data.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from canopy.orchestration.template import limits
from canopy.orchestration.template.errors import TemplateError, join_path
from canopy.orchestration.template.model import ResolveContext, StackIdentity

log = logging.getLogger("canopy.orchestration")

OMIT: Any = Ellipsis
"""What `if` without a false branch yields when false: the enclosing item is dropped."""


@dataclass(frozen=True)
class Scope:
    """What parsing knows of the template a function sits in, to check its arguments."""

    kind: str  # "hot" | "cfn"
    version: str  # "2018-08-31", "2010-09-09"
    parameters: frozenset[str]  # declared and pseudo parameters
    resources: frozenset[str]
    conditions: frozenset[str]
    files: Mapping[str, str] = field(default_factory=dict)
    mappings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FunctionTable:
    """The functions of one template version, and why other known names are not."""

    functions: Mapping[str, type[Function]]
    condition_functions: Mapping[str, type[Function]]
    unavailable: Mapping[str, str]  # name -> "was introduced in ..." / "was removed in ..."


class ConditionLookup(Protocol):
    """The truth of a named condition of a bound template."""

    def value(self, name: str, path: str) -> bool: ...

    def truth(self, condition: Any, path: str) -> bool:
        """A condition argument's truth: a name, a boolean or an expression node."""
        ...


class Parser:
    """Turns raw template data into trees of plain data and `Function` nodes."""

    def __init__(self, scope: Scope, table: FunctionTable, version_label: str) -> None:
        self.scope = scope
        self.table = table
        self.version_label = version_label  # "heat_template_version 2016-10-14"

    def data(self, raw: Any, path: str, depth: int) -> Any:
        """A value where function calls of the version's main table are recognised."""
        return self._walk(raw, path, depth, self.table.functions)

    def condition(self, raw: Any, path: str, depth: int) -> Any:
        """A condition expression: only condition functions; strings name conditions."""
        return self._walk(raw, path, depth, self.table.condition_functions)

    def _walk(
        self, raw: Any, path: str, depth: int, functions: Mapping[str, type[Function]]
    ) -> Any:
        if depth > limits.MAX_DEPTH:
            raise TemplateError(f"nested more than {limits.MAX_DEPTH} levels deep", path)
        if isinstance(raw, Function):
            return raw  # already parsed (resolve accepts parsed and raw trees)
        if isinstance(raw, Mapping):
            if len(raw) == 1:
                (key, args), *_ = raw.items()
                if isinstance(key, str):
                    fn = functions.get(key)
                    if fn is not None:
                        return fn.parse(args, join_path(path, key), self, depth + 1)
                    if key in self.table.unavailable or key in self.table.functions:
                        raise TemplateError(self._not_here(key, functions), join_path(path, key))
            out: dict[str, Any] = {}
            for key, value in raw.items():
                if not isinstance(key, str):
                    raise TemplateError(f"map key {key!r} is not a string", path)
                out[key] = self._walk(value, join_path(path, key), depth + 1, functions)
            return out
        if isinstance(raw, list | tuple):
            return [
                self._walk(v, join_path(path, i), depth + 1, functions) for i, v in enumerate(raw)
            ]
        if raw is None or isinstance(raw, str | int | float | bool):
            return raw
        raise TemplateError(f"{type(raw).__name__} is not template data", path)

    def _not_here(self, key: str, functions: Mapping[str, type[Function]]) -> str:
        if functions is self.table.condition_functions and key in self.table.functions:
            return f"{key} cannot be used in a condition"
        return f"{key} is not available in {self.version_label}: it {self.table.unavailable[key]}"


class Function(ABC):
    """One function call: parsed arguments, a static check, its result and dependencies."""

    name: ClassVar[str]
    description: ClassVar[str]

    def __init__(self, args: Any, path: str) -> None:
        self.args = args
        self.path = path  # where the call sits, ending with the function's name

    @classmethod
    def parse(cls, raw: Any, path: str, parser: Parser, depth: int) -> Function:
        """The node for `{name: raw}`: arguments parsed, then checked."""
        node = cls(parser.data(raw, path, depth), path)
        node.validate(parser.scope)
        return node

    def validate(self, scope: Scope) -> None:
        """Check the arguments as far as they are known before any value is."""
        return None

    def dependencies(self, conditions: ConditionLookup | None) -> Iterator[str]:
        """The resources this call refers to (only the branches taken, when known)."""
        yield from dependencies_of(self.args, conditions)

    @abstractmethod
    def result(self, ev: Evaluator) -> Any:
        """The call's value."""

    def error(self, message: str) -> TemplateError:
        return TemplateError(message, self.path)

    def to_data(self) -> dict[str, Any]:
        """The call as template data again."""
        return {self.name: to_data(self.args)}

    def __repr__(self) -> str:
        return json.dumps(self.to_data(), default=repr)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.to_data() == other.to_data()

    def __hash__(self) -> int:
        return hash(repr(self))


def to_data(value: Any) -> Any:
    """A parsed tree as plain template data."""
    if isinstance(value, Function):
        return value.to_data()
    if isinstance(value, Mapping):
        return {k: to_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_data(v) for v in value]
    return value


def dependencies_of(value: Any, conditions: ConditionLookup | None) -> Iterator[str]:
    """Every resource a parsed tree refers to."""
    if isinstance(value, Function):
        yield from value.dependencies(conditions)
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from dependencies_of(v, conditions)
    elif isinstance(value, list):
        for v in value:
            yield from dependencies_of(v, conditions)


def canonical(value: Any) -> Any:
    """A hashable stand-in for plain data, equal exactly when the values are equal (==)."""
    if isinstance(value, Mapping):
        return frozenset((k, canonical(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return tuple(canonical(v) for v in value)
    return value


def contains_function(value: Any) -> bool:
    if isinstance(value, Function):
        return True
    if isinstance(value, Mapping):
        return any(contains_function(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_function(v) for v in value)
    return False


class Evaluator:
    """Evaluates parsed trees for one bound template, within a budget of work."""

    def __init__(
        self,
        *,
        parameters: Mapping[str, Any],
        identity: StackIdentity,
        conditions: ConditionLookup,
        files: Mapping[str, str],
        mappings: Mapping[str, Any],
        ctx: ResolveContext | None,
    ) -> None:
        self.parameters = parameters
        self.identity = identity
        self.conditions = conditions
        self.files = files
        self.mappings = mappings
        self.ctx = ctx
        self._units = 0

    def resolve(self, value: Any) -> Any:
        """`value` with every function evaluated (an omitted `if` drops its item)."""
        if isinstance(value, Function):
            return self.call(value)
        if isinstance(value, Mapping):
            out = {k: self.resolve(v) for k, v in value.items()}
            return {k: v for k, v in out.items() if v is not OMIT}
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not OMIT]
        return value

    def call(self, fn: Function) -> Any:
        """`fn`'s result. Arguments of a type no check foresaw (a function's bug) fail as
        the template's error at the call, never as an exception the engine cannot place: a
        400 when a stack is validated, the resource's failure when it is created."""
        try:
            return fn.result(self)
        except TemplateError:
            raise
        except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError) as e:
            log.warning("%s: unexpected error in %s", fn.path, fn.name, exc_info=True)
            raise fn.error(f"invalid arguments ({type(e).__name__}: {e})") from e

    def charge(self, units: int, path: str) -> None:
        """Count `units` of output (characters, elements); refuse past the budget."""
        self._units += units
        if self._units > limits.MAX_RESULT_UNITS:
            raise TemplateError(
                f"evaluating this value produces more than {limits.MAX_RESULT_UNITS} "
                "characters or elements",
                path,
            )

    def condition(self, expr: Any, path: str) -> bool:
        """A condition reference: a condition's name, a boolean, or an expression node."""
        if isinstance(expr, bool):
            return expr
        if isinstance(expr, str):
            return self.conditions.value(expr, path)
        if isinstance(expr, Function):
            value = self.call(expr)
            if not isinstance(value, bool):
                raise TemplateError(f"a condition must be a boolean, not {value!r}", path)
            return value
        raise TemplateError(f"invalid condition {expr!r}", path)

    def reference(self, resource: str, path: str) -> Any:
        if self.ctx is None:
            raise TemplateError(f"resource {resource!r} cannot be referred to here", path)
        return self.ctx.reference(resource)

    def attribute(self, resource: str, path_in: Sequence[Any], path: str) -> Any:
        if self.ctx is None:
            raise TemplateError(f"resource {resource!r} cannot be referred to here", path)
        return self.ctx.attribute(resource, path_in)
