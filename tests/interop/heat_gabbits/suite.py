"""Heat's own API tests, the gabbits of heat-tempest-plugin, from its wheel on PyPI.

The plugin is what OpenStack's CI runs against a deployed Heat: `tests/api/gabbits/*.yaml`
are declarative HTTP tests (gabbi) of the orchestration API, written by Heat's team. The
wheel is downloaded once (no dependencies: only its YAML files are read, nothing of it is
imported) into `~/.cache/canopy-heat-tempest/<version>/` (`CANOPY_HEAT_TEMPEST_CACHE`
moves it) and nothing of it enters canopy's tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

VERSION = "3.0.0"
WHEEL = f"heat_tempest_plugin-{VERSION}-py3-none-any.whl"
GABBITS = "heat_tempest_plugin/tests/api/gabbits/"


class Unavailable(Exception):
    """The plugin's wheel could not be had here (no index reachable)."""


def cache_dir() -> Path:
    root = os.environ.get("CANOPY_HEAT_TEMPEST_CACHE", "~/.cache/canopy-heat-tempest")
    return Path(root).expanduser() / VERSION


def gabbits() -> dict[str, str]:
    """Each gabbit file of the plugin's wheel, by name: its YAML text."""
    where = cache_dir()
    wheel = where / WHEEL
    if not wheel.exists():
        where.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "-q", "--no-deps"),
                *("--only-binary=:all:", "--disable-pip-version-check"),
                *("-d", str(where), f"heat-tempest-plugin=={VERSION}"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0 or not wheel.exists():
            raise Unavailable(f"pip download heat-tempest-plugin=={VERSION}: {done.stderr[-500:]}")
    with zipfile.ZipFile(wheel) as z:
        return {
            Path(n).name: z.read(n).decode()
            for n in z.namelist()
            if n.startswith(GABBITS) and n.endswith(".yaml")
        }
