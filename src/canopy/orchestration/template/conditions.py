"""Conditions: the `conditions` section, the functions that make booleans, and `if`.

A condition is a boolean, the name of a condition in the `conditions` section, or an
expression of condition functions (equals, not, and, or, contains, get_param). Conditions
depend only on parameters, so a bound template knows every one before any resource exists.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from canopy.orchestration.template.errors import TemplateError, join_path
from canopy.orchestration.template.functions_base import (
    OMIT,
    ConditionLookup,
    Evaluator,
    Function,
    Parser,
    Scope,
    dependencies_of,
)


def check_condition_ref(value: Any, scope: Scope, path: str) -> None:
    """A condition argument: a boolean, a known condition's name, or an expression."""
    if isinstance(value, (bool, Function)):
        return
    if isinstance(value, str):
        if value not in scope.conditions:
            raise TemplateError(f"no condition named {value!r}", path)
        return
    raise TemplateError("a condition must be a boolean, a condition's name or a function", path)


class ConditionFunction(Function):
    """A function whose arguments are conditions (strings name conditions)."""

    @classmethod
    def parse(cls, raw: Any, path: str, parser: Parser, depth: int) -> Function:
        node = cls(parser.condition(raw, path, depth), path)
        node.validate(parser.scope)
        return node


class Equals(Function):
    name = "equals"
    description = "Whether two values are equal."

    def validate(self, scope: Scope) -> None:
        if not isinstance(self.args, list) or len(self.args) != 2:
            raise self.error("the argument must be [value_1, value_2]")

    def result(self, ev: Evaluator) -> Any:
        first, second = ev.resolve(self.args)
        return bool(first == second)


class Not(ConditionFunction):
    name = "not"
    description = "The negation of a condition."

    def validate(self, scope: Scope) -> None:
        check_condition_ref(self.args, scope, self.path)

    def result(self, ev: Evaluator) -> Any:
        return not ev.condition(self.args, self.path)


class And(ConditionFunction):
    name = "and"
    description = "Whether all of two or more conditions hold."
    quantifier: ClassVar[Any] = all

    def validate(self, scope: Scope) -> None:
        if not isinstance(self.args, list) or len(self.args) < 2:
            raise self.error("the argument must be a list of at least 2 conditions")
        for i, cond in enumerate(self.args):
            check_condition_ref(cond, scope, join_path(self.path, i))

    def result(self, ev: Evaluator) -> Any:
        return type(self).quantifier(
            ev.condition(c, join_path(self.path, i)) for i, c in enumerate(self.args)
        )


class Or(And):
    name = "or"
    description = "Whether any of two or more conditions holds."
    quantifier = any


class Contains(Function):
    name = "contains"
    description = "Whether a value is in a list."

    def validate(self, scope: Scope) -> None:
        if not isinstance(self.args, list) or len(self.args) != 2:
            raise self.error("the argument must be [value, list]")
        if not isinstance(self.args[1], list | str | Function):
            raise self.error("the second argument must be a list or a string")

    def result(self, ev: Evaluator) -> Any:
        value, sequence = ev.resolve(self.args)
        if isinstance(sequence, str):
            return isinstance(value, str) and value in sequence  # Heat: a string is a sequence
        if not isinstance(sequence, list):
            raise self.error("the second argument must be a list or a string")
        return value in sequence


class If(Function):
    """if: [condition, value_if_true, value_if_false]; only the branch taken is evaluated."""

    name = "if"
    description = "One of two values, by a condition."
    nullable: ClassVar[bool] = False  # 2021-04-16: the false value may be left out

    @classmethod
    def parse(cls, raw: Any, path: str, parser: Parser, depth: int) -> Function:
        least = 2 if cls.nullable else 3
        if not isinstance(raw, list) or not least <= len(raw) <= 3:
            shape = (
                "[condition, value_if_true(, value_if_false)]"
                if cls.nullable
                else ("[condition, value_if_true, value_if_false]")
            )
            raise TemplateError(f"the argument must be {shape}", path)
        cond = parser.condition(raw[0], join_path(path, 0), depth + 1)
        branches = [
            parser.data(v, join_path(path, i + 1), depth + 1) for i, v in enumerate(raw[1:])
        ]
        node = cls([cond, *branches], path)
        node.validate(parser.scope)
        return node

    def validate(self, scope: Scope) -> None:
        check_condition_ref(self.args[0], scope, join_path(self.path, 0))

    def _branch(self, truth: bool) -> Any:
        if truth:
            return self.args[1]
        return self.args[2] if len(self.args) == 3 else OMIT

    def dependencies(self, conditions: ConditionLookup | None) -> Iterator[str]:
        if conditions is None:
            yield from dependencies_of(self.args[1:], None)
            return
        branch = self._branch(conditions.truth(self.args[0], join_path(self.path, 0)))
        if branch is not OMIT:
            yield from dependencies_of(branch, conditions)

    def result(self, ev: Evaluator) -> Any:
        branch = self._branch(ev.condition(self.args[0], join_path(self.path, 0)))
        return OMIT if branch is OMIT else ev.resolve(branch)


class IfNullable(If):
    nullable = True


class ConditionSet:
    """The named conditions of a bound template, each evaluated once, cycles refused."""

    def __init__(self, definitions: Mapping[str, Any], path: str) -> None:
        self._definitions = definitions
        self._path = path
        self._values: dict[str, bool] = {}
        self._evaluating: list[str] = []
        self.evaluator: Evaluator | None = None

    def value(self, name: str, path: str) -> bool:
        if name in self._values:
            return self._values[name]
        if name not in self._definitions:
            raise TemplateError(f"no condition named {name!r}", path)
        if name in self._evaluating:
            cycle = [*self._evaluating[self._evaluating.index(name) :], name]
            raise TemplateError(
                "conditions refer to each other in a cycle: " + " -> ".join(cycle), self._path
            )
        assert self.evaluator is not None
        self._evaluating.append(name)
        try:
            truth = self.evaluator.condition(self._definitions[name], join_path(self._path, name))
        finally:
            self._evaluating.pop()
        self._values[name] = truth
        return truth

    def truth(self, condition: Any, path: str) -> bool:
        assert self.evaluator is not None
        return self.evaluator.condition(condition, path)

    def all(self) -> dict[str, bool]:
        return {name: self.value(name, self._path) for name in self._definitions}
