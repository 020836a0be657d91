"""`[clouds.openstack]`: how canopy reaches one OpenStack region (or another canopy).

Credentials are never written here: `cloud` names an entry of a clouds.yaml (the usual
search path, `OS_CLIENT_CONFIG_FILE`, or `clouds_yaml`), which holds a password, an
application credential, or `auth_type: none` plus an endpoint (test harnesses). A cloud
added at run time may instead carry `OpenStackCredentials` (an entry's `auth_type` and
`auth`), sealed in the database: its source is then `"stored"`, which a file cannot name.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

DRIVER = "openstack"

# What `network` may say besides a network's id or name.
NO_NETWORK = "none"  # boot with no port at all (Nova's `networks: "none"`, 2.37+)
AUTO_NETWORK = "auto"  # let Nova allocate the project's network (2.37+)


class OpenStackOptions(BaseModel):
    """Options of one `openstack` cloud; every field has a safe default."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    cloud: Annotated[str, Field(min_length=1, max_length=255)] | None = Field(
        default=None,
        description="the entry of clouds.yaml to use; none: the OS_* environment variables",
    )
    clouds_yaml: str | None = Field(
        default=None, description="a clouds.yaml to read instead of the usual search path"
    )
    region_name: str | None = Field(default=None, description="default: the entry's region")
    # Overrides of the entry's identity URL and of the compute endpoint from its catalog
    # (a harness without Keystone: `auth_type: none` plus endpoint_override).
    auth_url: str | None = None
    endpoint_override: str | None = None
    # Where credentials come from: "env" is the clouds.yaml entry or the OS_* environment;
    # "stored" (clouds added at run time only) is OpenStackCredentials sealed in the database.
    credentials: Literal["env", "stored"] = "env"
    # Canopy flavor name -> remote flavor name or id. A flavor left out is mapped to the
    # smallest remote flavor that fits it (vcpus, then RAM, then disk).
    flavor_map: dict[str, str] = Field(default_factory=dict)
    # With admin credentials, canopy's flavors boot as flavors of exactly their size that
    # canopy creates in the child on first use (`<prefix><flavor>`, private) and replaces
    # when canopy's size changes; see managed_flavors.py. An explicit flavor_map wins.
    manage_flavors: bool = False
    managed_flavor_prefix: str = Field(
        default="canopy-", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$"
    )
    network: str = Field(
        default=NO_NETWORK,
        description='"none", "auto", or a network id or name (names are looked up in Neutron)',
    )
    # What a server costs per hour on this cloud, by size (a private cloud: 0).
    price_per_vcpu_hour: float = Field(default=0.0, ge=0.0)
    price_per_gb_ram_hour: float = Field(default=0.0, ge=0.0)
    # The child's availability zones servers may go to; empty: those the child lists.
    zones: list[str] = Field(default_factory=list)
    # A create waits this long (polling) for the child to schedule the server, so that a
    # "No valid host was found" becomes a capacity error at once and failover moves on;
    # 0 returns right after the child accepts the request.
    schedule_wait_seconds: float = Field(default=10.0, ge=0.0, le=120.0)
    schedule_poll_seconds: float = Field(default=0.5, gt=0.0, le=10.0)
    # changes-since is asked from this long before the caller's mark: the child's clock
    # and its commit order are not canopy's (the 2014 cascading PoC used 3 s).
    changes_since_overlap_seconds: float = Field(default=5.0, ge=0.0, le=3600.0)
    # Capacity from the hypervisors' totals when the credentials are admin's (else, and
    # always as a bound, the project's quota headroom from `limits`).
    use_hypervisor_stats: bool = True
    # Page size for server lists (Nova's default is its osapi_max_limit, 1000).
    page_size: int = Field(default=500, ge=1, le=1000)
    # Timeout of one HTTP request to the child, in seconds.
    api_timeout_seconds: float = Field(default=30.0, gt=0.0, le=600.0)

    @field_validator("network")
    @classmethod
    def _network(cls, value: str) -> str:
        if not value.strip():
            raise ValueError('network must be "none", "auto", or a network id or name')
        return value


# The auth plugins a stored credential may use, and the `auth` keys each needs.
AUTH_TYPES: dict[str, tuple[str, ...]] = {
    "password": ("auth_url", "username", "password"),
    "v3password": ("auth_url", "username", "password"),
    "v3applicationcredential": ("auth_url", "application_credential_secret"),
    "applicationcredential": ("auth_url", "application_credential_secret"),
    "token": ("auth_url", "token"),
    "v3token": ("auth_url", "token"),
}
AuthKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
AuthValue = Annotated[SecretStr, Field(max_length=4096)]


class OpenStackCredentials(BaseModel):
    """A clouds.yaml entry's `auth_type` and `auth`, given at run time (sealed, never shown)."""

    # A rejected value is never echoed in an error: it may be a secret.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    auth_type: Literal[
        "password",
        "v3password",
        "v3applicationcredential",
        "applicationcredential",
        "token",
        "v3token",
    ] = "password"
    auth: dict[AuthKey, AuthValue] = Field(min_length=1, max_length=32)

    @model_validator(mode="after")
    def _complete(self) -> OpenStackCredentials:
        missing = [k for k in AUTH_TYPES[self.auth_type] if k not in self.auth]
        if missing:
            raise ValueError(f"auth_type {self.auth_type} needs auth.{', auth.'.join(missing)}")
        return self

    def to_vault(self) -> dict[str, str]:
        """The values to seal (the auth keys under an `auth.` prefix)."""
        out: dict[str, str] = {"auth_type": self.auth_type}
        out.update({f"auth.{k}": v.get_secret_value() for k, v in self.auth.items()})
        return out

    @staticmethod
    def from_vault(sealed: dict[str, str]) -> tuple[str, dict[str, str]]:
        """The auth type and the auth mapping, from what `to_vault` sealed."""
        auth = {k.removeprefix("auth."): v for k, v in sealed.items() if k.startswith("auth.")}
        return sealed.get("auth_type", "password"), auth
