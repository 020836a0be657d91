"""Heat's own API tests against a real `canopy up`: every gabbit of heat-tempest-plugin
(stacks, resources, resource types, templates, environments, software configs), run by
gabbi as OpenStack's CI runs them against Heat, unchanged.

Each file is one test here (its steps depend on each other: a stack created, polled,
updated, its outputs read, deleted). A step that fails fails the file with gabbi's report.
"""

from __future__ import annotations

import io
import unittest
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from gabbi import runner, suitemaker

from tests.interop.conftest import CanopyServer
from tests.interop.heat_gabbits import fixtures
from tests.interop.heat_gabbits.suite import PROJECT, VERSION, gabbits
from tests.pypi_wheels import needed

pytestmark = pytest.mark.slow


def _files() -> dict[str, str]:
    needed([(PROJECT, VERSION)])  # skips with one line without an index (fails under CI)
    return gabbits()


NAMES = ["environments", "resources", "resourcetypes", "softwareconfig", "stacks", "templates"]


def test_the_plugin_holds_the_gabbits_named_here() -> None:
    """If a new plugin version adds or drops a file, this names it (not a silent skip)."""
    assert sorted(n.removesuffix(".yaml") for n in _files()) == NAMES


# What canopy does not serve yet, said here so that the file still runs (strict: the day
# it passes, the mark must go).
NOT_YET: dict[str, str] = {}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=NOT_YET[n]))
        if n in NOT_YET
        else n
        for n in NAMES
    ],
)
def test_heat_gabbit(canopy_server: CanopyServer, name: str, monkeypatch: Any) -> None:
    text = _files()[f"{name}.yaml"]
    token = canopy_server.token()
    project = canopy_server.openstack("token", "issue")["project_id"]
    monkeypatch.setenv("CANOPY_GABBI_TOKEN", token)
    monkeypatch.setenv("PREFIX", f"api-{uuid.uuid4().hex[:8]}")
    url = urlsplit(canopy_server.base_url)
    suite = suitemaker.test_suite_from_dict(
        unittest.defaultTestLoader,
        name,
        yaml.safe_load(text),
        ".",
        url.hostname,
        url.port,
        fixtures,
        None,
        prefix=f"/orchestration/v1/{project}",
        handlers=runner.initialize_handlers([], False),
        test_loader_name="canopy",
    )
    out = io.StringIO()
    result = unittest.TextTestRunner(stream=out, verbosity=2).run(suite)
    assert result.testsRun > 0
    assert result.wasSuccessful(), out.getvalue()[-6000:] + canopy_server.log()[-2000:]
