"""The registry keeps a cloud's settings (never its secrets) and rebuilds them to drain it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from canopy.config import CloudSettings, load_settings
from canopy.providers.registry import (
    draining_settings,
    settings_from_stored,
    stored_settings,
    without_secrets,
)


def test_the_kept_settings_rebuild_the_same_cloud() -> None:
    cloud = CloudSettings(
        name="old",
        tier=2,
        concurrency=7,
        flavor_map={"m1.small": "s1"},
        sim={"hosts": 3, "price_per_vcpu_hour": 0.5, "seed": 9},
    )
    kept = stored_settings(cloud)
    assert "name" not in kept
    assert kept["sim"]["hosts"] == 3 and kept["concurrency"] == 7
    assert settings_from_stored("old", kept) == cloud


def test_secrets_are_never_kept() -> None:
    class Inner(BaseModel):
        user: str
        password: SecretStr

    class Outer(BaseModel):
        region: str
        token: SecretStr
        auth: Inner

    kept = without_secrets(
        Outer(region="r1", token=SecretStr("t0ps3cret"), auth=Inner(user="u", password="pw"))
    )
    assert kept == {"region": "r1", "auth": {"user": "u"}}
    assert "t0ps3cret" not in repr(kept)


def test_clouds_whose_settings_cannot_be_rebuilt_get_no_driver(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = load_settings(None, env={})
    good = stored_settings(CloudSettings(name="x", sim={"hosts": 1}))
    with caplog.at_level(logging.WARNING, logger="canopy.providers"):
        out = draining_settings(
            settings,
            {
                "kept": good,
                "never-kept": None,
                "renamed-key": {**good, "no_such_setting": 1},
                "private": good,  # configured again: not draining
            },
        )
    assert [c.name for c in out] == ["kept"]
    text = caplog.text
    assert "'never-kept'" in text and "add it back to the config" in text
    assert "'renamed-key'" in text and "no longer valid" in text


def test_an_openstack_cloud_gets_its_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from canopy.domain.clock import FakeClock
    from canopy.providers.openstack.driver import OpenStackCompute
    from canopy.providers.registry import build_driver

    config = tmp_path / "clouds.yaml"
    config.write_text(
        "clouds:\n  site-b:\n    auth_type: none\n"
        "    compute_endpoint_override: http://127.0.0.1:9/v2.1\n"
    )
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(config))
    settings = load_settings(None, env={})
    cloud = CloudSettings(
        name="site-b",
        driver="openstack",
        flavor_map={"m1.small": "small", "m1.tiny": "tiny"},
        openstack={"cloud": "site-b"},
    )
    driver = build_driver(settings, cloud, FakeClock())
    assert isinstance(driver, OpenStackCompute) and driver.name == "site-b"
    assert driver.options.flavor_map == {"m1.small": "small", "m1.tiny": "tiny"}
    assert settings_from_stored("site-b", stored_settings(cloud)) == cloud


def test_an_openstack_cloud_without_its_clouds_yaml_entry_fails_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from canopy.domain.clock import FakeClock
    from canopy.domain.errors import CloudError
    from canopy.providers.registry import build_driver

    config = tmp_path / "clouds.yaml"
    config.write_text("clouds:\n  other:\n    auth_type: none\n")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(config))
    cloud = CloudSettings(name="site-b", driver="openstack", openstack={"cloud": "site-b"})
    with pytest.raises(CloudError, match="site-b"):
        build_driver(load_settings(None, env={}), cloud, FakeClock())
