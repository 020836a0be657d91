"""Zone to zone failover inside one real Nova.

The behaviour suite's Nova has one zone, so its "no room in one zone" case skips there.
Here a Nova of its own runs two compute hosts, each in an availability zone of its own
(az1, az2: aggregates made through Nova's admin API, as an operator would). az1 is filled
with the operator's servers until Nova's scheduler says "No valid host was found"; canopy's
servers sent there are refused by Nova itself and boot in az2, in the same cloud.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.controllers.harness import Plane
from tests.interop.nova.harness import RealNova
from tests.providers.behaviour.backends import Backend, NovaBackend
from tests.providers.behaviour.test_behaviour import moves_to_another_zone
from tests.providers.conftest import nova_or_skip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def zoned_nova(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealNova]:
    nova = nova_or_skip(tmp_path_factory.mktemp("nova"), compute_hosts=2)
    try:
        nova.make_zones({"compute": "az1", "compute2": "az2"})
        nova.raise_quotas()  # the filling servers and canopy's: over Nova's 10 a project
        yield nova
    finally:
        nova.stop()


@pytest.fixture
def backend(zoned_nova: RealNova, tmp_path: Path) -> Backend:
    """The behaviour suite's `plane` runs on this Nova (overrides conftest's backend)."""
    return NovaBackend(zoned_nova, tmp_path, zones=["az1", "az2"])


async def test_no_valid_host_in_one_zone_moves_the_server_to_the_other_zone(
    plane: Plane, backend: Backend
) -> None:
    refused = await moves_to_another_zone(plane, backend)
    assert "No valid host was found" in refused["error"], refused  # Nova's own answer
    print(f"\nrefused in az1: {refused}")
