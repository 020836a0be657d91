"""The fixture the gabbits name, as heat-tempest-plugin's is: it puts a Keystone token in
`OS_TOKEN` for the tests' `X-Auth-Token`. The test sets `CANOPY_GABBI_TOKEN` first."""

from __future__ import annotations

import os

from gabbi import fixture


class AuthenticationFixture(fixture.GabbiFixture):  # type: ignore[misc]
    def start_fixture(self) -> None:
        os.environ["OS_TOKEN"] = os.environ["CANOPY_GABBI_TOKEN"]

    def stop_fixture(self) -> None:
        os.environ.pop("OS_TOKEN", None)
