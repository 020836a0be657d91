"""`[clouds.ec2]`: the ec2 driver's options. Pure data: importing this never imports boto3.

Credentials are named, never inline: `"env"` (boto3's default chain: AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, the shared files, an instance role) or
`"profile:NAME"` (a named profile of ~/.aws/credentials and ~/.aws/config). A cloud added at
run time (`canopy cloud add`, the admin API) may instead carry `Ec2Credentials`, sealed in
the database: its source is then `"stored"`, which a config file cannot name.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

STORED = "stored"  # credentials sealed in the database (a cloud added at run time)

# What an AWS region / AZ name looks like (us-east-1, us-east-1a, us-gov-west-1, ap-south-2b).
_REGION = r"^[a-z]{2}(-[a-z]+)+-\d+$"
_ZONE = r"^[a-z]{2}(-[a-z]+)+-\d+[a-z]$"
Zone = Annotated[str, Field(pattern=_ZONE)]


class Ec2Options(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    region: Annotated[str, Field(pattern=_REGION)]
    # The AZs servers may be placed in; empty: every available AZ of the region.
    zones: list[Zone] = Field(default_factory=list)
    # An emulator's URL (moto, LocalStack); leave unset for AWS itself.
    endpoint_url: str | None = None
    credentials: str = "env"
    # The instance types canopy may choose from, as EC2 filter patterns ("t3.*",
    # "m6i.large"); empty: every type the region offers.
    instance_types: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list
    )
    # Per instance type, the on-demand price per hour (USD) to use instead of the shipped
    # table's (e.g. a negotiated rate, or a type the table does not price).
    prices: dict[str, Annotated[float, Field(ge=0.0)]] = Field(default_factory=dict)
    # Account limits when the operator knows them (EC2 counts running on-demand vCPUs);
    # unset: unknown, and the cloud's own errors (VcpuLimitExceeded) say when it is full.
    max_vcpus: int | None = Field(default=None, ge=0)
    max_instances: int | None = Field(default=None, ge=0)
    # The page size of DescribeInstances and DescribeTags (5..1000).
    page_size: int = Field(default=1000, ge=5, le=1000)
    # Sync describes an instance again when its state changes, and at least this often
    # (seconds): a change that keeps the state (an address associated) shows within it.
    describe_refresh_seconds: float = Field(default=300.0, gt=0.0)

    @field_validator("credentials")
    @classmethod
    def _named_credentials(cls, value: str) -> str:
        if value in ("env", STORED):
            return value
        if value.startswith("profile:") and len(value) > len("profile:"):
            return value
        raise ValueError(
            'credentials must be "env" or "profile:NAME"; keys are never written in the '
            "config file (set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or name a profile)"
        )

    @property
    def profile(self) -> str | None:
        """The AWS profile to use, if credentials name one."""
        if self.credentials.startswith("profile:"):
            return self.credentials.removeprefix("profile:")
        return None


class Ec2Credentials(BaseModel):
    """An access key given at run time (sealed in the database, never shown)."""

    # A rejected value is never echoed in an error: it may be a secret.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    access_key_id: Annotated[str, Field(min_length=16, max_length=128, pattern=r"^[A-Z0-9]+$")]
    secret_access_key: Annotated[SecretStr, Field(min_length=1, max_length=256)]
    session_token: Annotated[SecretStr, Field(min_length=1, max_length=4096)] | None = None

    def to_vault(self) -> dict[str, str]:
        """The values to seal."""
        out = {
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key.get_secret_value(),
        }
        if self.session_token is not None:
            out["session_token"] = self.session_token.get_secret_value()
        return out
