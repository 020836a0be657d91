"""Fixtures for the sim driver's tests: a fake clock, a state file and a cloud factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from canopy.config import SimSettings
from canopy.domain.clock import FakeClock
from canopy.providers.sim.driver import SimCompute

from .helpers import MakeSim


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    # A directory that does not exist yet: the driver must create it.
    return tmp_path / "clouds" / "sim-private.db"


@pytest.fixture(params=[False, True], ids=["nova", "atomic"])
def atomic_create(request: pytest.FixtureRequest) -> bool:
    """Every sim test runs against both kinds of create: Nova's and EC2's with a token."""
    return bool(request.param)


@pytest.fixture
async def make_sim(
    clock: FakeClock, state_file: Path, atomic_create: bool
) -> AsyncIterator[MakeSim]:
    """Build sim clouds (closed at the end of the test).

    Defaults keep time exact: no API latency, 2 s boots, 0.5 s power actions, and the
    `atomic_create` of the test's parameter. Keyword arguments override SimSettings
    fields; `path`, `seed`, `name` and `lost_response_rate` go to the constructor.
    """
    made: list[SimCompute] = []

    def make(
        *,
        path: Path | None = None,
        seed: int = 42,
        name: str = "private",
        lost_response_rate: float = 0.0,
        **overrides: Any,
    ) -> SimCompute:
        fields: dict[str, Any] = {
            "api_latency_ms": 0.0,
            "boot_seconds": 2.0,
            "atomic_create": atomic_create,
        }
        fields.update(overrides)
        sim = SimCompute(
            name=name,
            settings=SimSettings(**fields),
            state_file=path or state_file,
            clock=clock,
            seed=seed,
            lost_response_rate=lost_response_rate,
        )
        made.append(sim)
        return sim

    yield make
    for sim in made:
        await sim.close()
