"""The spend cap is a decimal amount in the config, read exactly into micro-units."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from canopy.config import ConfigError, load_settings


def _cap(tmp_path: Path, value: str, env: dict[str, str] | None = None) -> int:
    f = tmp_path / "canopy.toml"
    f.write_text(f"[scheduler]\nmax_spend_per_hour = {value}\n", encoding="utf-8")
    return load_settings(f, env=env or {}).scheduler.max_spend_per_hour_micros


@pytest.mark.parametrize(
    "text,micros",
    [
        ("50.0", 50_000_000),
        ("0.3", 300_000),  # not 0.299999999999999988897769753748... as a float
        ("0.1", 100_000),
        ("1e3", 1_000_000_000),
        ("12", 12_000_000),
        ("0.000001", 1),
        ("0", 0),
    ],
)
def test_the_cap_is_read_exactly(tmp_path: Path, text: str, micros: int) -> None:
    assert _cap(tmp_path, text) == micros


def test_the_default_cap_and_the_environment(tmp_path: Path) -> None:
    assert load_settings(None, env={}).scheduler.max_spend_per_hour == Decimal("50.0")
    env = {"CANOPY_SCHEDULER__MAX_SPEND_PER_HOUR": "0.7"}
    assert _cap(tmp_path, "1.0", env) == 700_000


def test_more_than_six_decimal_places_is_refused_at_its_line(tmp_path: Path) -> None:
    f = tmp_path / "canopy.toml"
    f.write_text('data_dir = "/x"\n[scheduler]\nmax_spend_per_hour = 0.1234567\n')
    with pytest.raises(ConfigError) as err:
        load_settings(f, env={})
    msg = str(err.value)
    assert f"{f}:3:" in msg and "max_spend_per_hour" in msg and "6 decimal places" in msg


def test_a_negative_cap_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="greater than or equal to 0"):
        _cap(tmp_path, "-1.0")
