"""Prices of the simulated cloud: linear in vcpus and RAM."""

from __future__ import annotations

from canopy.providers.sim.options import SimSettings


def sim_price_per_hour(sim: SimSettings, vcpus: int, ram_mb: int) -> float:
    """What one server of this size costs per hour on a sim cloud."""
    return round(vcpus * sim.price_per_vcpu_hour + (ram_mb / 1024) * sim.price_per_gb_ram_hour, 6)
