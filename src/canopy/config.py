"""Canopy's settings tree: a TOML file, overridden by CANOPY_* environment variables.

Settings are built once at start and passed into constructors; nothing reads them
globally. A malformed file fails with the file, the line and what was expected.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

DEFAULT_DATA_DIR = "~/.local/share/canopy"


class ConfigError(Exception):
    """A configuration problem, phrased for the operator: where, and what was expected."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(_Strict):
    url: str = "sqlite+aiosqlite:///{data_dir}/canopy.db"
    echo: bool = False
    pool_size: int = Field(default=10, ge=1)


class ApiSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8774, ge=0, le=65535)
    public_url: str | None = None  # what clients are told to use; defaults to http://host:port


class SchedulerSettings(_Strict):
    burst_threshold: float = Field(default=0.8, gt=0.0, le=1.0)
    max_attempts: int = Field(default=3, ge=1)
    blocklist_seconds: float = Field(default=300.0, ge=0.0)
    max_spend_per_hour: float = Field(default=50.0, ge=0.0)
    # How long a server may wait in BUILD/scheduling for capacity or spend headroom.
    schedule_timeout_seconds: float = Field(default=600.0, ge=0.0)
    retry_seconds: float = Field(default=5.0, gt=0.0)
    cost_weight: float = -1.0
    utilisation_weight: float = -0.5
    tier_weight: float = -2.0


class ControllerSettings(_Strict):
    lease_seconds: float = Field(default=60.0, gt=0.0)
    poll_seconds: float = Field(default=0.5, gt=0.0)
    sync_seconds: float = Field(default=2.0, gt=0.0)
    # While a cloud has servers building (or being created), sync polls it this often, so
    # a finished boot shows ACTIVE soon after; `sync_seconds` is the interval at rest.
    sync_converging_seconds: float = Field(default=0.5, gt=0.0)
    full_sync_every: int = Field(default=12, ge=1)
    call_timeout_seconds: float = Field(default=30.0, gt=0.0)
    backoff_base_seconds: float = Field(default=1.0, gt=0.0)
    backoff_max_seconds: float = Field(default=60.0, gt=0.0)
    batch_size: int = Field(default=64, ge=1)
    max_transient_retries: int = Field(default=5, ge=0)
    sync_overlap_seconds: float = Field(default=2.0, ge=0.0)
    unhealthy_after_failures: int = Field(default=3, ge=1)

    @model_validator(mode="after")
    def _lease_outlasts_a_call(self) -> ControllerSettings:
        if self.lease_seconds <= self.call_timeout_seconds:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds:g}) must be greater than "
                f"call_timeout_seconds ({self.call_timeout_seconds:g}): a worker must finish "
                "a cloud call before its lease on the server expires"
            )
        return self


class IdentitySettings(_Strict):
    token_ttl_seconds: float = Field(default=43200.0, gt=0.0)  # 12 hours
    region: str = "RegionOne"
    # Keystone's admin_project_name: the admin role makes a cloud-wide admin only here.
    admin_project_name: str = Field(default="admin", min_length=1, max_length=64)
    # Login throttle (see services/throttle.py); 0 attempts turns that limit off.
    lockout_failure_attempts: int = Field(default=5, ge=0)
    address_failure_attempts: int = Field(default=50, ge=0)
    lockout_seconds: float = Field(default=30.0, gt=0.0)
    lockout_max_seconds: float = Field(default=900.0, gt=0.0)
    lockout_window_seconds: float = Field(default=900.0, gt=0.0)
    # Argon2 checks at once per API process, and how many more may wait (then 503).
    password_threads: int = Field(default=2, ge=1, le=64)
    password_queue: int = Field(default=16, ge=0, le=10000)
    # How often a worker purges expired tokens and stale login failures.
    purge_interval_seconds: float = Field(default=300.0, gt=0.0)


class QuotaDefaults(_Strict):
    """Per-project limits used when a project has no quota row of its own (-1 = unlimited)."""

    instances: int = Field(default=10, ge=-1)
    cores: int = Field(default=20, ge=-1)
    ram: int = Field(default=51200, ge=-1)
    key_pairs: int = Field(default=100, ge=-1)
    metadata_items: int = Field(default=128, ge=-1)
    server_groups: int = Field(default=10, ge=-1)
    server_group_members: int = Field(default=10, ge=-1)


class SimSettings(_Strict):
    hosts: int = Field(default=4, ge=0)
    host_vcpus: int = Field(default=16, ge=1)
    host_ram_mb: int = Field(default=65536, ge=1)
    host_disk_gb: int = Field(default=2000, ge=1)
    boot_seconds: float = Field(default=2.0, ge=0.0)
    boot_jitter: float = Field(default=0.0, ge=0.0, description="fraction of boot_seconds")
    action_seconds: float = Field(default=0.5, ge=0.0)
    api_latency_ms: float = Field(default=20.0, ge=0.0)
    latency_jitter: float = Field(default=0.0, ge=0.0, description="fraction of latency")
    price_per_vcpu_hour: float = Field(default=0.0, ge=0.0)
    price_per_gb_ram_hour: float = Field(default=0.0, ge=0.0)
    quota_instances: int | None = Field(default=None, ge=0)
    quota_vcpus: int | None = Field(default=None, ge=0)
    transient_error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    capacity_error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    boot_failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    # A create that succeeds but whose answer never arrives (raised as a transient error).
    lost_response_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    seed: int | None = None
    state_file: str | None = None  # default: {data_dir}/sim-{name}.db


class Ec2Settings(_Strict):
    region: str
    endpoint_url: str | None = None
    credentials: str = "env"


class OpenStackCloudSettings(_Strict):
    auth_url: str | None = None
    endpoint_override: str | None = None
    region_name: str | None = None
    cloud: str | None = None  # a clouds.yaml entry
    credentials: str = "env"


CloudDriver = Literal["sim", "ec2", "openstack"]


class CloudSettings(_Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
    driver: CloudDriver = "sim"
    tier: int = Field(default=0, ge=0)
    enabled: bool = True
    concurrency: int = Field(default=50, ge=1)
    flavor_map: dict[str, str] = Field(default_factory=dict)
    sim: SimSettings | None = None
    ec2: Ec2Settings | None = None
    openstack: OpenStackCloudSettings | None = None

    @model_validator(mode="after")
    def _driver_section(self) -> CloudSettings:
        if self.driver == "sim" and self.sim is None:
            self.sim = SimSettings()
        if self.driver == "ec2" and self.ec2 is None:
            raise ValueError(f"cloud {self.name!r} uses driver 'ec2' but has no [clouds.ec2]")
        if self.driver == "openstack" and self.openstack is None:
            raise ValueError(
                f"cloud {self.name!r} uses driver 'openstack' but has no [clouds.openstack]"
            )
        return self


class FlavorSettings(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=255)]
    vcpus: int = Field(ge=1)
    ram_mb: int = Field(ge=1)
    disk_gb: int = Field(default=0, ge=0)
    id: str | None = None


class ImageSettings(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=255)]
    id: str | None = None
    map: dict[str, str] = Field(default_factory=dict)


def default_clouds() -> list[CloudSettings]:
    """The embedded default: a small free private cloud and a large priced public one."""
    return [
        CloudSettings(
            name="private",
            driver="sim",
            tier=0,
            sim=SimSettings(hosts=2, host_vcpus=8, host_ram_mb=32768, price_per_vcpu_hour=0.0),
        ),
        CloudSettings(
            name="public",
            driver="sim",
            tier=1,
            sim=SimSettings(
                hosts=1000,
                host_vcpus=64,
                host_ram_mb=262144,
                price_per_vcpu_hour=0.048,
                api_latency_ms=40.0,
            ),
        ),
    ]


def default_flavors() -> list[FlavorSettings]:
    return [
        FlavorSettings(id="1", name="m1.tiny", vcpus=1, ram_mb=512, disk_gb=1),
        FlavorSettings(id="2", name="m1.small", vcpus=1, ram_mb=2048, disk_gb=20),
        FlavorSettings(id="3", name="m1.medium", vcpus=2, ram_mb=4096, disk_gb=40),
        FlavorSettings(id="4", name="m1.large", vcpus=4, ram_mb=8192, disk_gb=80),
        FlavorSettings(id="5", name="m1.xlarge", vcpus=8, ram_mb=16384, disk_gb=160),
    ]


def default_images() -> list[ImageSettings]:
    return [
        ImageSettings(id="6e6d3a0e-4c4b-4f3e-9a57-0c1b5b1e2a01", name="cirros"),
        ImageSettings(id="3b1c2f4e-8d6a-4c7e-b0a2-5f9d8e7c6b02", name="ubuntu-24.04"),
    ]


_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("canopy_environ", default=None)
_OVERRIDES: ContextVar[dict[str, Any] | None] = ContextVar("canopy_overrides", default=None)


class _OverridesSource(PydanticBaseSettingsSource):
    """Values given on the command line (e.g. --data-dir): they beat the environment."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_OVERRIDES.get() or {})


class _EnvSource(EnvSettingsSource):
    """CANOPY_* variables, from the mapping `load_settings` was given (else os.environ)."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = _ENVIRON.get()
        if environ is None:
            return super()._load_env_vars()
        return parse_env_vars(
            environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


class Settings(BaseSettings):
    """The whole settings tree."""

    model_config = SettingsConfigDict(
        env_prefix="CANOPY_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    data_dir: str = DEFAULT_DATA_DIR
    secret_key: str | None = None
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    controllers: ControllerSettings = Field(default_factory=ControllerSettings)
    quotas: QuotaDefaults = Field(default_factory=QuotaDefaults)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    clouds: list[CloudSettings] = Field(default_factory=list)
    flavors: list[FlavorSettings] = Field(default_factory=list)
    images: list[ImageSettings] = Field(default_factory=list)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first, then the file (passed as init kwargs): env overrides the file.
        return (_OverridesSource(settings_cls), _EnvSource(settings_cls), init_settings)

    @model_validator(mode="after")
    def _defaults_and_uniqueness(self) -> Settings:
        if not self.clouds:
            self.clouds = default_clouds()
        if not self.flavors:
            self.flavors = default_flavors()
        if not self.images:
            self.images = default_images()
        for kind, names in (
            ("clouds", [c.name for c in self.clouds]),
            ("flavors", [f.name for f in self.flavors]),
            ("images", [i.name for i in self.images]),
        ):
            seen: set[str] = set()
            for n in names:
                if n in seen:
                    raise ValueError(f"duplicate name {n!r} in [[{kind}]]")
                seen.add(n)
        cloud_names = {c.name for c in self.clouds}
        for img in self.images:
            for cloud in img.map:
                if cloud not in cloud_names:
                    raise ValueError(f"image {img.name!r} maps unknown cloud {cloud!r}")
        return self

    # Derived values -------------------------------------------------------------------

    @property
    def data_path(self) -> Path:
        return Path(os.path.expanduser(self.data_dir))

    @property
    def database_url(self) -> str:
        return self.database.url.replace("{data_dir}", str(self.data_path))

    @property
    def public_url(self) -> str:
        if self.api.public_url:
            return self.api.public_url.rstrip("/")
        return f"http://{self.api.host}:{self.api.port}"

    def cloud(self, name: str) -> CloudSettings:
        for c in self.clouds:
            if c.name == name:
                return c
        raise KeyError(name)


# Loading ------------------------------------------------------------------------------

_ENV_ALIASES = {
    # Flat names the docs promise, mapped onto the nested ones pydantic-settings reads.
    "CANOPY_DATABASE_URL": "CANOPY_DATABASE__URL",
    "CANOPY_API_HOST": "CANOPY_API__HOST",
    "CANOPY_API_PORT": "CANOPY_API__PORT",
}


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    env: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Read `path` (or $CANOPY_CONFIG, or nothing), apply the environment, validate."""
    environ = dict(os.environ if env is None else env)
    if path is None:
        path = environ.get("CANOPY_CONFIG") or None
    data: dict[str, Any] = {}
    text = ""
    file = Path(path) if path else None
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"{file}: cannot read the config file: {e.strerror}") from e
        except UnicodeDecodeError as e:
            line = text_line_of_offset(file.read_bytes(), e.start)
            raise ConfigError(f"{file}:{line}: not UTF-8 text ({e.reason})") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
            where = f"{file}:{m.group(1)}" if m else str(file)
            raise ConfigError(f"{where}: not valid TOML: {e}") from None
        _cross_check(data, file, text)
    for flat, nested in _ENV_ALIASES.items():
        if flat in environ and nested not in environ:
            environ[nested] = environ[flat]
    token = _ENVIRON.set(environ)
    otoken = _OVERRIDES.set(overrides)
    try:
        return Settings(**data)
    except ValidationError as e:
        raise ConfigError(_explain(e, file, text, environ)) from None
    finally:
        _ENVIRON.reset(token)
        _OVERRIDES.reset(otoken)


def text_line_of_offset(raw: bytes, offset: int) -> int:
    return raw[:offset].count(b"\n") + 1


def _cross_check(data: dict[str, Any], file: Path, text: str) -> None:
    """Checks across entries (duplicate names, maps to unknown clouds), with their lines."""
    problems: list[str] = []
    for kind in ("clouds", "flavors", "images"):
        entries = data.get(kind)
        if not isinstance(entries, list):
            continue
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            name = entry.get("name") if isinstance(entry, dict) else None
            if isinstance(name, str):
                if name in seen:
                    line = locate(text, (kind, i, "name"))
                    problems.append(f"{file}:{line}: {kind}[{i}].name: duplicate name {name!r}")
                seen.add(name)
    clouds = data.get("clouds")
    if isinstance(clouds, list) and clouds:
        names = {str(c.get("name")) for c in clouds if isinstance(c, dict)}
    else:
        names = {c.name for c in default_clouds()}
    images = data.get("images")
    for i, img in enumerate(images if isinstance(images, list) else []):
        mapping = img.get("map") if isinstance(img, dict) else None
        if isinstance(mapping, dict):
            for cloud in mapping:
                if cloud not in names:
                    line = locate(text, ("images", i, "map", cloud))
                    problems.append(
                        f"{file}:{line}: images[{i}].map: image {img.get('name')!r} maps "
                        f"unknown cloud {cloud!r} (expected one of: {', '.join(sorted(names))})"
                    )
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _explain(
    err: ValidationError, file: Path | None, text: str, environ: Mapping[str, str] | None = None
) -> str:
    where = str(file) if file else "settings"
    lines: list[str] = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not isinstance(p, str) or p)
        dotted = _dotted(loc)
        var = _env_var_for(loc, environ or {})
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
        lines.append(f"{at}: {dotted or '<top>'}: {msg}{shown}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _env_var_for(loc: tuple[Any, ...], environ: Mapping[str, str]) -> str | None:
    """The CANOPY_* variable that set the value at `loc`, if one did."""
    if not loc or any(isinstance(p, int) for p in loc):
        return None
    nested = "CANOPY_" + "__".join(str(p).upper() for p in loc)
    if nested in environ:
        return nested
    for flat, target in _ENV_ALIASES.items():
        if target == nested and flat in environ:
            return flat
    return None


def _dotted(loc: tuple[Any, ...]) -> str:
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
