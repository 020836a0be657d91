"""`[clouds.sim]`: the simulated cloud's options (validated with the rest of the config)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from canopy.domain.states import Ability


class SimSettings(BaseModel):
    # Bounded: a cloud can be added at run time by an admin's request, and the sim builds
    # its hosts in memory and in its state file (no infinite prices, no 10**30 hosts).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    hosts: int = Field(default=4, ge=0, le=100_000)
    host_vcpus: int = Field(default=16, ge=1, le=10**6)
    host_ram_mb: int = Field(default=65536, ge=1, le=2**40)
    host_disk_gb: int = Field(default=2000, ge=1, le=2**40)
    boot_seconds: float = Field(default=2.0, ge=0.0, le=86_400.0)
    boot_jitter: float = Field(default=0.0, ge=0.0, le=1.0, description="fraction of boot_seconds")
    action_seconds: float = Field(default=0.5, ge=0.0, le=86_400.0)
    api_latency_ms: float = Field(default=20.0, ge=0.0, le=600_000.0)
    latency_jitter: float = Field(default=0.0, ge=0.0, le=1.0, description="fraction of latency")
    price_per_vcpu_hour: float = Field(default=0.0, ge=0.0, le=1e6)
    price_per_gb_ram_hour: float = Field(default=0.0, ge=0.0, le=1e6)
    quota_instances: int | None = Field(default=None, ge=0, le=2**31)
    quota_vcpus: int | None = Field(default=None, ge=0, le=2**31)
    transient_error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    capacity_error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    boot_failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    # A create that succeeds but whose answer never arrives (raised as a transient error).
    lost_response_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    # False (the default) is Nova: a create looks the canopy id up, then creates, in two
    # calls, so two creates for one id can both create. True is EC2 with a ClientToken:
    # the lookup and the create are one atomic step.
    atomic_create: bool = False
    # Zones inside the cloud: hosts are dealt round them in turn (`hosts` is the total).
    zones: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list)
    # Zones that refuse every create with a capacity error (EC2's InsufficientInstanceCapacity
    # in one AZ); read on every call, so a test may fill a zone on a live cloud.
    full_zones: list[str] = Field(default_factory=list)
    # Abilities this cloud lacks, with the reason users are shown (e.g. stop_start = "...").
    missing_abilities: dict[Ability, str] = Field(default_factory=dict)
    # Every call fails as if the credentials were refused (401): the cloud turns unhealthy.
    refuse_credentials: bool = False
    # The list returns servers without a canopy id too, as a cloud that cannot filter by tag.
    list_untagged: bool = False
    seed: int | None = None
    state_file: str | None = None  # default: {data_dir}/sim-{name}.db

    @model_validator(mode="after")
    def _zones(self) -> SimSettings:
        if len(set(self.zones)) != len(self.zones):
            raise ValueError(f"zones must be distinct, got {self.zones}")
        unknown = [z for z in self.full_zones if z not in self.zones]
        if unknown:
            raise ValueError(f"full_zones {unknown} are not among zones {self.zones}")
        return self
