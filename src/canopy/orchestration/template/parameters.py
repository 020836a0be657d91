"""Parameter declarations (HOT and CloudFormation), and typing the values a user sends.

The client sends every value as a string; defaults come typed from the template. Both go
through the same conversion: Number -> int or float, Json -> map or list, Boolean -> bool,
CommaDelimitedList -> list of strings, String -> str.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from canopy.domain.text import text_problem
from canopy.orchestration.template import limits
from canopy.orchestration.template.constraints import (
    Constraint,
    make_constraint,
    parse_hot_constraint,
    pattern_budget,
)
from canopy.orchestration.template.errors import TemplateError, join_path
from canopy.orchestration.template.model import ConstraintCheck, ParameterInfo

HOT_TYPES = {
    "string": "String",
    "number": "Number",
    "json": "Json",
    "comma_delimited_list": "CommaDelimitedList",
    "boolean": "Boolean",
}
CFN_TYPES = ("String", "Number", "Json", "CommaDelimitedList", "Boolean")
HOT_KEYS = ("type", "description", "default", "constraints", "hidden", "label", "immutable")
CFN_KEYS = (
    "Type", "Default", "NoEcho", "AllowedValues", "AllowedPattern", "MaxLength", "MinLength",
    "MaxValue", "MinValue", "Description", "ConstraintDescription", "Label",
)  # fmt: skip
_TRUE = ("1", "t", "true", "on", "y", "yes")
_FALSE = ("0", "f", "false", "off", "n", "no")
PSEUDO_HOT = ("OS::stack_name", "OS::stack_id", "OS::project_id")
PSEUDO_CFN = ("AWS::StackName", "AWS::StackId", "AWS::Region")


@dataclass(frozen=True)
class ParamSchema:
    """One declared parameter."""

    name: str
    type: str  # String | Number | Json | CommaDelimitedList | Boolean
    default: Any  # raw, as in the template (None: no default)
    description: str
    label: str
    hidden: bool
    immutable: bool
    constraints: tuple[Constraint, ...]
    tags: tuple[str, ...] = ()
    list_of_numbers: bool = False  # CFN List<Number>

    def info(self) -> ParameterInfo:
        return ParameterInfo(
            name=self.name,
            type=self.type,
            default=self.default,
            description=self.description,
            label=self.label,
            hidden=self.hidden,
            constraints=[c.view() for c in self.constraints],
        )

    def coerce(self, value: Any, path: str) -> Any:
        """`value` in this parameter's type; TemplateError naming the parameter if it is not."""
        try:
            typed = convert(self.type, value)
        except ValueError as e:
            raise TemplateError(f"parameter {self.name!r} is invalid: {e}", path) from None
        if self.list_of_numbers:
            for item in typed:
                try:
                    convert("Number", item)
                except ValueError:
                    raise TemplateError(
                        f"parameter {self.name!r} is invalid: {item!r} is not a number", path
                    ) from None
        return typed

    def check(self, typed: Any, check: ConstraintCheck | None, path: str) -> None:
        for constraint in self.constraints:
            reason = constraint.check(typed, self.type, check)
            if reason is not None:
                raise TemplateError(f"parameter {self.name!r} is invalid: {reason}", path)


def convert(ptype: str, value: Any) -> Any:
    """A value in a parameter type; ValueError says why not."""
    if ptype == "String":
        if isinstance(value, Mapping | list):
            raise ValueError(f"{json.dumps(value)[:200]} is not a string")
        if isinstance(value, bool):
            return "true" if value else "false"
        return "" if value is None else str(value)
    if ptype == "Number":
        return to_number(value)
    if ptype == "Boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"{value!r} is not a boolean")
    if ptype == "CommaDelimitedList":
        if isinstance(value, list):
            return [_list_item(v) for v in value]
        if isinstance(value, str):
            return [] if value == "" else value.split(",")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return [str(value)]
        raise ValueError(f"{value!r} is not a comma-delimited list")
    # Json
    if isinstance(value, Mapping | list):
        limits.check_size(value, "value")
        return value
    if isinstance(value, str):
        if value == "":
            return {}
        try:
            parsed = json.loads(value)
        except ValueError as e:
            raise ValueError(f"value must be valid JSON: {e}") from None
        except RecursionError:
            raise ValueError(f"value is nested more than {limits.MAX_DEPTH} levels deep") from None
        limits.check_size(parsed, "value")  # a TemplateError is a ValueError
        problem = text_problem(parsed, "value")  # decoded past the edge's text checks
        if problem is not None:
            raise ValueError(problem)
        if not isinstance(parsed, dict | list):
            raise ValueError("value must be a JSON map or list")
        return parsed
    raise ValueError(f"{value!r} is not a JSON map or list")


def _list_item(value: Any) -> str:
    if isinstance(value, Mapping | list):
        raise ValueError("a comma-delimited list holds strings")
    return str(value)


def to_number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} is not a number")
        return number
    raise ValueError(f"{value!r} is not a number")


@pattern_budget
def parse_hot_parameters(
    section: Any, modulo: bool, tags: bool, path: str = "parameters"
) -> dict[str, ParamSchema]:
    out: dict[str, ParamSchema] = {}
    for name, raw in _entries(section, path).items():
        at = join_path(path, name)
        if not isinstance(raw, dict):
            raise TemplateError("a parameter must be a map", at)
        allowed = HOT_KEYS + (("tags",) if tags else ())
        for key in raw:
            if key not in allowed:
                raise TemplateError(f"unknown key {key!r} (allowed: {', '.join(allowed)})", at)
        if "type" not in raw:
            raise TemplateError("a parameter needs a type", at)
        ptype = HOT_TYPES.get(raw["type"]) if isinstance(raw["type"], str) else None
        if ptype is None:
            raise TemplateError(
                f"unknown type {raw['type']!r} (known: {', '.join(HOT_TYPES)})",
                join_path(at, "type"),
            )
        cons = raw.get("constraints") or []
        if not isinstance(cons, list):
            raise TemplateError("constraints must be a list", join_path(at, "constraints"))
        constraints = tuple(
            parse_hot_constraint(c, ptype, modulo, join_path(join_path(at, "constraints"), i))
            for i, c in enumerate(cons)
        )
        tag_list = raw.get("tags") or []
        if not isinstance(tag_list, list) or not all(isinstance(t, str) for t in tag_list):
            raise TemplateError("tags must be a list of strings", join_path(at, "tags"))
        schema = ParamSchema(
            name=name,
            type=ptype,
            default=raw.get("default"),
            description=_text(raw, "description", at),
            label=_text(raw, "label", at) or name,
            hidden=_flag(raw, "hidden", at),
            immutable=_flag(raw, "immutable", at),
            constraints=constraints,
            tags=tuple(tag_list),
        )
        out[name] = _checked_default(schema, at)
    return out


@pattern_budget
def parse_cfn_parameters(section: Any, path: str = "Parameters") -> dict[str, ParamSchema]:
    out: dict[str, ParamSchema] = {}
    for name, raw in _entries(section, path).items():
        at = join_path(path, name)
        if not isinstance(raw, dict):
            raise TemplateError("a parameter must be a map", at)
        for key in raw:
            if key not in CFN_KEYS:
                raise TemplateError(f"unknown key {key!r} (allowed: {', '.join(CFN_KEYS)})", at)
        raw_type = raw.get("Type")
        if raw_type is None:
            raise TemplateError("a parameter needs a Type", at)
        numbers = raw_type == "List<Number>"
        ptype = raw_type
        if isinstance(raw_type, str) and raw_type.startswith("List<") and raw_type.endswith(">"):
            ptype = "CommaDelimitedList"  # List<String>, List<Number>, List<AWS::...>
        if ptype not in CFN_TYPES:
            raise TemplateError(
                f"unknown Type {raw_type!r} (known: {', '.join(CFN_TYPES)}, List<...>)",
                join_path(at, "Type"),
            )
        desc = _text(raw, "ConstraintDescription", at)
        constraints: list[Constraint] = []
        if "MinValue" in raw or "MaxValue" in raw:
            spec = {k: raw[c] for k, c in (("min", "MinValue"), ("max", "MaxValue")) if c in raw}
            constraints.append(make_constraint("range", spec, desc, ptype, at))
        if "MinLength" in raw or "MaxLength" in raw:
            spec = {k: raw[c] for k, c in (("min", "MinLength"), ("max", "MaxLength")) if c in raw}
            constraints.append(make_constraint("length", spec, desc, ptype, at))
        if "AllowedValues" in raw:
            constraints.append(
                make_constraint("allowed_values", raw["AllowedValues"], desc, ptype, at)
            )
        if "AllowedPattern" in raw:
            constraints.append(
                make_constraint("allowed_pattern", raw["AllowedPattern"], desc, ptype, at)
            )
        schema = ParamSchema(
            name=name,
            type=ptype,
            default=raw.get("Default"),
            description=_text(raw, "Description", at),
            label=_text(raw, "Label", at) or name,
            hidden=str(raw.get("NoEcho", "false")).lower() == "true",
            immutable=False,
            constraints=tuple(constraints),
            list_of_numbers=numbers,
        )
        out[name] = _checked_default(schema, at)
    return out


def _entries(section: Any, path: str) -> dict[str, Any]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise TemplateError("must be a map of parameters", path)
    if len(section) > limits.MAX_PARAMETERS:
        raise TemplateError(f"more than {limits.MAX_PARAMETERS} parameters", path)
    return section


def _text(raw: Mapping[str, Any], key: str, path: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TemplateError(f"{key} must be a string", join_path(path, key))
    return value


def _flag(raw: Mapping[str, Any], key: str, path: str) -> bool:
    value = raw.get(key, False)
    try:
        typed = convert("Boolean", value)
    except ValueError:
        raise TemplateError(f"{key} must be a boolean", join_path(path, key)) from None
    return bool(typed)


def _checked_default(schema: ParamSchema, path: str) -> ParamSchema:
    """A default must have the parameter's type and meet its (non-custom) constraints."""
    if schema.default is not None:
        at = join_path(path, "default")
        typed = schema.coerce(schema.default, at)
        schema.check(typed, None, at)
    return schema


@pattern_budget
def bind_parameters(
    schemas: Mapping[str, ParamSchema],
    values: Mapping[str, Any],
    check: ConstraintCheck | None,
    kind: str,
    *,
    strict: bool = True,
) -> dict[str, Any]:
    """Typed values of every declared parameter: the user's, else the default. Not
    `strict` (Heat's validate of a template alone): a parameter with neither is None, an
    unknown value, as a reference to a resource not made yet is."""
    unknown = sorted(set(values) - set(schemas))
    pseudo = PSEUDO_HOT if kind == "hot" else PSEUDO_CFN
    unknown = [n for n in unknown if n not in pseudo]
    if unknown:
        raise TemplateError(f"the template does not declare parameter(s) {', '.join(unknown)}")
    typed: dict[str, Any] = {}
    missing: list[str] = []
    for name, schema in schemas.items():
        at = f"parameters.{name}"
        raw = values.get(name)
        if raw is None:
            if schema.default is None:
                missing.append(name)
                continue
            raw = schema.default
        value = schema.coerce(raw, at)
        schema.check(value, check, at)
        typed[name] = value
    if missing and strict:
        raise TemplateError(f"the parameter(s) {', '.join(missing)} need a value")
    typed.update(dict.fromkeys(missing))
    return typed
