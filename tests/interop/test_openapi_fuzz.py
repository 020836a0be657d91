"""Bad input never gives a 500: schemathesis drives every operation in /openapi.json.

Against a real `canopy up` process, with an admin token, a bounded number of generated
requests per operation (valid and invalid), each of which must get a non-5xx answer.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from .conftest import CanopyServer

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 6


def test_no_operation_answers_with_a_server_error(canopy_server: CanopyServer) -> None:
    token = canopy_server.token()
    schema = schemathesis.openapi.from_url(f"{canopy_server.base_url}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any) -> None:
            headers = (
                {} if case.headers and "X-Auth-Token" in case.headers else {"X-Auth-Token": token}
            )
            response = case.call(headers=headers, timeout=30)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: "
                    f"{response.text[:300]}"
                )

        run()
    assert operations >= 40, f"only {operations} operations in /openapi.json"
    assert not failures, "\n".join(failures[:20])
