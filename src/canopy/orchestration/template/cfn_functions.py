"""CloudFormation's functions, as Heat runs them (also valid in HOT 2013-05-23)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from canopy.orchestration.template.conditions import And, Equals, If, Not, Or
from canopy.orchestration.template.errors import TemplateError
from canopy.orchestration.template.functions_base import (
    ConditionLookup,
    Evaluator,
    Function,
    Parser,
    Scope,
)
from canopy.orchestration.template.hot_functions import (
    GetAttrNamed,
    GetParam,
    ListJoinSingle,
    StrReplaceScalar,
    is_fn,
)


class Ref(Function):
    """Ref: a resource's reference if a resource has that name, else a parameter's value."""

    name = "Ref"
    description = "A resource's reference, or a parameter's value."

    def validate(self, scope: Scope) -> None:
        if not isinstance(self.args, str):
            raise self.error("the argument must be a resource or parameter name")
        if self.args not in scope.resources and self.args not in scope.parameters:
            raise self.error(f"no resource or parameter named {self.args!r}")
        self._is_resource = self.args in scope.resources

    def dependencies(self, conditions: ConditionLookup | None) -> Iterator[str]:
        if self._is_resource:
            yield self.args

    def result(self, ev: Evaluator) -> Any:
        if self._is_resource:
            return ev.reference(self.args, self.path)
        if self.args not in ev.parameters:
            raise self.error(f"no parameter named {self.args!r}")
        return ev.parameters[self.args]


class ParamRef(GetParam):
    """Ref inside Conditions: parameters only."""

    name = "Ref"

    def validate(self, scope: Scope) -> None:
        if not isinstance(self.args, str):
            raise self.error("the argument must be a parameter name")
        super().validate(scope)


class GetAtt(GetAttrNamed):
    name = "Fn::GetAtt"
    description = "A resource's attribute: [resource, attribute]."

    def validate(self, scope: Scope) -> None:
        if not isinstance(self.args, list) or len(self.args) != 2:
            raise self.error("the argument must be [resource, attribute]")
        super().validate(scope)


class Join(ListJoinSingle):
    name = "Fn::Join"
    description = "Join a list of strings with a delimiter: [delimiter, [strings]]."


class Replace(StrReplaceScalar):
    """Fn::Replace: [{key: value}, template]."""

    name = "Fn::Replace"
    description = "Substitute each key by its value: [{key: value, ...}, string]."

    @classmethod
    def parse(cls, raw: Any, path: str, parser: Parser, depth: int) -> Function:
        if not isinstance(raw, list) or len(raw) != 2:
            raise TemplateError("the argument must be [{key: value, ...}, string]", path)
        parsed = parser.data(raw, path, depth)
        node = cls({"params": parsed[0], "template": parsed[1]}, path)
        node.validate(parser.scope)
        return node

    def to_data(self) -> dict[str, Any]:
        return {self.name: [self.args["params"], self.args["template"]]}


class Base64(Function):
    """Fn::Base64 passes its string through unencoded, as Heat does (servers take plain text)."""

    name = "Fn::Base64"
    description = "Its argument, unchanged (Heat accepts user data in plain text)."

    def validate(self, scope: Scope) -> None:
        if not isinstance(self.args, str) and not is_fn(self.args):
            raise self.error("the argument must be a string")

    def result(self, ev: Evaluator) -> Any:
        value = ev.resolve(self.args)
        if not isinstance(value, str):
            raise self.error("the argument must be a string")
        return value


class FindInMap(Function):
    name = "Fn::FindInMap"
    description = "A value from Mappings: [map, key, value key]."

    def validate(self, scope: Scope) -> None:
        if not isinstance(self.args, list) or len(self.args) != 3:
            raise self.error("the argument must be [map name, key, value key]")
        first = self.args[0]
        if isinstance(first, str) and first not in scope.mappings:
            raise self.error(f"no mapping named {first!r}")

    def result(self, ev: Evaluator) -> Any:
        name, key, second = ev.resolve(self.args)
        mapping = ev.mappings.get(name) if isinstance(name, str) else None
        if not isinstance(mapping, Mapping):
            raise self.error(f"no mapping named {name!r}")
        entry = mapping.get(key) if isinstance(key, str) else None
        if not isinstance(entry, Mapping) or not isinstance(second, str) or second not in entry:
            raise self.error(f"mapping {name!r} has no value at [{key!r}, {second!r}]")
        return entry[second]


class GetAZs(Function):
    name = "Fn::GetAZs"
    description = "The availability zones of the stack's region."

    def result(self, ev: Evaluator) -> Any:
        return list(ev.identity.availability_zones)


class Select(Function):
    """Fn::Select: [index, list] or [key, map]; what is not there is ''."""

    name = "Fn::Select"
    description = "An item of a list by index, or of a map by key: [index, collection]."

    def validate(self, scope: Scope) -> None:
        if not isinstance(self.args, list) or len(self.args) != 2:
            raise self.error("the argument must be [index, collection]")

    def result(self, ev: Evaluator) -> Any:
        index, collection = ev.resolve(self.args)
        if collection == "" or collection is None:
            return ""
        if isinstance(collection, str):
            try:
                collection = json.loads(collection)
            except ValueError as e:
                raise self.error(f"the collection is not JSON: {e}") from None
            except RecursionError:
                raise self.error("the collection is nested too deep") from None
        if isinstance(collection, Mapping):
            if not isinstance(index, str):
                raise self.error("the index into a map must be a string")
            return collection.get(index, "")
        if isinstance(collection, list):
            try:
                position = int(index)
            except (TypeError, ValueError, OverflowError):
                raise self.error("the index into a list must be an integer") from None
            return collection[position] if 0 <= position < len(collection) else ""
        raise self.error("the collection must be a list or a map")


class Split(Function):
    name = "Fn::Split"
    description = "Split a string by a delimiter: [delimiter, string]."

    def validate(self, scope: Scope) -> None:
        if not isinstance(self.args, list) or len(self.args) != 2:
            raise self.error("the argument must be [delimiter, string]")
        if not isinstance(self.args[0], str) or self.args[0] == "":
            raise self.error("the delimiter must be a non-empty string")

    def result(self, ev: Evaluator) -> Any:
        text = ev.resolve(self.args[1])
        if not isinstance(text, str):
            raise self.error("the value to split must be a string")
        parts = text.split(self.args[0])
        ev.charge(len(parts), self.path)
        return parts


class CfnIf(If):
    name = "Fn::If"


class CfnEquals(Equals):
    name = "Fn::Equals"


class CfnNot(Not):
    """Fn::Not takes a one-item list of a condition, as in CloudFormation."""

    name = "Fn::Not"

    @classmethod
    def parse(cls, raw: Any, path: str, parser: Parser, depth: int) -> Function:
        if isinstance(raw, list):
            if len(raw) != 1:
                raise TemplateError("the argument must be [condition]", path)
            raw = raw[0]
        return super().parse(raw, path, parser, depth)

    def to_data(self) -> dict[str, Any]:
        return {self.name: [self.args]}


class ConditionRef(Function):
    """{"Condition": name} inside Fn::And/Or/Not, as CloudFormation writes a reference."""

    name = "Condition"
    description = "The truth of a named condition."

    def validate(self, scope: Scope) -> None:
        if not isinstance(self.args, str) or self.args not in scope.conditions:
            raise self.error(f"no condition named {self.args!r}")

    def result(self, ev: Evaluator) -> Any:
        return ev.conditions.value(self.args, self.path)


class CfnAnd(And):
    name = "Fn::And"


class CfnOr(Or):
    name = "Fn::Or"
