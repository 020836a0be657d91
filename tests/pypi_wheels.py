"""Files of OpenStack's own wheels on the package index, for the tests that run what
OpenStack publishes against canopy (heat-tempest-plugin's gabbits and scenario templates,
openstack-heat's test and etc templates).

A wheel is downloaded once, without its dependencies (only its data files are read,
nothing of it is imported), into `~/.cache/canopy-wheels/<project>/<version>/`
(`CANOPY_WHEEL_CACHE` moves it), and nothing of it enters canopy's tree. Under `CI=true`
the download must work; elsewhere a test that needs a wheel it cannot have skips with one
line saying why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest


class Unavailable(Exception):
    """The wheel could not be had here (no index reachable)."""


_FAILED: dict[tuple[str, str], str] = {}


def cache_dir(project: str, version: str) -> Path:
    root = os.environ.get("CANOPY_WHEEL_CACHE", "~/.cache/canopy-wheels")
    return Path(root).expanduser() / project / version


def wheel(project: str, version: str) -> Path:
    """The wheel's file, downloaded the first time (a download lands under a temporary
    name and is moved in whole, so two test processes may ask at once)."""
    where = cache_dir(project, version)
    found = sorted(where.glob("*.whl"))
    if found:
        return found[0]
    if (project, version) in _FAILED:
        raise Unavailable(_FAILED[project, version])  # tried once in this process
    where.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        done = subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "-q", "--no-deps"),
                *("--only-binary=:all:", "--disable-pip-version-check"),
                *("-d", tmp, f"{project}=={version}"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        got = sorted(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not got:
            said = (done.stderr.strip().splitlines() or ["no wheel"])[-1][-300:]
            _FAILED[project, version] = f"pip download {project}=={version}: {said}"
            raise Unavailable(_FAILED[project, version])
        os.replace(got[0], where / got[0].name)
    return sorted(where.glob("*.whl"))[0]


def read(project: str, version: str, prefix: str, suffixes: tuple[str, ...]) -> dict[str, str]:
    """The text of each file of the wheel under `prefix` ending in one of `suffixes`, by
    its path in the wheel."""
    with zipfile.ZipFile(wheel(project, version)) as z:
        return {
            n: z.read(n).decode()
            for n in z.namelist()
            if n.startswith(prefix) and n.endswith(suffixes)
        }


def extract(project: str, version: str) -> Path:
    """A directory holding the wheel's data files (all but its Python code), at their paths
    in the wheel (extracted once, next to the wheel)."""
    target = cache_dir(project, version) / "files"
    if target.is_dir():
        return target
    source = wheel(project, version)
    tmp = Path(tempfile.mkdtemp(dir=target.parent))
    with zipfile.ZipFile(source) as z:
        z.extractall(tmp, [n for n in z.namelist() if not n.endswith((".py", ".pyc", "/"))])
    try:
        tmp.rename(target)
    except OSError:  # another process extracted it first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def needed(wheels: Iterable[tuple[str, str]]) -> None:
    """Download the wheels now; without an index, skip the test (fail under CI=true)."""
    try:
        for project, version in wheels:
            wheel(project, version)
    except Unavailable as e:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"OpenStack's wheels are not available here: {e}")
