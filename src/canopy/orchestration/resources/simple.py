"""The resource types that live only in canopy's database: Value, None, RandomString and
TestResource. Their create and delete finish in the step that starts them (TestResource's
waits end at a time on the injected clock)."""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.resources.base import Lookups, Progress, Prop, Step, updatable
from canopy.store.models import StackResource


class _Local:
    """What the local types share: nothing to check remotely, references are their id."""

    name = ""
    description = ""
    properties: Mapping[str, Prop] = {}
    attributes: Mapping[str, str] = {}
    open_properties = False

    def reference(self, res: StackResource) -> Any:
        return res.physical_resource_id or None

    def validate(self, props: Mapping[str, Any], known: Lookups) -> None:
        return None

    def in_place(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        return updatable(self.properties, old, new)

    async def create(self, step: Step, res: StackResource) -> Progress:
        res.physical_resource_id = res.id
        res.attributes = self.outputs(res.properties)
        return Progress.complete()

    async def update(self, step: Step, res: StackResource, new: dict[str, Any]) -> Progress:
        res.properties = new
        res.attributes = self.outputs(new)
        return Progress.complete()

    async def delete(self, step: Step, res: StackResource) -> Progress:
        return Progress.complete()

    async def check(self, step: Step, res: StackResource) -> Progress:
        return Progress.complete()

    def outputs(self, props: Mapping[str, Any]) -> dict[str, Any]:
        return {}


class Value(_Local):
    name = "OS::Heat::Value"
    description = "A value (of any type) other resources and outputs can refer to."
    properties = {
        "value": Prop("any", "The value.", required=True, update_allowed=True),
        "type": Prop(
            "string",
            "The type of the value.",
            update_allowed=True,
            allowed=("string", "number", "json", "comma_delimited_list", "boolean"),
        ),
    }
    attributes = {"value": "The value of the value property."}

    def validate(self, props: Mapping[str, Any], known: Lookups) -> None:
        _check_typed(props)

    async def create(self, step: Step, res: StackResource) -> Progress:
        try:
            _check_typed(res.properties)
        except InvalidRequest as e:
            return Progress.failure(f"Property error: properties: {e}")
        return await super().create(step, res)

    async def update(self, step: Step, res: StackResource, new: dict[str, Any]) -> Progress:
        try:
            _check_typed(new)
        except InvalidRequest as e:
            return Progress.failure(f"Property error: properties: {e}")
        return await super().update(step, res, new)

    def outputs(self, props: Mapping[str, Any]) -> dict[str, Any]:
        return {"value": props.get("value")}


def _check_typed(props: Mapping[str, Any]) -> None:
    """Heat checks a Value's value against its `type` (the value property takes that type's
    schema): what cannot be of that type is refused (InvalidRequest). The value is kept as
    it was given."""
    kind, value = props.get("type"), props.get("value")
    if kind is None or value is None:  # untyped, or not known yet (validation)
        return
    if kind == "string":
        ok = isinstance(value, str | int)  # a boolean or an integer reads as text
    elif kind == "number":
        ok = _is_number(value)
    elif kind == "boolean":
        ok = isinstance(value, bool) or (
            isinstance(value, str) and value.lower() in ("true", "false")
        )
    elif kind == "comma_delimited_list":
        ok = isinstance(value, list | str)
    else:  # json
        ok = isinstance(value, Mapping)
    if not ok:
        shown = json.dumps(value, default=repr)
        shown = shown if len(shown) <= 200 else shown[:200] + "..."
        raise InvalidRequest(f"value: Value {shown} is not a valid {kind}.")


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


class NoneResource(_Local):
    name = "OS::Heat::None"
    description = "Does nothing: takes any properties, every attribute is null."
    open_properties = True

    def in_place(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        return True


_CLASSES = {
    "lettersdigits": string.ascii_letters + string.digits,
    "letters": string.ascii_letters,
    "lowercase": string.ascii_lowercase,
    "uppercase": string.ascii_uppercase,
    "digits": string.digits,
    "hexdigits": string.digits + "ABCDEF",
    "octdigits": string.octdigits,
}
MAX_LENGTH = 512


class RandomString(_Local):
    name = "OS::Heat::RandomString"
    description = "A random string (from `secrets`), e.g. a password; get_resource gives it."
    properties = {
        "length": Prop("integer", "Length of the string.", default=32),
        "sequence": Prop("string", "Deprecated: use character_classes.", allowed=tuple(_CLASSES)),
        "character_classes": Prop("list", "Classes of characters, each with a minimum."),
        "character_sequences": Prop("list", "Sequences of characters, each with a minimum."),
        "salt": Prop("string", "Change it to make a new string (replaces the resource)."),
    }
    attributes = {"value": "The random string."}

    def reference(self, res: StackResource) -> Any:
        return res.attributes.get("value")

    def validate(self, props: Mapping[str, Any], known: Lookups) -> None:
        length = props.get("length")
        if length is not None and not 1 <= length <= MAX_LENGTH:
            raise InvalidRequest(f"length must be between 1 and {MAX_LENGTH}.")
        pools = _pools(props)
        need = sum(m for _, m in pools)
        if length is not None and need > length:
            raise InvalidRequest(
                f"Length {length} is shorter than the sum of the minimums ({need})."
            )

    async def create(self, step: Step, res: StackResource) -> Progress:
        res.physical_resource_id = f"{step.stack.name}-{res.name}-{res.id[:8]}"
        res.attributes = {"value": generate(res.properties)}
        return Progress.complete()


def _pools(props: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(characters, minimum count) for each class and sequence asked for."""
    pools: list[tuple[str, int]] = []
    for entry in props.get("character_classes") or []:
        if not isinstance(entry, Mapping) or entry.get("class", "lettersdigits") not in _CLASSES:
            raise InvalidRequest(
                "character_classes: each entry is {class: one of "
                + ", ".join(_CLASSES)
                + ", min: N}."
            )
        pools.append((_CLASSES[entry.get("class", "lettersdigits")], _count(entry)))
    for entry in props.get("character_sequences") or []:
        seq = entry.get("sequence") if isinstance(entry, Mapping) else None
        if not isinstance(seq, str) or not seq:
            raise InvalidRequest("character_sequences: each entry is {sequence: TEXT, min: N}.")
        pools.append((seq, _count(entry)))
    return pools


def _count(entry: Mapping[str, Any]) -> int:
    raw = entry.get("min", 1)
    try:
        n = int(raw)
    except (TypeError, ValueError):
        raise InvalidRequest(f"min must be a whole number, not {raw!r}.") from None
    if not 1 <= n <= MAX_LENGTH:
        raise InvalidRequest(f"min must be between 1 and {MAX_LENGTH}.")
    return n


def generate(props: Mapping[str, Any]) -> str:
    """A random string as the properties ask: each pool's minimum, the rest from them all."""
    length = int(props.get("length") or 32)
    pools = _pools(props)
    if not pools:
        seq = props.get("sequence") or "lettersdigits"
        pools = [(_CLASSES[seq], 0)]
    chars = [secrets.choice(pool) for pool, n in pools for _ in range(n)]
    everything = "".join(dict.fromkeys("".join(pool for pool, _ in pools)))
    chars += [secrets.choice(everything) for _ in range(length - len(chars))]
    # Shuffle so the minimums are not always first.
    for i in range(len(chars) - 1, 0, -1):
        j = secrets.randbelow(i + 1)
        chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars)


class TestResource(_Local):
    name = "OS::Heat::TestResource"
    description = "For tests: a value, an optional failure and waits on the engine's clock."
    properties = {
        "value": Prop("string", "The output attribute's value.", default="", update_allowed=True),
        "fail": Prop("boolean", "Fail the action.", default=False, update_allowed=True),
        "update_replace": Prop("boolean", "Replace on any update.", default=False),
        "wait_secs": Prop("number", "Seconds every action waits.", default=0, update_allowed=True),
        "action_wait_secs": Prop(
            "map", "Seconds to wait per action: create, update, delete.", update_allowed=True
        ),
        "client_name": Prop("string", "Accepted and ignored.", update_allowed=True),
        "entity_name": Prop("string", "Accepted and ignored.", update_allowed=True),
    }
    attributes = {"output": "The value property."}

    def in_place(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        return not new.get("update_replace") and updatable(self.properties, old, new)

    def outputs(self, props: Mapping[str, Any]) -> dict[str, Any]:
        return {"output": props.get("value")}

    def _wait(self, step: Step, res: StackResource, action: str) -> Progress:
        if res.properties.get("fail"):
            return Progress.failure(f"Test Resource failed {res.name}")
        waits = res.properties.get("action_wait_secs") or {}
        secs = float(waits.get(action, res.properties.get("wait_secs") or 0) or 0)
        if secs <= 0:
            return Progress.complete()
        until = step.clock.now() + timedelta(seconds=secs)
        res.data = {**res.data, "until": until.isoformat()}
        return Progress(until=until)

    async def check(self, step: Step, res: StackResource) -> Progress:
        raw = res.data.get("until")
        if not isinstance(raw, str):
            return Progress.complete()
        until = datetime.fromisoformat(raw)
        return Progress.complete() if step.clock.now() >= until else Progress(until=until)

    async def create(self, step: Step, res: StackResource) -> Progress:
        res.physical_resource_id = res.id
        res.attributes = self.outputs(res.properties)
        return self._wait(step, res, "create")

    async def update(self, step: Step, res: StackResource, new: dict[str, Any]) -> Progress:
        res.properties = new
        res.attributes = self.outputs(new)
        return self._wait(step, res, "update")

    async def delete(self, step: Step, res: StackResource) -> Progress:
        waits = res.properties.get("action_wait_secs") or {}
        secs = float(waits.get("delete", 0) or 0)
        if secs <= 0:
            return Progress.complete()
        until = step.clock.now() + timedelta(seconds=secs)
        res.data = {**res.data, "until": until.isoformat()}
        return Progress(until=until)
