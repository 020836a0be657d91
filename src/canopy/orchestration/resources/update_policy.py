"""A resource's `update_policy` (HOT) or `UpdatePolicy` (CFN), as Heat reads it.

Only three types take one, with Heat's sections, names, defaults and constraints:

- OS::Heat::ResourceGroup: `rolling_update {min_in_service, max_batch_size, pause_time}`
  (a resource_def change goes in batches) and `batch_create {max_batch_size, pause_time}`
  (the members are created in batches);
- AWS::AutoScaling::AutoScalingGroup: `AutoScalingRollingUpdate {MinInstancesInService,
  MaxBatchSize, PauseTime}`, PauseTime an ISO 8601 duration (PT#H#M#S, at most 1 hour).

Any other type takes none (Heat's empty schema): a policy on it is refused ("Unknown
Property"), as is an unknown key or a value of the wrong type. OS::Heat::AutoScalingGroup
takes its rolling update as the `rolling_updates` property (`check_section`), as in Heat.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.resources.base import Prop
from canopy.orchestration.resources.properties import convert
from canopy.orchestration.template import ResourceDefinition
from canopy.store.models import StackResource

RESOURCE_GROUP = "OS::Heat::ResourceGroup"
AWS_GROUP = "AWS::AutoScaling::AutoScalingGroup"
ROLLING = "rolling_update"
BATCH_CREATE = "batch_create"
AWS_ROLLING = "AutoScalingRollingUpdate"
MAX_PAUSE = 10**9  # seconds: any more overflows a date
MAX_VALUE = MAX_PAUSE  # any number of a policy: larger is out of range, never a crash
MAX_AWS_PAUSE = 3600  # Heat: "Maximum PauseTime is 1 hour."
MAX_DIGITS = 9  # of each PauseTime field: more is past the hour anyway


@dataclass(frozen=True)
class Field:
    """One key of a policy section: its type, default and least value."""

    prop: Prop
    least: float | None = None


def _int(description: str, default: int, least: int) -> Field:
    return Field(Prop("integer", description, default=default), least)


_PAUSE = Field(Prop("number", "Seconds to wait between batches.", default=0), 0)
ROLLING_FIELDS: Mapping[str, Field] = {
    "min_in_service": _int("Members kept in service during the update.", 0, 0),
    "max_batch_size": _int("Most members replaced or updated at once.", 1, 1),
    "pause_time": _PAUSE,
}
BATCH_CREATE_FIELDS: Mapping[str, Field] = {
    "max_batch_size": _int("Most members created at once.", 1, 1),
    "pause_time": _PAUSE,
}
AWS_FIELDS: Mapping[str, Field] = {
    "MinInstancesInService": _int("Instances kept in service during the update.", 0, 0),
    "MaxBatchSize": _int("Most instances replaced at once.", 1, 1),
    "PauseTime": Field(Prop("string", "ISO 8601 duration (PT#H#M#S).", default="PT0S")),
}
SECTIONS: Mapping[str, Mapping[str, Mapping[str, Field]]] = {
    RESOURCE_GROUP: {ROLLING: ROLLING_FIELDS, BATCH_CREATE: BATCH_CREATE_FIELDS},
    AWS_GROUP: {AWS_ROLLING: AWS_FIELDS},
}


@dataclass(frozen=True)
class Batching:
    """How a group changes its members: at most `size` at a time, keeping `keep` in
    service, `pause` seconds between batches."""

    size: int
    keep: int
    pause: float


def check_policy(type_name: str, policy: Any, where: str) -> dict[str, dict[str, Any]]:
    """`policy` checked against the type's sections: each section given, with its
    defaults. InvalidRequest says what is wrong, Heat's way, at `where`."""
    if policy is None or policy == {}:
        return {}
    if not isinstance(policy, Mapping):
        raise InvalidRequest(f"Property error: {where}: the update policy must be a map.")
    sections = SECTIONS.get(type_name, {})
    out: dict[str, dict[str, Any]] = {}
    for key, value in policy.items():
        fields = sections.get(key)
        if fields is None:
            raise InvalidRequest(f"Property error: {where}: Unknown Property {key}")
        if value is not None:
            try:
                out[key] = check_section(f"{where}.{key}", fields, value)
            except InvalidRequest as e:
                raise InvalidRequest(f"Property error: {e}") from None
    return out


def check_section(where: str, fields: Mapping[str, Field], value: Any) -> dict[str, Any]:
    """One section (a map of `fields`) checked, with its defaults. Whatever the values
    (a huge integer, NaN, a PauseTime of thousands of digits), the only error is
    InvalidRequest: a value known at run time fails the resource, never the engine."""
    if not isinstance(value, Mapping):
        raise InvalidRequest(f"{where}: Value must be a map.")
    for key in value:
        if key not in fields:
            raise InvalidRequest(f"{where}: Unknown Property {key}")
    out: dict[str, Any] = {}
    for key, f in fields.items():
        raw = value.get(key)
        at = f"{where}.{key}"
        try:
            out[key] = _field(at, key, f, f.prop.default if raw is None else raw)
        except (ValueError, TypeError, OverflowError):
            raise InvalidRequest(f"{at}: the value is not valid.") from None
    return out


def _field(at: str, key: str, f: Field, raw: Any) -> Any:
    got = convert(at, f.prop, raw)
    if f.least is not None and not _within(got, f.least):
        shown = repr(got) if isinstance(got, float) or abs(got) <= MAX_VALUE else "a larger number"
        raise InvalidRequest(f"{at}: {shown} is out of range (min: {f.least}, max: {MAX_VALUE})")
    if f.prop.type == "string" and key == "PauseTime":
        seconds = iso_seconds(got, at)
        if seconds > MAX_AWS_PAUSE:
            raise InvalidRequest(f"{at}: Maximum PauseTime is 1 hour.")
    return got


def _within(got: int | float, least: float) -> bool:
    """Whether a number is between `least` and MAX_VALUE (compared as it is: no float of
    a huge integer, which overflows; NaN and the infinities are not)."""
    if isinstance(got, float) and not math.isfinite(got):
        return False
    return least <= got <= MAX_VALUE


_ISO = re.compile(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$")


def iso_seconds(text: str, where: str = "PauseTime") -> int:
    """An ISO 8601 duration of the form PT#H#M#S in seconds (Heat's subset)."""
    m = _ISO.match(text)
    if m is None:
        raise InvalidRequest(
            f"{where}: Only ISO 8601 duration format of the form PT#H#M#S is supported."
        )
    if any(g is not None and len(g) > MAX_DIGITS for g in m.groups()):
        raise InvalidRequest(f"{where}: Maximum PauseTime is 1 hour.")
    h, mins, s = (int(g) if g else 0 for g in m.groups())
    return 3600 * h + 60 * mins + s


def rolling_of(type_name: str, policy: Mapping[str, Any] | None) -> Batching | None:
    """The rolling update a checked policy asks for (None: every member at once)."""
    section = (policy or {}).get(AWS_ROLLING if type_name == AWS_GROUP else ROLLING)
    if not isinstance(section, Mapping):
        return None
    if type_name == AWS_GROUP:
        return Batching(
            int(section["MaxBatchSize"]),
            int(section["MinInstancesInService"]),
            float(iso_seconds(str(section["PauseTime"]))),
        )
    return batching(section)


def batching(section: Mapping[str, Any]) -> Batching:
    """A checked rolling_update (or rolling_updates) section."""
    return Batching(
        int(section["max_batch_size"]),
        int(section.get("min_in_service") or 0),
        float(section["pause_time"]),
    )


POLICY_KEY = "update_policy"  # where the engine keeps a resource's checked policy


def policy_of(res: StackResource) -> dict[str, Any]:
    """The checked update policy the engine recorded on the row ({} when none)."""
    found = (res.data or {}).get(POLICY_KEY)
    return dict(found) if isinstance(found, Mapping) else {}


def keep_policy(res: StackResource, policy: Mapping[str, Any]) -> None:
    """Record `policy` (checked) on the row, for the type's steps to read."""
    if dict(policy) == policy_of(res):
        return
    data = dict(res.data or {})
    if policy:
        data[POLICY_KEY] = dict(policy)
    else:
        data.pop(POLICY_KEY, None)
    res.data = data


def resolved(d: ResourceDefinition, resolve: Callable[[Any], Any]) -> dict[str, dict[str, Any]]:
    """A resource's update_policy, its functions resolved (`resolve`), checked."""
    raw = resolve(d.update_policy) if d.update_policy else {}
    return check_policy(d.type, raw, f"resources.{d.name}.update_policy")
