"""`[clouds.openstack]` in canopy.toml: the driver's options, checked with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from canopy.config import ConfigError, load_settings

CLOUD = '[[clouds]]\nname = "site-b"\ndriver = "openstack"\n[clouds.openstack]\n'


def test_an_openstack_cloud_is_read(tmp_path: Path) -> None:
    f = tmp_path / "canopy.toml"
    f.write_text(
        CLOUD + 'cloud = "site-b"\nclouds_yaml = "/etc/canopy/clouds.yaml"\n'
        'region_name = "RegionTwo"\nnetwork = "private-net"\n'
        'flavor_map = { "m1.small" = "s1.small" }\n'
    )
    [cloud] = load_settings(f, env={}).clouds
    assert cloud.openstack is not None
    o = cloud.openstack
    assert (o.cloud, o.clouds_yaml, o.region_name, o.network) == (
        "site-b",
        "/etc/canopy/clouds.yaml",
        "RegionTwo",
        "private-net",
    )
    assert o.flavor_map == {"m1.small": "s1.small"} and o.schedule_wait_seconds == 10.0


@pytest.mark.parametrize(
    ("line", "where", "what"),
    [
        ('password = "s3cret"', "openstack.password", "unknown key"),
        ("schedule_wait_seconds = -1", "schedule_wait_seconds", "greater than or equal to 0"),
        ('network = " "', "openstack.network", "network must be"),
        ('credentials = "inline"', "credentials", "'env'"),
    ],
)
def test_a_wrong_option_names_its_line(tmp_path: Path, line: str, where: str, what: str) -> None:
    f = tmp_path / "canopy.toml"
    f.write_text(CLOUD + 'cloud = "site-b"\n' + line + "\n")
    with pytest.raises(ConfigError) as err:
        load_settings(f, env={})
    msg = str(err.value)
    assert f"{f}:6:" in msg and where in msg and what in msg
    assert "s3cret" not in msg
