"""Bad input never gives a 500: schemathesis drives every operation in /openapi.json.

Against a real `canopy up` process, with an admin token, a bounded number of generated
requests per operation (valid and invalid), each of which must get a non-5xx answer.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from .conftest import CanopyServer

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 6


@pytest.fixture(scope="module")
def admin_token(canopy_server: CanopyServer) -> str:
    return canopy_server.token()


@pytest.fixture(scope="module")
def api_schema(canopy_server: CanopyServer) -> Any:
    return schemathesis.openapi.from_url(f"{canopy_server.base_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_operation_answers_with_a_server_error(case: Any, admin_token: str) -> None:
    headers = {"X-Auth-Token": admin_token}
    if case.headers and "X-Auth-Token" in case.headers:
        headers = {}
    response = case.call(headers=headers, timeout=30)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
    )
