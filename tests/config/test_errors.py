"""A malformed config fails with the file, the line and what was expected."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from canopy.config import ConfigError, load_settings


def write(tmp_path: Path, text: str, name: str = "canopy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path | None, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as err:
        load_settings(path, env=env or {})
    return str(err.value)


def test_wrong_type_in_the_second_cloud(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        'data_dir = "/x"\n'  # 1
        "\n"  # 2
        "[[clouds]]\n"  # 3
        'name = "private"\n'  # 4
        "tier = 0\n"  # 5
        "\n"  # 6
        "[[clouds]]\n"  # 7
        'name = "public"\n'  # 8
        'tier = "high"\n',  # 9
    )
    msg = error_of(f)
    assert f"{f}:9:" in msg
    assert "clouds[1].tier" in msg
    assert "valid integer" in msg  # what was expected
    assert "'high'" in msg  # what was found


def test_wrong_type_inside_the_second_clouds_sim_table(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        "[[clouds]]\n"  # 1
        'name = "a"\n'  # 2
        "[clouds.sim]\n"  # 3
        "hosts = 2\n"  # 4
        "[[clouds]]\n"  # 5
        'name = "b"\n'  # 6
        "[clouds.sim]\n"  # 7
        "boot_seconds = 1\n"  # 8
        'hosts = "many"\n',  # 9
    )
    msg = error_of(f)
    assert f"{f}:9:" in msg and "clouds[1].sim.hosts" in msg


def test_unknown_key_in_clouds_sim(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        "[[clouds]]\n"  # 1
        'name = "private"\n'  # 2
        "[clouds.sim]\n"  # 3
        "hosts = 2\n"  # 4
        "hostz = 3\n",  # 5
    )
    msg = error_of(f)
    assert f"{f}:5:" in msg
    assert "clouds[0].sim.hostz" in msg
    assert "unknown key" in msg


def test_unknown_top_level_key(tmp_path: Path) -> None:
    f = write(tmp_path, 'data_dir = "/x"\n[databse]\nurl = "x"\n')
    msg = error_of(f)
    assert f"{f}:2:" in msg and "databse" in msg and "unknown key" in msg


def test_missing_required_key(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        "[[flavors]]\n"  # 1
        'name = "a"\n'  # 2
        "vcpus = 1\n"  # 3
        "ram_mb = 512\n"  # 4
        "\n"  # 5
        "[[flavors]]\n"  # 6
        'name = "m1.big"\n'  # 7
        "ram_mb = 2048\n",  # 8
    )
    msg = error_of(f)
    # The key is absent, so the line is the one of the entry that lacks it.
    assert f"{f}:6:" in msg
    assert "flavors[1].vcpus" in msg
    assert "required key is missing" in msg


def test_a_flavor_id_longer_than_novas(tmp_path: Path) -> None:
    """Flavor ids are 1 to 255 characters, the column's width: a longer one in the file is
    an error at its line, not a failed start."""
    entry = '[[flavors]]\nname = "m1.x"\nvcpus = 1\nram_mb = 512\n'
    ok = write(tmp_path, entry + f'id = "{"i" * 255}"\n')
    assert [f.id for f in load_settings(ok, env={}).flavors] == ["i" * 255]
    for bad, why in (("i" * 256, "at most 255 characters"), ("", "at least 1 character")):
        f = write(tmp_path, entry + f'id = "{bad}"\n')
        msg = error_of(f)
        assert f"{f}:5:" in msg and "flavors[0].id" in msg and why in msg, msg


def test_ec2_cloud_without_its_section(tmp_path: Path) -> None:
    f = write(tmp_path, '[[clouds]]\nname = "aws"\ndriver = "ec2"\n')
    msg = error_of(f)
    assert f"{f}:1:" in msg and "[clouds.ec2]" in msg and "'aws'" in msg


def test_unknown_driver_lists_the_choices(tmp_path: Path) -> None:
    f = write(tmp_path, '[[clouds]]\nname = "az"\ndriver = "azure"\n')
    msg = error_of(f)
    assert f"{f}:3:" in msg and "'sim'" in msg and "'ec2'" in msg and "'openstack'" in msg


def test_bad_cloud_name(tmp_path: Path) -> None:
    f = write(tmp_path, '[[clouds]]\nname = "has space"\n')
    msg = error_of(f)
    assert f"{f}:2:" in msg and "clouds[0].name" in msg and "pattern" in msg


@pytest.mark.parametrize("value", ["1.5", "0", "-0.1"])
def test_burst_threshold_out_of_range(tmp_path: Path, value: str) -> None:
    f = write(tmp_path, f"# tuned\n[scheduler]\nmax_attempts = 3\nburst_threshold = {value}\n")
    msg = error_of(f)
    assert f"{f}:4:" in msg
    assert "scheduler.burst_threshold" in msg
    assert ("less than or equal to 1" in msg) or ("greater than 0" in msg)


def test_burst_threshold_bounds_are_inclusive_at_one(tmp_path: Path) -> None:
    f = write(tmp_path, "[scheduler]\nburst_threshold = 1.0\n")
    assert load_settings(f, env={}).scheduler.burst_threshold == 1.0


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    f = write(tmp_path, "[api]\nport = 70000\n[scheduler]\nmax_attempts = 0\n")
    msg = error_of(f)
    assert f"{f}:2:" in msg and "api.port" in msg
    assert f"{f}:4:" in msg and "scheduler.max_attempts" in msg


def test_invalid_toml_syntax(tmp_path: Path) -> None:
    f = write(tmp_path, 'data_dir = "x"\n[api]\nport = \n')
    msg = error_of(f)
    assert str(f) in msg
    assert "not valid TOML" in msg
    assert "line 3" in msg  # from tomllib


def test_invalid_toml_duplicate_table(tmp_path: Path) -> None:
    f = write(tmp_path, "[api]\nport = 1\n\n[api]\nport = 2\n")
    msg = error_of(f)
    assert str(f) in msg and "line 4" in msg


def test_missing_file(tmp_path: Path) -> None:
    f = tmp_path / "nope.toml"
    msg = error_of(f)
    assert str(f) in msg and "cannot read" in msg and "No such file" in msg


def test_directory_instead_of_a_file(tmp_path: Path) -> None:
    msg = error_of(tmp_path)
    assert str(tmp_path) in msg and "cannot read" in msg


def test_path_through_a_file(tmp_path: Path) -> None:
    f = write(tmp_path, "")
    msg = error_of(f / "canopy.toml")
    assert f"{f}/canopy.toml" in msg and "cannot read" in msg and "Not a directory" in msg


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a mode-000 file")
def test_unreadable_file(tmp_path: Path) -> None:
    f = write(tmp_path, 'data_dir = "x"\n')
    f.chmod(0)
    try:
        msg = error_of(f)
    finally:
        f.chmod(0o644)
    assert str(f) in msg and "Permission denied" in msg


def test_missing_file_named_by_canopy_config(tmp_path: Path) -> None:
    f = tmp_path / "gone.toml"
    with pytest.raises(ConfigError, match=r"gone\.toml"):
        load_settings(None, env={"CANOPY_CONFIG": str(f)})


def test_bad_env_value_without_a_file() -> None:
    msg = error_of(None, env={"CANOPY_API_PORT": "eighty"})
    assert "api.port" in msg and "'eighty'" in msg


# Errors whose line is not reported today ---------------------------------------------


def test_duplicate_cloud_names_name_the_line(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        "[[clouds]]\n"  # 1
        'name = "a"\n'  # 2
        "\n"  # 3
        "[[clouds]]\n"  # 4
        'name = "a"\n',  # 5
    )
    msg = error_of(f)
    assert "duplicate" in msg and "'a'" in msg
    assert f"{f}:5:" in msg


def test_duplicate_cloud_names_are_refused(tmp_path: Path) -> None:
    f = write(tmp_path, '[[clouds]]\nname = "a"\n\n[[clouds]]\nname = "a"\n')
    msg = error_of(f)
    assert str(f) in msg and "duplicate name 'a'" in msg and "clouds" in msg


def test_duplicate_flavor_and_image_names_are_refused(tmp_path: Path) -> None:
    flav = '[[flavors]]\nname = "x"\nvcpus = 1\nram_mb = 1\n'
    assert "duplicate name 'x'" in error_of(write(tmp_path, flav * 2))
    img = '[[images]]\nname = "y"\n'
    assert "duplicate name 'y'" in error_of(write(tmp_path, img * 2, "i.toml"))


def test_image_map_naming_an_unknown_cloud_names_the_line(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        "[[images]]\n"  # 1
        'name = "ubuntu"\n'  # 2
        "[images.map]\n"  # 3
        'nope = "ami-1"\n',  # 4
    )
    msg = error_of(f)
    assert f"{f}:4:" in msg


def test_image_map_naming_an_unknown_cloud_is_refused(tmp_path: Path) -> None:
    f = write(tmp_path, '[[images]]\nname = "ubuntu"\n[images.map]\nnope = "ami-1"\n')
    msg = error_of(f)
    assert str(f) in msg and "'ubuntu'" in msg and "unknown cloud 'nope'" in msg


def test_image_map_may_name_a_default_cloud(tmp_path: Path) -> None:
    f = write(tmp_path, '[[images]]\nname = "u"\n[images.map]\nprivate = "img-1"\n')
    assert load_settings(f, env={}).images[0].map == {"private": "img-1"}


def test_bad_env_value_is_not_blamed_on_the_file(tmp_path: Path) -> None:
    f = write(tmp_path, "[scheduler]\nburst_threshold = 0.7\n")
    msg = error_of(f, env={"CANOPY_SCHEDULER__BURST_THRESHOLD": "2"})
    assert "CANOPY_SCHEDULER__BURST_THRESHOLD" in msg
    assert f"{f}:2:" not in msg


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    f = tmp_path / "latin1.toml"
    f.write_bytes(b'data_dir = "/srv/caf\xe9"\n')
    msg = error_of(f)
    assert str(f) in msg


def test_a_heartbeat_that_does_not_fit_well_inside_the_lease_is_refused(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        'data_dir = "/x"\n'  # 1
        "[controllers]\n"  # 2
        "lease_seconds = 6\n"  # 3
        "heartbeat_seconds = 3\n",  # 4
    )
    msg = error_of(f)
    assert f"{f}:2:" in msg  # the table the two settings live in
    assert "heartbeat_seconds (3) must be at most a third of lease_seconds (6)" in msg
    # The same from the environment.
    env = {"CANOPY_CONTROLLERS__HEARTBEAT_SECONDS": "20"}
    assert "must be at most a third of lease_seconds (10)" in error_of(None, env)


def test_leases_are_short_and_renewed_a_lease_may_be_shorter_than_a_call(
    tmp_path: Path,
) -> None:
    c = load_settings(None, env={}).controllers
    assert c.lease_seconds == 10 and c.heartbeat == pytest.approx(10 / 3)
    f = write(tmp_path, "[controllers]\nlease_seconds = 3\ncall_timeout_seconds = 30\n")
    c = load_settings(f, env={}).controllers
    assert (c.lease_seconds, c.heartbeat, c.call_timeout_seconds) == (3, 1, 30)


def test_a_forwarded_allow_ips_entry_that_is_no_address_names_its_line(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        "[api]\n"  # 1
        'host = "0.0.0.0"\n'  # 2
        'forwarded_allow_ips = ["10.0.0.5", "proxy.example"]\n',  # 3
    )
    msg = error_of(f)
    assert f"{f}:3:" in msg and "api.forwarded_allow_ips" in msg
    assert "'proxy.example' is not an IP address or CIDR network" in msg


def test_a_negative_user_failure_attempts_names_its_line(tmp_path: Path) -> None:
    f = write(tmp_path, "[identity]\nuser_failure_attempts = -1\n")
    msg = error_of(f)
    assert f"{f}:2:" in msg and "identity.user_failure_attempts" in msg
