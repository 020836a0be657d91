"""A child's capacity: the quota's totals and headroom, totals narrowed by the hypervisors
when they can be read; free is the quota's headroom alone (hypervisor figures are physical,
and Nova over-commits them by ratios no API shows)."""

from __future__ import annotations

from canopy.providers.openstack.capacity import capacity_of

LIMITS = {
    "limits": {
        "absolute": {
            "maxTotalCores": 20,
            "totalCoresUsed": 6,
            "maxTotalRAMSize": 51200,
            "totalRAMUsed": 4096,
            "maxTotalInstances": 10,
            "totalInstancesUsed": 3,
        }
    }
}


def test_free_is_the_quota_s_headroom() -> None:
    cap = capacity_of(LIMITS, None)
    assert (cap.vcpus_total, cap.vcpus_free) == (20, 14)
    assert (cap.ram_mb_total, cap.ram_mb_free) == (51200, 47104)
    assert (cap.instances_total, cap.instances_free) == (10, 7)


def test_a_hypervisor_reported_full_narrows_the_totals_not_the_headroom() -> None:
    # 8 physical vcpus, 9 in use: Nova (cpu_allocation_ratio 16) still places there.
    hv = {"vcpus": 8, "vcpus_used": 9, "memory_mb": 8192, "memory_mb_used": 8192}
    cap = capacity_of(LIMITS, hv)
    assert (cap.vcpus_total, cap.vcpus_free) == (8, 14)
    assert (cap.ram_mb_total, cap.ram_mb_free) == (8192, 47104)


def test_unlimited_quotas_are_unknown() -> None:
    unlimited = {"limits": {"absolute": {"maxTotalCores": -1, "maxTotalRAMSize": -1}}}
    cap = capacity_of(unlimited, None)
    assert (cap.vcpus_total, cap.vcpus_free, cap.ram_mb_total, cap.instances_total) == (
        None,
        None,
        None,
        None,
    )
