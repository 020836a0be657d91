"""A child's HTTP errors in canopy's domain errors."""

from __future__ import annotations

import pytest
from keystoneauth1 import exceptions as ks

from canopy.domain.errors import (
    AlreadyExists,
    CloudAuthError,
    CloudError,
    CloudQuotaError,
    TransientError,
    Unsupported,
)
from canopy.providers.openstack.errors import (
    MarkerNotFound,
    fault_of,
    from_exception,
    from_status,
)


@pytest.mark.parametrize(
    ("status", "message", "kind"),
    [
        (401, "The request you have made requires authentication.", CloudAuthError),
        (403, "Policy doesn't allow os_compute_api:servers:create", CloudAuthError),
        (403, "Quota exceeded for cores: Requested 4, but already used 20 of 20", CloudQuotaError),
        (409, "Cannot 'stop' instance while it is in task_state powering-off", TransientError),
        (413, "Over limit", TransientError),
        (429, "Rate limit", TransientError),
        (500, "Unexpected API Error.", TransientError),
        (503, "", TransientError),
        (501, "GET /compute/v2.1/os-hypervisors/statistics is not implemented.", Unsupported),
        (400, "Invalid flavorRef provided.", CloudError),
    ],
)
def test_statuses(status: int, message: str, kind: type[CloudError]) -> None:
    e = from_status(status, message, cloud="c", operation="create", zone="z1")
    assert type(e) is kind and e.cloud == "c" and e.zone == "z1"
    assert str(status) in str(e) and message in str(e)


def test_a_409_on_an_import_means_the_name_is_taken() -> None:
    e = from_status(409, "Key pair 'k' already exists.", cloud="c", operation="x", duplicate=True)
    assert isinstance(e, AlreadyExists)


@pytest.mark.parametrize(
    ("message", "marker", "gone"),
    [
        ("marker [AB-12] not found", "ab-12", True),  # Nova's servers, flavors, keypairs
        ("marker [ab-12] not found", None, False),  # not a listing's marker
        ("marker [other] not found", "ab-12", False),  # not the one asked with
        ("Invalid input for query parameters limit.", "ab-12", False),
        ("Invalid changes-since value", "ab-12", False),
    ],
)
def test_only_the_listing_own_marker_not_found_is_marker_not_found(
    message: str, marker: str | None, gone: bool
) -> None:
    e = from_status(400, message, cloud="c", operation="list", marker=marker)
    assert isinstance(e, MarkerNotFound) is gone and isinstance(e, CloudError)
    assert not isinstance(from_status(404, message, cloud="c", operation="list", marker=marker),
                          MarkerNotFound)  # fmt: skip


def test_fault_bodies() -> None:
    assert fault_of('{"itemNotFound": {"code": 404, "message": "gone"}}') == "gone"
    assert fault_of('{"error": {"code": 401, "message": "no"}}') == "no"
    assert fault_of("<html>bad gateway</html>") == "<html>bad gateway</html>"


def test_errors_before_an_answer() -> None:
    assert isinstance(
        from_exception(ks.ConnectFailure("refused"), cloud="c", operation="x"), TransientError
    )
    assert isinstance(
        from_exception(ks.Unauthorized("no"), cloud="c", operation="x"), CloudAuthError
    )
    assert isinstance(
        from_exception(ks.EndpointNotFound("no compute"), cloud="c", operation="x"), CloudAuthError
    )
