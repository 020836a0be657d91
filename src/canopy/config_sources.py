"""Where settings come from (a TOML file, CANOPY_* variables, command-line overrides), and
where in them a problem is, told so the operator can fix it.

`load_settings` (config.py) gathers every problem of a file at once: the checks across
entries (duplicate names and ids, image maps naming unknown clouds), which read the raw
TOML, and pydantic's validation errors. Each becomes a `Problem` with the line it points at,
and they are reported together, in file order.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import EnvSettingsSource, PydanticBaseSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

ENV_ALIASES = {
    # Flat names the docs promise, mapped onto the nested ones pydantic-settings reads.
    "CANOPY_DATABASE_URL": "CANOPY_DATABASE__URL",
    "CANOPY_API_HOST": "CANOPY_API__HOST",
    "CANOPY_API_PORT": "CANOPY_API__PORT",
}


ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("canopy_environ", default=None)
OVERRIDES: ContextVar[dict[str, Any] | None] = ContextVar("canopy_overrides", default=None)


class OverridesSource(PydanticBaseSettingsSource):
    """Values given on the command line (e.g. --data-dir): they beat the environment."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(OVERRIDES.get() or {})


class EnvSource(EnvSettingsSource):
    """CANOPY_* variables, from the mapping `load_settings` was given (else os.environ)."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = ENVIRON.get()
        if environ is None:
            return super()._load_env_vars()
        return parse_env_vars(
            environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the settings, and where (a file line, a variable, or neither)."""

    where: str
    path: str  # the dotted setting, e.g. clouds[1].tier
    message: str
    line: int | None = None
    from_model: bool = False  # raised by a whole-Settings check, not by a field

    def __str__(self) -> str:
        return f"{self.where}: {self.path or '<top>'}: {self.message}"


def render(problems: list[Problem]) -> str:
    """The message of a ConfigError listing `problems` in file order."""
    ordered = sorted(problems, key=lambda p: (p.line is None, p.line or 0))
    return "invalid configuration:\n  " + "\n  ".join(str(p) for p in ordered)


def text_line_of_offset(raw: bytes, offset: int) -> int:
    return raw[:offset].count(b"\n") + 1


def cross_check(
    data: dict[str, Any], file: Path, text: str, default_clouds: Collection[str]
) -> list[Problem]:
    """Checks across entries of the raw file, each with its line: duplicate names and ids
    in [[clouds]], [[flavors]] and [[images]], and image maps that name unknown clouds."""
    problems: list[Problem] = []

    def add(loc: tuple[Any, ...], message: str) -> None:
        line = locate(text, loc)
        where = f"{file}:{line}" if line else str(file)
        problems.append(Problem(where, dotted(loc), message, line))

    for kind in ("clouds", "flavors", "images"):
        entries = data.get(kind)
        if not isinstance(entries, list):
            continue
        for key in ("name", "id"):
            seen: dict[str, int] = {}
            for i, entry in enumerate(entries):
                value = entry.get(key) if isinstance(entry, dict) else None
                if not isinstance(value, str):
                    continue
                if value in seen:
                    add(
                        (kind, i, key),
                        f"duplicate {key} {value!r} (also {kind}[{seen[value]}].{key})",
                    )
                else:
                    seen[value] = i
    clouds = data.get("clouds")
    if isinstance(clouds, list) and clouds:
        names = {str(c.get("name")) for c in clouds if isinstance(c, dict)}
    else:
        names = set(default_clouds)
    images = data.get("images")
    for i, img in enumerate(images if isinstance(images, list) else []):
        mapping = img.get("map") if isinstance(img, dict) else None
        if isinstance(mapping, dict):
            for cloud in mapping:
                if cloud not in names:
                    add(
                        ("images", i, "map", cloud),
                        f"image {img.get('name')!r} maps unknown cloud {cloud!r} "
                        f"(expected one of: {', '.join(sorted(names))})",
                    )
    return problems


def explain(
    err: ValidationError,
    file: Path | None,
    text: str,
    environ: Mapping[str, str],
    aliases: Mapping[str, str],
) -> list[Problem]:
    """pydantic's errors as Problems, each blamed on its line or its environment variable."""
    where = str(file) if file else "settings"
    out: list[Problem] = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not isinstance(p, str) or p)
        var = _env_var_for(loc, environ, aliases)
        line = locate(text, loc) if text and var is None else None
        at = f"environment variable {var}" if var else (f"{where}:{line}" if line else where)
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling against docs/configuration.md)"
        elif e["type"] == "missing":
            msg = "required key is missing"
        got = e.get("input")
        shown = (
            ""
            if e["type"] in ("missing", "extra_forbidden") or isinstance(got, dict)
            else (f" (got {got!r})")
        )
        out.append(Problem(at, dotted(loc), msg + shown, line, from_model=not loc))
    return out


def _env_var_for(
    loc: tuple[Any, ...], environ: Mapping[str, str], aliases: Mapping[str, str]
) -> str | None:
    """The CANOPY_* variable that set the value at `loc`, if one did."""
    if not loc or any(isinstance(p, int) for p in loc):
        return None
    nested = "CANOPY_" + "__".join(str(p).upper() for p in loc)
    if nested in environ:
        return nested
    for flat, target in aliases.items():
        if target == nested and flat in environ:
            return flat
    return None


def dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for p in loc:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


_SEGMENT = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([A-Za-z0-9_-]+))\s*(\.|$)')
_HEADER = re.compile(r"^\s*(\[\[?)(.*?)(\]\]?)\s*(#.*)?$")
_KEY = re.compile(
    r"""^\s*((?:"(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)(?:\s*\.\s*(?:"(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+))*)\s*=(.*)$"""
)


def _split_key(raw: str) -> list[str] | None:
    """`a."b.c".'d'` -> ['a', 'b.c', 'd']; None if it is not a dotted key."""
    parts: list[str] = []
    pos = 0
    while pos < len(raw):
        m = _SEGMENT.match(raw, pos)
        if not m or m.end() == pos:
            return None
        parts.append(next(g for g in m.groups()[:3] if g is not None))
        pos = m.end()
        if m.group(4) == "":
            break
    return parts if pos >= len(raw.rstrip()) else None


def _scan_value(value: str, state: list[Any]) -> None:
    """Track multi-line strings and open brackets across lines (state = [quote, depth])."""
    i = 0
    while i < len(value):
        quote = state[0]
        if quote:
            end = value.find(quote, i)
            if end < 0:
                return
            state[0] = None
            i = end + len(quote)
            continue
        ch = value[i]
        if ch == "#":
            return
        if value.startswith('"""', i) or value.startswith("'''", i):
            state[0] = value[i : i + 3]
            i += 3
        elif ch in "\"'":
            end = value.find(ch, i + 1)
            while ch == '"' and end > 0 and value[end - 1] == "\\":
                end = value.find(ch, end + 1)
            i = len(value) if end < 0 else end + 1
        else:
            if ch in "[{":
                state[1] += 1
            elif ch in "]}":
                state[1] -= 1
            i += 1


def locate(text: str, loc: tuple[Any, ...]) -> int | None:
    """Best-effort line number (1-based) of the TOML key at `loc`, e.g. ('clouds', 1, 'tier').

    Walks the headers, counting `[[array]]` entries, and returns the key's line, else the
    line of the innermost table that exists, so the operator always gets a place to look.
    Lines inside multi-line strings and arrays are values, never headers.
    """
    counters: dict[str, int] = {}
    table: tuple[Any, ...] = ()
    best: tuple[int, int] | None = None  # (matched length, line)
    state: list[Any] = [None, 0]  # open multi-line string quote, bracket depth
    for n, raw in enumerate(text.splitlines(), start=1):
        if state[0] is not None or state[1] > 0:
            _scan_value(raw, state)
            continue
        m = _HEADER.match(raw)
        parts = _split_key(m.group(2).strip()) if m and len(m.group(1)) == len(m.group(3)) else None
        if m and parts is not None:
            path: list[Any] = []
            for i, p in enumerate(parts):
                path.append(p)
                key = ".".join(str(x) for x in path)
                if m.group(1) == "[[" and i == len(parts) - 1:
                    counters[key] = counters.get(key, -1) + 1
                    # A new array entry resets the counters of its sub-arrays.
                    for k in list(counters):
                        if k.startswith(key + "."):
                            del counters[k]
                if key in counters:
                    path.append(counters[key])
            table = tuple(path)
            best = _better(best, table, loc, n)
            continue
        km = _KEY.match(raw)
        if km:
            keyparts = _split_key(km.group(1))
            if keyparts is not None:
                best = _better(best, table + tuple(keyparts), loc, n)
            _scan_value(km.group(2), state)
    return best[1] if best else None


def _better(
    best: tuple[int, int] | None, path: tuple[Any, ...], loc: tuple[Any, ...], line: int
) -> tuple[int, int] | None:
    if len(path) > len(loc) or tuple(loc[: len(path)]) != path:
        return best
    if best is None or len(path) > best[0]:
        return (len(path), line)
    return best
