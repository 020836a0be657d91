"""HOT's references and strings: get_param, get_resource, get_attr, get_file, str_replace,
list_join (every version). Later functions live in hot_functions_more.py."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from canopy.orchestration.template import limits
from canopy.orchestration.template.functions_base import (
    ConditionLookup,
    Evaluator,
    Function,
    Scope,
    dependencies_of,
)


def is_fn(value: Any) -> bool:
    return isinstance(value, Function)


def step_into(value: Any, key: Any) -> tuple[bool, Any]:
    """One step of a path into a map or list: (found, value)."""
    if isinstance(value, Mapping):
        if isinstance(key, str | int) and key in value:
            return True, value[key]
        return False, None
    if isinstance(value, Sequence) and not isinstance(value, str):
        if isinstance(key, str):
            try:
                key = int(key)
            except ValueError:
                return False, None
        if isinstance(key, int) and not isinstance(key, bool) and -len(value) <= key < len(value):
            return True, value[key]
    return False, None


def to_str(value: Any, fn: Function, as_json: bool) -> str:
    """A value joined or substituted into a string (null is '')."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value)  # "True"/"False", as Heat (Python str)
    if isinstance(value, int | float):
        return str(value)
    if as_json and isinstance(value, Mapping | list):
        return json.dumps(value, sort_keys=True)
    raise fn.error(f"cannot make a string of {json.dumps(value, default=repr)[:200]}")


class GetParam(Function):
    name = "get_param"
    description = "A parameter's value, or a path into it: [name, key or index, ...]."

    def _parts(self) -> tuple[Any, list[Any]]:
        if isinstance(self.args, list):
            if not self.args:
                raise self.error("needs a parameter name")
            return self.args[0], self.args[1:]
        return self.args, []

    def validate(self, scope: Scope) -> None:
        if not isinstance(self.args, str | list) and not is_fn(self.args):
            raise self.error("the argument must be a parameter name or a list [name, path...]")
        name, _ = self._parts()
        if isinstance(name, str) and name not in scope.parameters:
            raise self.error(f"no parameter named {name!r}")
        if not isinstance(name, str) and not is_fn(name):
            raise self.error("the parameter name must be a string")

    def result(self, ev: Evaluator) -> Any:
        args = ev.resolve(self.args)
        name, path = (args[0], args[1:]) if isinstance(args, list) and args else (args, [])
        if not isinstance(name, str):
            raise self.error("the parameter name must be a string")
        if name not in ev.parameters:
            raise self.error(f"no parameter named {name!r}")
        value = ev.parameters[name]
        for key in path:
            found, value = step_into(value, key)
            if not found:
                return ""  # as Heat: a path that is not there yields ''
        return value


class ResourceRef(Function):
    """Shared by functions naming a resource as a literal string."""

    def _resource_name(self) -> Any:
        return self.args

    def check_resource(self, scope: Scope) -> None:
        name = self._resource_name()
        if not isinstance(name, str):
            raise self.error("the resource name must be a string")
        if name not in scope.resources:
            raise self.error(f"no resource named {name!r}")

    def dependencies(self, conditions: ConditionLookup | None) -> Iterator[str]:
        yield from dependencies_of(self.args, conditions)
        name = self._resource_name()
        if isinstance(name, str):
            yield name


class GetResource(ResourceRef):
    name = "get_resource"
    description = "A resource's reference (its physical id)."

    def validate(self, scope: Scope) -> None:
        self.check_resource(scope)

    def result(self, ev: Evaluator) -> Any:
        return ev.reference(self.args, self.path)


class GetAttr(ResourceRef):
    """get_attr as of 2015-10-15: [resource] alone gives every attribute as a map."""

    name = "get_attr"
    description = "A resource's attribute, or a path into it: [resource, attribute, path...]."
    allow_all: ClassVar[bool] = True

    def _resource_name(self) -> Any:
        return self.args[0] if isinstance(self.args, list) and self.args else None

    def validate(self, scope: Scope) -> None:
        least = 1 if self.allow_all else 2
        if not isinstance(self.args, list) or len(self.args) < least:
            form = "[resource] or " if self.allow_all else ""
            raise self.error(f"the argument must be {form}[resource, attribute, path...]")
        self.check_resource(scope)

    def result(self, ev: Evaluator) -> Any:
        rest = ev.resolve(self.args[1:])
        if not rest:
            return ev.attribute(self.args[0], [], self.path)
        attribute, path = rest[0], rest[1:]
        if not isinstance(attribute, str):
            raise self.error("the attribute name must be a string")
        value = ev.attribute(self.args[0], [attribute], self.path)
        for key in path:
            found, value = step_into(value, key)
            if not found:
                return None  # Heat: a path that is not there yields null
        return value


class GetAttrNamed(GetAttr):
    """get_attr before 2015-10-15: an attribute name is required."""

    allow_all = False


class GetFile(Function):
    name = "get_file"
    description = "The content of a file the client sent in `files`."

    def validate(self, scope: Scope) -> None:
        if isinstance(self.args, str):
            if self.args not in scope.files:
                raise self.error(f"no file {self.args!r} in the request's files")
        elif not is_fn(self.args):
            raise self.error("the argument must be a file name")

    def result(self, ev: Evaluator) -> Any:
        key = ev.resolve(self.args)
        if not isinstance(key, str) or key not in ev.files:
            raise self.error(f"no file {key!r} in the request's files")
        ev.charge(len(ev.files[key]), self.path)
        return ev.files[key]


class StrReplace(Function):
    """str_replace: longer keys first, then the lexically smaller; null is ''."""

    name = "str_replace"
    description = "Substitute each params key in template by its value."
    as_json: ClassVar[bool] = True  # maps and lists are substituted as JSON (2015-10-15)
    strict: ClassVar[bool] = False  # every key must occur in the template
    no_empty: ClassVar[bool] = False  # no value may be null or empty

    def validate(self, scope: Scope) -> None:
        if not isinstance(self.args, Mapping) or set(self.args) != {"template", "params"}:
            raise self.error("the argument must be a map with 'template' and 'params'")
        params = self.args["params"]
        if not isinstance(params, Mapping) and not is_fn(params):
            raise self.error("'params' must be a map")
        template = self.args["template"]
        if not isinstance(template, str) and not is_fn(template):
            raise self.error("'template' must be a string")

    def result(self, ev: Evaluator) -> Any:
        template = ev.resolve(self.args["template"])
        params = ev.resolve(self.args["params"])
        if not isinstance(template, str):
            raise self.error("'template' must be a string")
        if not isinstance(params, Mapping):
            raise self.error("'params' must be a map")
        if len(params) > limits.MAX_REPLACE_KEYS:
            raise self.error(f"'params' has more than {limits.MAX_REPLACE_KEYS} keys")
        values: dict[str, str] = {}
        for key, value in params.items():
            if self.no_empty and (value is None or value == "" or value == [] or value == {}):
                raise self.error(f"the value of param {key!r} is null or empty")
            if not self.as_json and isinstance(value, Mapping | list):
                raise self.error(f"param {key!r} must be a string or a number")
            values[key] = to_str(value, self, self.as_json)
        keys = sorted(sorted(values), key=len, reverse=True)
        if self.strict:
            missing = [k for k in keys if k not in template]
            if missing:
                raise self.error("params not found in the template: " + ", ".join(missing))
        return _replace(template, keys, values, ev, self.path)  # charged as it goes


def _replace(
    text: str, keys: list[str], values: Mapping[str, str], ev: Evaluator, path: str
) -> str:
    """Heat's replacement, without recursion: split by each key in turn (longest first);
    only the text between earlier matches is searched again, never a substituted value.

    The work of each key (the pieces still searched, their characters, the pieces kept) is
    charged before it is done, and each substitution's output before it is built.
    """
    # Pieces in order: (text, searched) where searched pieces are final output.
    pieces: list[tuple[str, bool]] = [(text, False)]
    for key in keys:
        if key == "":
            continue
        live = sum(len(p) for p, done in pieces if not done)
        if live == 0:
            break
        ev.charge(len(pieces) + live, path)
        value = values[key]
        out: list[tuple[str, bool]] = []
        for piece, done in pieces:
            if done or key not in piece:
                out.append((piece, done))
                continue
            parts = piece.split(key)
            ev.charge(len(parts) + (len(parts) - 1) * len(value), path)
            for i, part in enumerate(parts):
                if i and value:
                    out.append((value, True))
                if part:
                    out.append((part, False))
        pieces = out
    return "".join(p for p, _ in pieces)


class StrReplaceScalar(StrReplace):
    """str_replace before 2015-10-15: params are strings or numbers only."""

    as_json = False


class StrReplaceStrict(StrReplace):
    name = "str_replace_strict"
    description = "str_replace, where every params key must occur in the template."
    strict = True


class StrReplaceVStrict(StrReplace):
    name = "str_replace_vstrict"
    description = "str_replace_strict, where no param value may be null or empty."
    strict = True
    no_empty = True


class ListJoin(Function):
    """list_join as of 2015-10-15: several lists; maps and lists as JSON."""

    name = "list_join"
    description = "Join the items of one or more lists with a delimiter."
    multiple: ClassVar[bool] = True

    def validate(self, scope: Scope) -> None:
        if not isinstance(self.args, list) or len(self.args) < 2:
            raise self.error("the argument must be [delimiter, list, ...]")
        if not self.multiple and len(self.args) != 2:
            raise self.error("the argument must be [delimiter, list]")
        if not isinstance(self.args[0], str) and not is_fn(self.args[0]):
            raise self.error("the delimiter must be a string")
        for item in self.args[1:]:
            if not isinstance(item, list) and not is_fn(item) and item is not None:
                raise self.error("each list to join must be a list")

    def result(self, ev: Evaluator) -> Any:
        delim = ev.resolve(self.args[0])
        if not isinstance(delim, str):
            raise self.error("the delimiter must be a string")
        items: list[Any] = []
        for lst in ev.resolve(self.args[1:]):
            if lst is None:
                continue
            if not isinstance(lst, list):
                raise self.error("each list to join must be a list")
            items.extend(lst)
        out = delim.join(to_str(item, self, self.multiple) for item in items)
        ev.charge(len(out), self.path)
        return out


class ListJoinSingle(ListJoin):
    """list_join before 2015-10-15: one list of strings."""

    multiple = False
