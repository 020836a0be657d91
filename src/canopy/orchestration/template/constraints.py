"""Parameter constraints: range, length, modulo, allowed_values, allowed_pattern, custom.

Patterns are user input matched against user input, so they run on RE2 (linear time)
and their length is bounded. A pattern RE2 cannot run (a lookahead, a backreference: real
templates use them) runs on the `regex` module, whose matches take a time limit: a value
that takes longer than that to match is refused, with that reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache, wraps
from typing import Any, ParamSpec, TypeVar

import re2
import regex

from canopy.orchestration.template import limits
from canopy.orchestration.template.errors import TemplateError
from canopy.orchestration.template.model import ConstraintCheck

CUSTOM_CONSTRAINTS = ("nova.flavor", "glance.image", "nova.keypair")
_CUSTOM_WHAT = {"nova.flavor": "flavor", "glance.image": "image", "nova.keypair": "key pair"}


def _options() -> Any:
    options = re2.Options()
    options.never_capture = True
    options.log_errors = False
    return options


_OPTIONS = _options()


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Any:
    """The program for an allowed_pattern (RE2's, else a time-limited backtracking one);
    ValueError if neither engine takes it."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as e:
        detail = e.args[0] if e.args else e
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
    try:
        return _TimeLimited(regex.compile(pattern, regex.VERSION0))
    except (regex.error, RecursionError, OverflowError):
        raise ValueError(str(detail)) from None


class PatternTimeout(ValueError):
    """A value took longer than the time limit to match a backtracking pattern."""


# The seconds of backtracking matching left to the parameters being parsed or bound now
# (None: no budget is open, each match has only its own limit).
_budget: ContextVar[list[float] | None] = ContextVar("pattern_budget", default=None)
_P = ParamSpec("_P")
_R = TypeVar("_R")


@contextmanager
def _open_budget() -> Iterator[None]:
    if _budget.get() is not None:
        yield  # an enclosing call holds the budget
        return
    token = _budget.set([limits.PATTERN_BUDGET_SECONDS])
    try:
        yield
    finally:
        _budget.reset(token)


def pattern_budget(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """`fn`'s backtracking matches share `limits.PATTERN_BUDGET_SECONDS` in all, so many
    parameters (or list items) cannot each take the per-match limit."""

    @wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with _open_budget():
            return fn(*args, **kwargs)

    return wrapper


class _TimeLimited:
    """A backtracking pattern whose every match gives up after `limits.PATTERN_SECONDS`,
    and sooner when the open budget has less left."""

    def __init__(self, program: Any) -> None:
        self.program = program

    def fullmatch(self, value: str) -> Any:
        left = _budget.get()
        limit = limits.PATTERN_SECONDS if left is None else min(limits.PATTERN_SECONDS, left[0])
        if limit <= 0:
            raise PatternTimeout(
                f"the template's patterns took {limits.PATTERN_BUDGET_SECONDS} s in all"
            )
        started = time.monotonic()
        try:
            return self.program.fullmatch(value, timeout=limit)
        except TimeoutError:
            raise PatternTimeout(f"matching took longer than {limit} s") from None
        finally:
            if left is not None:
                left[0] -= time.monotonic() - started


def _num(value: Any, what: str, path: str) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise TemplateError(f"{what} must be a number", path)
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                pass
    raise TemplateError(f"{what} must be a number", path)


@dataclass(frozen=True)
class Constraint:
    """One constraint on a parameter's value; `kind` is its HOT key."""

    kind: str  # range | length | modulo | allowed_values | allowed_pattern | custom_constraint
    spec: Any  # (min, max) | (step, offset) | list | pattern | constraint name
    description: str

    def view(self) -> dict[str, Any]:
        """As Heat's /validate shows it (CFN-style keys)."""
        out: dict[str, Any] = {}
        if self.kind in ("range", "length"):
            low, high = self.spec
            prefix = "Value" if self.kind == "range" else "Length"
            if low is not None:
                out[f"Min{prefix}"] = low
            if high is not None:
                out[f"Max{prefix}"] = high
        elif self.kind == "modulo":
            out["Step"], out["Offset"] = self.spec
        elif self.kind == "allowed_values":
            out["AllowedValues"] = list(self.spec)
        elif self.kind == "allowed_pattern":
            out["AllowedPattern"] = self.spec
        else:
            out["CustomConstraint"] = self.spec
        if self.description:
            out["ConstraintDescription"] = self.description
        return out

    def check(self, value: Any, ptype: str, check: ConstraintCheck | None) -> str | None:
        """Why `value` (already typed) breaks this constraint, or None."""
        reason = self._reason(value, ptype, check)
        if reason is None:
            return None
        return self.description or reason

    def _reason(self, value: Any, ptype: str, check: ConstraintCheck | None) -> str | None:
        if self.kind == "range":
            low, high = self.spec
            if (low is not None and value < low) or (high is not None and value > high):
                return f"{value} is out of range (min: {low}, max: {high})"
        elif self.kind == "length":
            low, high = self.spec
            n = len(value)
            if (low is not None and n < low) or (high is not None and n > high):
                return f"length ({n}) is out of range (min: {low}, max: {high})"
        elif self.kind == "modulo":
            step, offset = self.spec
            if value % step != offset:
                return f"{value} is not a multiple of {step} with an offset of {offset}"
        elif self.kind == "allowed_values":
            allowed = [_canon(a, ptype) for a in self.spec]
            items = value if ptype == "CommaDelimitedList" else [value]
            for item in items:
                if _canon(item, ptype) not in allowed:
                    shown = ", ".join(json.dumps(a) for a in self.spec)
                    return f"{json.dumps(item)} is not an allowed value [{shown}]"
        elif self.kind == "allowed_pattern":
            items = value if ptype == "CommaDelimitedList" else [value]
            for item in items:
                try:
                    matched = compile_pattern(self.spec).fullmatch(item)
                except PatternTimeout as e:
                    return f'"{item}" cannot be checked against pattern "{self.spec}": {e}'
                if matched is None:
                    return f'"{item}" does not match pattern "{self.spec}"'
        elif self.kind == "custom_constraint" and check is not None:
            items = value if ptype == "CommaDelimitedList" else [value]
            for item in items:
                if not check(self.spec, str(item)):
                    return f"the {_CUSTOM_WHAT[self.spec]} {item!r} could not be found"
        return None


def _canon(value: Any, ptype: str) -> Any:
    """Allowed values compare in the parameter's type (Heat converts both sides)."""
    if ptype == "Number":
        try:
            return float(value)
        except (TypeError, ValueError):
            return value
    if ptype == "Boolean":
        return str(value).lower()
    return str(value) if not isinstance(value, str) else value


_VALID_FOR = {
    "range": ("Number",),
    "modulo": ("Number",),
    "length": ("String", "CommaDelimitedList", "Json"),
    "allowed_values": ("String", "Number", "CommaDelimitedList", "Boolean"),
    "allowed_pattern": ("String", "CommaDelimitedList"),
    "custom_constraint": ("String", "CommaDelimitedList"),
}


def parse_hot_constraint(raw: Any, ptype: str, modulo: bool, path: str) -> Constraint:
    """One entry of a HOT parameter's `constraints` list."""
    if not isinstance(raw, dict):
        raise TemplateError("a constraint must be a map", path)
    kinds = [k for k in raw if k != "description"]
    known = ["range", "length", "allowed_values", "allowed_pattern", "custom_constraint"]
    if modulo:
        known.append("modulo")
    for k in kinds:
        if k not in known:
            raise TemplateError(f"unknown constraint {k!r} (known: {', '.join(known)})", path)
    if len(kinds) != 1:
        raise TemplateError("a constraint must have exactly one kind", path)
    kind = kinds[0]
    description = raw.get("description") or ""
    if not isinstance(description, str):
        raise TemplateError("a constraint's description must be a string", path)
    return make_constraint(kind, raw[kind], description, ptype, f"{path}.{kind}")


def make_constraint(kind: str, spec: Any, description: str, ptype: str, path: str) -> Constraint:
    if ptype not in _VALID_FOR[kind]:
        raise TemplateError(f"{kind} does not apply to a parameter of type {ptype}", path)
    if kind in ("range", "length"):
        if not isinstance(spec, dict) or not set(spec) <= {"min", "max"} or not spec:
            raise TemplateError(f"{kind} must be a map with min and/or max", path)
        low, high = _num(spec.get("min"), "min", path), _num(spec.get("max"), "max", path)
        if kind == "length" and any(isinstance(v, float) for v in (low, high)):
            raise TemplateError("length min/max must be whole numbers", path)
        return Constraint(kind, (low, high), description)
    if kind == "modulo":
        if not isinstance(spec, dict) or set(spec) != {"step", "offset"}:
            raise TemplateError("modulo must be a map with step and offset", path)
        step, offset = _num(spec["step"], "step", path), _num(spec["offset"], "offset", path)
        if not isinstance(step, int) or not isinstance(offset, int):
            raise TemplateError("step and offset must be whole numbers", path)
        if step == 0:
            raise TemplateError("step cannot be 0", path)
        if abs(offset) >= abs(step):
            raise TemplateError("offset must be smaller (by absolute value) than step", path)
        if step * offset < 0:
            raise TemplateError("step and offset must be both positive or both negative", path)
        return Constraint(kind, (step, offset), description)
    if kind == "allowed_values":
        if not isinstance(spec, list):
            raise TemplateError("allowed_values must be a list", path)
        return Constraint(kind, tuple(spec), description)
    if kind == "allowed_pattern":
        if not isinstance(spec, str):
            raise TemplateError("allowed_pattern must be a string", path)
        if len(spec) > limits.MAX_PATTERN_CHARS:
            raise TemplateError(
                f"allowed_pattern is longer than {limits.MAX_PATTERN_CHARS} characters", path
            )
        try:
            compile_pattern(spec)
        except ValueError as e:
            raise TemplateError(f"allowed_pattern is not a valid pattern: {e}", path) from None
        return Constraint(kind, spec, description)
    if not isinstance(spec, str) or spec not in CUSTOM_CONSTRAINTS:
        raise TemplateError(
            f"custom constraint {spec!r} is not supported "
            f"(supported: {', '.join(CUSTOM_CONSTRAINTS)})",
            path,
        )
    return Constraint(kind, spec, description)
