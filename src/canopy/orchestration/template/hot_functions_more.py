"""HOT's later functions: repeat, digest, str_split, map_merge, map_replace, filter,
make_url, list_concat(_unique); and the ones Canopy refuses clearly (yaql, resource_facade)."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib import parse as urlparse

from canopy.orchestration.template import limits
from canopy.orchestration.template.functions_base import Evaluator, Function, Scope, canonical
from canopy.orchestration.template.hot_functions import is_fn

DIGESTS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")


def _list_or_fn(value: Any) -> bool:
    return isinstance(value, list) or is_fn(value)


class Repeat(Function):
    """repeat (2015-04-30): every combination of the for_each lists, substituted in template."""

    name = "repeat"
    description = "A list made by substituting each for_each item into a template."
    maps_allowed: ClassVar[bool] = False  # 2016-10-14: a map's keys are iterated
    permutations_allowed: ClassVar[bool] = False  # 2017-09-01: `permutations: false` zips

    def validate(self, scope: Scope) -> None:
        keys = {"template", "for_each"} | ({"permutations"} if self.permutations_allowed else set())
        if not isinstance(self.args, Mapping) or not {"template", "for_each"} <= set(self.args):
            raise self.error("the argument must be a map with 'template' and 'for_each'")
        extra = sorted(set(self.args) - keys)
        if extra:
            raise self.error(f"unknown argument(s) {', '.join(extra)}")
        if not isinstance(self.args["for_each"], Mapping) and not is_fn(self.args["for_each"]):
            raise self.error("'for_each' must be a map of placeholder to list")
        if not isinstance(self.args.get("permutations", True), bool):
            raise self.error("'permutations' must be a boolean")

    def result(self, ev: Evaluator) -> Any:
        for_each = ev.resolve(self.args["for_each"])
        if not isinstance(for_each, Mapping) or not for_each:
            raise self.error("'for_each' must be a non-empty map of placeholder to list")
        nested = self.args.get("permutations", True)
        keys: list[str] = []
        lists: list[list[str]] = []
        for key, items in for_each.items():
            keys.append(key)
            lists.append([self._item(v) for v in self._items(items, nested)])
        if nested:
            count = math.prod(len(v) for v in lists)
        else:
            if len({len(v) for v in lists}) > 1:
                raise self.error("without permutations every for_each list must be as long")
            count = len(lists[0])
        if count > limits.MAX_REPEAT_ITEMS:
            raise self.error(f"would make {count} items (at most {limits.MAX_REPEAT_ITEMS})")
        template = ev.resolve(self.args["template"])
        combos = itertools.product(*lists) if nested else zip(*lists, strict=True)
        out = []
        for combo in combos:
            ev.charge(1, self.path)
            out.append(_substitute(template, keys, combo, ev, self.path))
        return out

    def _items(self, items: Any, nested: bool) -> list[Any]:
        if items is None:
            return []
        if isinstance(items, list):
            return items
        if isinstance(items, Mapping) and self.maps_allowed and nested:
            return list(items)
        kind = "lists or maps" if self.maps_allowed and nested else "lists"
        raise self.error(f"the values of 'for_each' must be {kind}")

    def _item(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise self.error(f"for_each items must be strings or numbers, not {json.dumps(value)}")


def _substitute(
    template: Any, keys: list[str], values: tuple[str, ...], ev: Evaluator, path: str
) -> Any:
    if isinstance(template, str):
        for key, value in zip(keys, values, strict=True):
            template = template.replace(key, value)
        ev.charge(len(template), path)
        return template
    if isinstance(template, list):
        return [_substitute(t, keys, values, ev, path) for t in template]
    if isinstance(template, Mapping):
        return {
            _substitute(k, keys, values, ev, path): _substitute(v, keys, values, ev, path)
            for k, v in template.items()
        }
    return template


class RepeatWithMap(Repeat):
    maps_allowed = True


class RepeatNested(RepeatWithMap):
    permutations_allowed = True


class Digest(Function):
    name = "digest"
    description = "The hex digest of a string: [algorithm, value]."

    def validate(self, scope: Scope) -> None:
        if not isinstance(self.args, list) or len(self.args) != 2:
            raise self.error("the argument must be [algorithm, value]")
        algorithm = self.args[0]
        if isinstance(algorithm, str) and algorithm.lower() not in DIGESTS:
            raise self.error(f"unknown algorithm {algorithm!r} (known: {', '.join(DIGESTS)})")

    def result(self, ev: Evaluator) -> Any:
        algorithm, value = ev.resolve(self.args)
        if not isinstance(algorithm, str) or algorithm.lower() not in DIGESTS:
            raise self.error(f"unknown algorithm {algorithm!r} (known: {', '.join(DIGESTS)})")
        if not isinstance(value, str):
            raise self.error("the value to digest must be a string")
        if len(value) > limits.MAX_DIGEST_INPUT:
            raise self.error(f"the value to digest is longer than {limits.MAX_DIGEST_INPUT}")
        try:
            data = value.encode("latin-1")  # as Heat
        except UnicodeEncodeError:
            data = value.encode("utf-8")
        return hashlib.new(algorithm.lower(), data).hexdigest()


class StrSplit(Function):
    name = "str_split"
    description = "Split a string by a delimiter, or one item of it: [delimiter, string, index]."

    def validate(self, scope: Scope) -> None:
        if not isinstance(self.args, list) or not 2 <= len(self.args) <= 3:
            raise self.error(
                "the argument must be [delimiter, string] or [delimiter, string, index]"
            )
        if isinstance(self.args[0], str) and self.args[0] == "":
            raise self.error("the delimiter must not be empty")

    def result(self, ev: Evaluator) -> Any:
        args = ev.resolve(self.args)
        delim, text = args[0], args[1]
        if not isinstance(delim, str) or delim == "":
            raise self.error("the delimiter must be a non-empty string")
        if text is None:
            return None
        if not isinstance(text, str):
            raise self.error("the value to split must be a string")
        parts = text.split(delim)
        ev.charge(len(parts), self.path)
        if len(args) == 2:
            return parts
        try:
            index = int(args[2])
        except (TypeError, ValueError, OverflowError):
            raise self.error(f"the index {args[2]!r} is not an integer") from None
        if not 0 <= index < len(parts):
            raise self.error(f"the index {index} is not between 0 and {len(parts) - 1}")
        return parts[index]


def _map_or_none(value: Any, fn: Function, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise fn.error(f"{what} must be maps, not {json.dumps(value, default=repr)[:200]}")
    return value


class MapMerge(Function):
    name = "map_merge"
    description = "Merge maps; later keys win."

    def validate(self, scope: Scope) -> None:
        if not _list_or_fn(self.args):
            raise self.error("the argument must be a list of maps")

    def result(self, ev: Evaluator) -> Any:
        maps = ev.resolve(self.args)
        if not isinstance(maps, list):
            raise self.error("the argument must be a list of maps")
        out: dict[str, Any] = {}
        for m in maps:
            out.update(_map_or_none(m, self, "the items to merge"))
        ev.charge(len(out), self.path)
        return out


class MapReplace(Function):
    name = "map_replace"
    description = "Rename a map's keys and replace its values: [map, {keys: .., values: ..}]."

    def validate(self, scope: Scope) -> None:
        if not isinstance(self.args, list) or len(self.args) != 2:
            raise self.error("the argument must be [map, {keys: {...}, values: {...}}]")
        spec = self.args[1]
        if isinstance(spec, Mapping) and not set(spec) <= {"keys", "values"}:
            raise self.error("the replacements may only have 'keys' and 'values'")

    def result(self, ev: Evaluator) -> Any:
        source, spec = ev.resolve(self.args)
        source = _map_or_none(source, self, "the arguments")
        spec = _map_or_none(spec, self, "the arguments")
        if not set(spec) <= {"keys", "values"}:
            raise self.error("the replacements may only have 'keys' and 'values'")
        new_keys = _map_or_none(spec.get("keys"), self, "'keys' and 'values'")
        new_values = _map_or_none(spec.get("values"), self, "'keys' and 'values'")
        out: dict[Any, Any] = {}  # a key may be renamed to a number, as in Heat
        for key, value in source.items():
            target = new_keys.get(key)
            if target is None:
                target = key
            elif not isinstance(target, str | int | float | bool):
                raise self.error(
                    f"the replacement of key {key!r} must be a string, not "
                    f"{json.dumps(target, default=repr)[:200]}"
                )
            elif target in source and target != key:
                raise self.error(f"key replacement {target!r} collides with a key in the input map")
            elif target in out:
                raise self.error(
                    f"key replacement {target!r} collides with a key in the output map"
                )
            hashable = isinstance(value, str | int | float | bool) or value is None
            out[target] = new_values.get(value, value) if hashable else value
        return out


class Filter(Function):
    name = "filter"
    description = "A list without the given values: [values, list]."

    def validate(self, scope: Scope) -> None:
        if not isinstance(self.args, list) or len(self.args) != 2:
            raise self.error("the argument must be [values, list]")

    def result(self, ev: Evaluator) -> Any:
        values, sequence = ev.resolve(self.args)
        if not sequence:
            return sequence
        if not isinstance(sequence, list):
            raise self.error("filter only works on lists")
        if not values:
            return sequence
        if not isinstance(values, list):
            raise self.error("the values to filter out must be a list")
        ev.charge(len(sequence) + len(values), self.path)
        drop = {canonical(v) for v in values}
        return [item for item in sequence if canonical(item) not in drop]


class MakeUrl(Function):
    name = "make_url"
    description = "A correctly escaped URL from its parts (scheme, host, port, path, query ...)."
    KEYS = ("scheme", "username", "password", "host", "port", "path", "query", "fragment")

    def validate(self, scope: Scope) -> None:
        if not isinstance(self.args, Mapping):
            raise self.error("the argument must be a map")
        extra = sorted(set(self.args) - set(self.KEYS))
        if extra:
            raise self.error(
                f"unknown argument(s) {', '.join(extra)} (known: {', '.join(self.KEYS)})"
            )
        self._check(self.args)

    def _check(self, args: Mapping[str, Any]) -> None:
        for key, value in args.items():
            if is_fn(value):
                continue
            if key == "query":
                if not isinstance(value, Mapping):
                    raise self.error("'query' must be a map")
            elif key == "port":
                try:
                    port = int(value)
                except (TypeError, ValueError, OverflowError):
                    raise self.error(f"invalid port {value!r}") from None
                if not 0 < port <= 65535:
                    raise self.error(f"invalid port {port}, must be in range 1-65535")
            elif not isinstance(value, str):
                raise self.error(f"'{key}' must be a string")

    def result(self, ev: Evaluator) -> Any:
        args = ev.resolve(self.args)
        self._check(args)
        scheme = args.get("scheme", "")
        if ":" in scheme:
            raise self.error("'scheme' must not contain ':'")
        netloc = ""
        username = urlparse.quote(args.get("username", ""), safe="")
        password = urlparse.quote(args.get("password", ""), safe="")
        if username or password:
            netloc = username + (":" + password if password else "") + "@"
        host = args.get("host", "")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        host = urlparse.quote(host, safe=":")
        netloc += f"[{host}]" if ":" in host else host
        if args.get("port"):
            netloc += f":{args['port']}"
        query = urlparse.urlencode(args.get("query", {})).replace("%2F", "/")
        return urlparse.urlunsplit(
            (scheme, netloc, urlparse.quote(args.get("path", "")), query,
             urlparse.quote(args.get("fragment", "")))
        )  # fmt: skip


class ListConcat(Function):
    name = "list_concat"
    description = "Concatenate lists."
    unique: ClassVar[bool] = False

    def validate(self, scope: Scope) -> None:
        if not _list_or_fn(self.args):
            raise self.error("the argument must be a list of lists")

    def result(self, ev: Evaluator) -> Any:
        lists = ev.resolve(self.args)
        if not isinstance(lists, list):
            raise self.error("the argument must be a list of lists")
        out: list[Any] = []
        seen: set[Any] = set()
        for item in lists:
            if item is None:
                continue
            if not isinstance(item, list):
                raise self.error(
                    f"items to concatenate must be lists, not {json.dumps(item)[:200]}"
                )
            ev.charge(len(item), self.path)
            for x in item:
                if not self.unique:
                    out.append(x)
                elif (key := canonical(x)) not in seen:
                    seen.add(key)
                    out.append(x)
        return out


class ListConcatUnique(ListConcat):
    name = "list_concat_unique"
    description = "Concatenate lists, keeping the first of equal items."
    unique = True


class Refused(Function):
    """A function Heat has that Canopy does not run: parsing it is a clear error."""

    reason: ClassVar[str]

    def validate(self, scope: Scope) -> None:
        raise self.error(f"{self.name} is not supported by Canopy: {self.reason}")

    def result(self, ev: Evaluator) -> Any:
        raise self.error(f"{self.name} is not supported by Canopy")


class Yaql(Refused):
    name = "yaql"
    description = "Not supported: evaluates a YAQL expression."
    reason = "YAQL expressions are not evaluated (use the other functions)"


class ResourceFacade(Refused):
    name = "resource_facade"
    description = "Not supported: data of the parent resource of a provider template."
    reason = (
        "a template resource's nested template is not given its parent resource's "
        "metadata, deletion_policy or update_policy (pass what it needs as properties)"
    )


class CfnResourceFacade(ResourceFacade):
    name = "Fn::ResourceFacade"


class MemberListToMap(Refused):
    name = "Fn::MemberListToMap"
    description = "Not supported: AWS query-API member lists as a map."
    reason = "the AWS query API's member lists are not used"
