"""Each driver's options model is named once, in providers/options.py, and validated
inside the config with the file and line of the mistake."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from canopy.config import CloudSettings, ConfigError, load_settings
from canopy.config_sections import CloudDriver
from canopy.providers.options import DRIVER_OPTIONS


def test_every_driver_has_its_table_and_every_table_its_driver() -> None:
    assert set(DRIVER_OPTIONS) == set(typing.get_args(CloudDriver))
    for driver, model in DRIVER_OPTIONS.items():
        field = CloudSettings.model_fields[driver]
        assert model in typing.get_args(field.annotation), driver


def _error(tmp_path: Path, text: str) -> tuple[Path, str]:
    f = tmp_path / "canopy.toml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_settings(f, env={})
    return f, str(e.value)


def test_ec2_options_are_checked_with_their_line(tmp_path: Path) -> None:
    f, msg = _error(
        tmp_path,
        '[[clouds]]\nname = "aws"\ndriver = "ec2"\n[clouds.ec2]\nregion = "us-east-1"\n'
        'zones = ["us-east-1a", "nowhere"]\n'
        'credentials = "AKIAIOSFODNN7EXAMPLE"\n'
        "page_size = 2\n",
    )
    assert f"{f}:6:" in msg and "zones" in msg
    assert f"{f}:7:" in msg and "never written in the config" in msg
    assert f"{f}:8:" in msg and "page_size" in msg


def test_an_unknown_ec2_option_is_refused(tmp_path: Path) -> None:
    f, msg = _error(
        tmp_path,
        '[[clouds]]\nname = "aws"\ndriver = "ec2"\n[clouds.ec2]\nregion = "us-east-1"\n'
        'secret_access_key = "x"\n',
    )
    assert f"{f}:6:" in msg and "secret_access_key" in msg


def test_sim_options_keep_their_defaults_and_their_checks(tmp_path: Path) -> None:
    f = tmp_path / "ok.toml"
    f.write_text('[[clouds]]\nname = "p"\n', encoding="utf-8")
    s = load_settings(f, env={})
    assert s.clouds[0].sim is not None and s.clouds[0].sim.hosts == 4
    f, msg = _error(tmp_path, '[[clouds]]\nname = "p"\n[clouds.sim]\nhosts = -1\n')
    assert f"{f}:4:" in msg and "hosts" in msg
