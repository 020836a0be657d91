"""Canopy's settings tree: a TOML file, overridden by CANOPY_* environment variables.

Settings are built once at start and passed into constructors; nothing reads them
globally. A malformed file fails with the file, the line and what was expected.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

# The sections, re-exported: `from canopy.config import CloudSettings` is how code names them.
from canopy.config_sections import ApiSettings as ApiSettings
from canopy.config_sections import CloudDriver as CloudDriver
from canopy.config_sections import CloudSettings as CloudSettings
from canopy.config_sections import ControllerSettings as ControllerSettings
from canopy.config_sections import DatabaseSettings as DatabaseSettings
from canopy.config_sections import FlavorSettings as FlavorSettings
from canopy.config_sections import IdentitySettings as IdentitySettings
from canopy.config_sections import ImageSettings as ImageSettings
from canopy.config_sections import OrchestrationSettings as OrchestrationSettings
from canopy.config_sections import QuotaDefaults as QuotaDefaults
from canopy.config_sections import ReservationSettings as ReservationSettings
from canopy.config_sections import SchedulerSettings as SchedulerSettings
from canopy.config_sections import WorkerSettings as WorkerSettings
from canopy.config_sections import default_clouds as default_clouds
from canopy.config_sections import default_flavors as default_flavors
from canopy.config_sections import default_images as default_images
from canopy.config_sources import (
    ENV_ALIASES,
    ENVIRON,
    OVERRIDES,
    EnvSource,
    OverridesSource,
    Problem,
    cross_check,
    explain,
    render,
    text_line_of_offset,
)
from canopy.config_sources import locate as locate  # re-exported: where a key is in a file
from canopy.event_loop import LoopChoice, LoopUnavailable, loop_factory
from canopy.notifications.settings import NotificationSettings as NotificationSettings
from canopy.providers.ec2.options import Ec2Options as Ec2Options
from canopy.providers.options import OpenStackCloudSettings as OpenStackCloudSettings
from canopy.providers.sim.options import SimSettings as SimSettings

DEFAULT_DATA_DIR = "~/.local/share/canopy"


class ConfigError(Exception):
    """A configuration problem, phrased for the operator: where, and what was expected."""


class Settings(BaseSettings):
    """The whole settings tree."""

    model_config = SettingsConfigDict(
        env_prefix="CANOPY_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    data_dir: str = DEFAULT_DATA_DIR
    secret_key: str | None = None
    # The serving processes' event loop (canopy/event_loop.py): uvloop where installed.
    event_loop: LoopChoice = "auto"
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    controllers: ControllerSettings = Field(default_factory=ControllerSettings)
    quotas: QuotaDefaults = Field(default_factory=QuotaDefaults)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    reservations: ReservationSettings = Field(default_factory=ReservationSettings)
    orchestration: OrchestrationSettings = Field(default_factory=OrchestrationSettings)
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
        return (OverridesSource(settings_cls), EnvSource(settings_cls), init_settings)

    @field_validator("event_loop")
    @classmethod
    def _loop_importable(cls, value: LoopChoice) -> LoopChoice:
        try:
            loop_factory(value)
        except LoopUnavailable as e:
            raise ValueError(str(e)) from None
        return value

    @model_validator(mode="after")
    def _defaults_and_uniqueness(self) -> Settings:
        if not self.clouds:
            self.clouds = default_clouds()
        if not self.flavors:
            self.flavors = default_flavors()
        if not self.images:
            self.images = default_images()
        for kind, keys in (
            ("clouds", [("name", c.name) for c in self.clouds]),
            ("flavors", [k for f in self.flavors for k in (("name", f.name), ("id", f.id))]),
            ("images", [k for i in self.images for k in (("name", i.name), ("id", i.id))]),
        ):
            seen: set[tuple[str, str]] = set()
            for key, value in keys:
                if value is None:
                    continue
                if (key, value) in seen:
                    raise ValueError(f"duplicate {key} {value!r} in [[{kind}]]")
                seen.add((key, value))
        for c in self.clouds:
            if getattr(getattr(c, c.driver), "credentials", None) == "stored":
                raise ValueError(
                    f'cloud {c.name!r}: credentials = "stored" is only for clouds added at '
                    "run time (`canopy cloud add`, POST /canopy/v1/clouds), which seal their "
                    'credentials in the database; a config file names "env" (or, for ec2, '
                    '"profile:NAME") and never holds a secret'
                )
        cloud_names = {c.name for c in self.clouds}
        for img in self.images:
            for cloud in img.map:
                if cloud not in cloud_names:
                    raise ValueError(f"image {img.name!r} maps unknown cloud {cloud!r}")
        return self

    # Derived values -------------------------------------------------------------------

    _config_file: Path | None = PrivateAttr(default=None)

    @property
    def config_file(self) -> Path | None:
        """The file these settings were read from (None: defaults and environment only)."""
        return self._config_file

    def warnings(self) -> list[str]:
        """What is legal but probably not meant, for the operator to see at start."""
        out: list[str] = []
        if self.clouds and not any(c.enabled for c in self.clouds):
            where = str(self._config_file) if self._config_file else "the settings"
            names = ", ".join(c.name for c in self.clouds)
            out.append(
                f"{where}: every cloud is disabled ({names}): no new server can be placed "
                "until one has enabled = true; servers already on them can still be "
                "stopped, started and deleted"
            )
        return out

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


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    env: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Read `path` (or $CANOPY_CONFIG, or nothing), apply the environment, validate.

    A file that cannot be read or parsed stops here; otherwise every problem (checks across
    entries and every field's validation) is reported at once, in file order."""
    environ = dict(os.environ if env is None else env)
    if path is None:
        path = environ.get("CANOPY_CONFIG") or None
    data: dict[str, Any] = {}
    text = ""
    file = Path(path) if path else None
    problems: list[Problem] = []
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
        problems = cross_check(data, file, text, [c.name for c in default_clouds()])
    for flat, nested in ENV_ALIASES.items():
        if flat in environ and nested not in environ:
            environ[nested] = environ[flat]
    token = ENVIRON.set(environ)
    otoken = OVERRIDES.set(overrides)
    try:
        settings = Settings(**data)
    except ValidationError as e:
        found = explain(e, file, text, environ, ENV_ALIASES)
        if problems:
            # The whole-Settings checks repeat the cross-entry ones, without their lines.
            found = [p for p in found if not p.from_model]
        raise ConfigError(render(problems + found)) from None
    finally:
        ENVIRON.reset(token)
        OVERRIDES.reset(otoken)
    if problems:
        raise ConfigError(render(problems))
    settings._config_file = file
    return settings
