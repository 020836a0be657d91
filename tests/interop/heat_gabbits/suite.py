"""Heat's own API tests, the gabbits of heat-tempest-plugin, from its wheel on PyPI.

The plugin is what OpenStack's CI runs against a deployed Heat: `tests/api/gabbits/*.yaml`
are declarative HTTP tests (gabbi) of the orchestration API, written by Heat's team. The
wheel is had through `tests/pypi_wheels.py` (downloaded once into a cache, only its YAML
files read, nothing of it imported) and nothing of it enters canopy's tree.
"""

from __future__ import annotations

from pathlib import Path

from tests.pypi_wheels import read

PROJECT = "heat-tempest-plugin"
VERSION = "3.0.0"
GABBITS = "heat_tempest_plugin/tests/api/gabbits/"


def gabbits() -> dict[str, str]:
    """Each gabbit file of the plugin's wheel, by name: its YAML text."""
    files = read(PROJECT, VERSION, GABBITS, (".yaml",))
    return {Path(n).name: text for n, text in files.items()}
