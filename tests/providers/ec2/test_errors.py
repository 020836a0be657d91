"""EC2's errors in canopy's vocabulary. moto never refuses for capacity, quota, throttling
or credentials, so those answers are injected with a botocore hook on the test's client
(tests/providers/ec2/conftest.py `inject`); InvalidAMIID is moto's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from canopy.domain.errors import (
    CapacityError,
    CloudAuthError,
    CloudError,
    CloudQuotaError,
    TransientError,
)
from canopy.providers.ec2.driver import Ec2Compute
from canopy.providers.ec2.options import Ec2Options
from tests.providers.ec2.conftest import REGION, client, inject
from tests.providers.ec2.test_driver import instances, spec


def driver(url: str, ec2_client: Any = None, **options: Any) -> Ec2Compute:
    opts = Ec2Options(region=REGION, endpoint_url=url, **options)
    return Ec2Compute("aws", opts, concurrency=2, client=ec2_client)


async def test_no_capacity_in_one_zone_is_a_capacity_error_for_that_zone(
    moto: str, ec2: Any, ami: str
) -> None:
    own = client(moto)
    refused = inject(
        own,
        "RunInstances",
        "InsufficientInstanceCapacity",
        when=lambda body: body.get("Placement.AvailabilityZone") == "us-east-1b",
        status=500,
    )
    d = driver(moto, own)
    try:
        with pytest.raises(CapacityError) as e:
            await d.create(spec("77777777-aaaa-4bbb-8ccc-000000000001", ami, zone="us-east-1b"))
        assert e.value.zone == "us-east-1b" and e.value.cloud == "aws"
        assert "InsufficientInstanceCapacity" in str(e.value)
        assert len(refused) == 1  # a capacity error is not retried by botocore either
        ok = await d.create(spec("77777777-aaaa-4bbb-8ccc-000000000002", ami, zone="us-east-1c"))
        assert ok.zone == "us-east-1c"
        assert len(instances(ec2)) == 1
    finally:
        await d.close()


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("InstanceLimitExceeded", 400, CloudQuotaError),
        ("VcpuLimitExceeded", 400, CloudQuotaError),
        ("RequestLimitExceeded", 503, TransientError),
        ("InternalError", 500, TransientError),
        ("AuthFailure", 401, CloudAuthError),
        ("UnauthorizedOperation", 403, CloudAuthError),
        ("RequestExpired", 400, CloudAuthError),
        ("InvalidParameterValue", 400, CloudError),
    ],
)
async def test_error_codes(moto: str, ami: str, code: str, status: int, kind: type) -> None:
    own = client(moto)
    refused = inject(own, "RunInstances", code, status=status)
    d = driver(moto, own)
    try:
        with pytest.raises(CloudError) as e:
            await d.create(spec("88888888-aaaa-4bbb-8ccc-000000000001", ami))
        assert type(e.value) is kind, (code, type(e.value))
        assert code in str(e.value)
        assert len(refused) == 1  # botocore's retries are off: the runtime backs off
    finally:
        await d.close()


async def test_a_missing_profile_is_an_auth_error(moto: str) -> None:
    d = driver(moto, credentials="profile:nobody")
    try:
        with pytest.raises(CloudAuthError, match="nobody"):
            await d.zones()
    finally:
        await d.close()


async def test_a_named_profile_is_where_the_keys_come_from(
    moto: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`credentials = "profile:prod"` reaches the cloud with that profile's keys and
    nothing else: no key in the environment, no default profile."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    shared = tmp_path / "credentials"
    shared.write_text(
        "[prod]\naws_access_key_id = AKIAPRODEXAMPLE\naws_secret_access_key = prodsecret\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(shared))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))  # none
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role: loopback only
    d = driver(moto, credentials="profile:prod")
    try:
        assert await d.zones()
    finally:
        await d.close()
    # Without the profile the same call has no keys at all: an auth error, not a success.
    d = driver(moto, credentials="env")
    try:
        with pytest.raises(CloudAuthError):
            await d.zones()
    finally:
        await d.close()


async def test_an_unreachable_endpoint_is_transient(moto: str) -> None:
    d = driver("http://127.0.0.1:9")
    try:
        with pytest.raises(TransientError):
            await d.zones()
    finally:
        await d.close()


def test_credentials_are_named_never_inline() -> None:
    assert Ec2Options(region=REGION).credentials == "env"
    assert Ec2Options(region=REGION, credentials="profile:prod").profile == "prod"
    for bad in ("AKIAXXXXXXXX:secret", "profile:", "inline"):
        with pytest.raises(ValueError, match="never written in the config"):
            Ec2Options(region=REGION, credentials=bad)
