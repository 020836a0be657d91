"""Loading settings: the embedded defaults, a full file, the environment and overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from canopy.config import DEFAULT_DATA_DIR, Settings, load_settings
from canopy.domain.errors import Unsupported
from canopy.providers import registry
from canopy.providers.registry import check_drivers

# The example from DESIGN.md's Configuration section, verbatim apart from data_dir.
DESIGN_TOML = """\
data_dir = "{data_dir}"      # SQLite files, keys, sim state

[database]
url = "sqlite+aiosqlite:///{{data_dir}}/canopy.db"   # or postgresql+asyncpg://...

[api]
host = "127.0.0.1"
port = 8774

[scheduler]
burst_threshold = 0.8        # utilisation of a tier above which new servers go to the next tier
max_attempts = 3             # placements tried before a server goes to ERROR
blocklist_seconds = 300      # how long a cloud that reported no capacity is skipped
max_spend_per_hour = 50.0    # cap on the summed hourly price of servers in tiers >= 1

[[clouds]]
name = "private"             # also the availability zone's name
driver = "sim"
tier = 0
[clouds.sim]
hosts = 4
host_vcpus = 16
host_ram_mb = 65536
boot_seconds = 2.0
api_latency_ms = 20
price_per_vcpu_hour = 0.0

[[clouds]]
name = "public"
driver = "sim"
tier = 1
[clouds.sim]
hosts = 1000
price_per_vcpu_hour = 0.048

[[clouds]]
name = "aws-us-east-1"
driver = "ec2"
tier = 1
[clouds.ec2]
region = "us-east-1"
endpoint_url = "http://127.0.0.1:5000"   # only for emulators
credentials = "env"                       # or a profile; never inline in a shared file

[[flavors]]
name = "m1.small"
vcpus = 1
ram_mb = 2048
disk_gb = 20

[[images]]
name = "ubuntu-24.04"
[images.map]                      # cloud name -> remote image id; sim clouds accept any image
aws-us-east-1 = "ami-0123456789abcdef0"
"""


def write(tmp_path: Path, text: str, name: str = "canopy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# Defaults ---------------------------------------------------------------------------


def test_no_file_gives_the_embedded_default() -> None:
    s = load_settings(None, env={})
    assert [(c.name, c.driver, c.tier) for c in s.clouds] == [
        ("private", "sim", 0),
        ("public", "sim", 1),
    ]
    private, public = s.clouds
    assert private.sim is not None and public.sim is not None
    assert private.sim.price_per_vcpu_hour == 0.0  # private is free
    assert public.sim.price_per_vcpu_hour > 0.0  # public is priced
    # "small" private, "large" public
    assert private.sim.hosts * private.sim.host_vcpus < public.sim.hosts * public.sim.host_vcpus
    assert [f.name for f in s.flavors] == [
        "m1.tiny",
        "m1.small",
        "m1.medium",
        "m1.large",
        "m1.xlarge",
    ]
    vcpus = [f.vcpus for f in s.flavors]
    assert vcpus == sorted(vcpus)
    assert [i.name for i in s.images] == ["cirros", "ubuntu-24.04"]
    assert all(i.map == {} for i in s.images)  # available on every sim cloud
    assert s.data_dir == DEFAULT_DATA_DIR
    assert s.database.url == "sqlite+aiosqlite:///{data_dir}/canopy.db"
    assert s.api.host == "127.0.0.1" and s.api.port == 8774
    assert s.scheduler.burst_threshold == 0.8
    assert s.scheduler.max_attempts == 3
    assert s.scheduler.blocklist_seconds == 300
    assert s.scheduler.max_spend_per_hour == 50.0
    check_drivers(s)  # the embedded default needs no account anywhere


def test_the_default_clouds_are_fresh_per_load() -> None:
    a = load_settings(None, env={})
    b = load_settings(None, env={})
    assert a.clouds[0] is not b.clouds[0]
    assert a.flavors[0] is not b.flavors[0]


def test_empty_file_is_the_default(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, "# nothing here\n"), env={})
    assert [c.name for c in s.clouds] == ["private", "public"]
    assert len(s.flavors) == 5 and len(s.images) == 2


def test_each_list_defaults_on_its_own(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        '[[clouds]]\nname = "only"\n',
    )
    s = load_settings(f, env={})
    assert [c.name for c in s.clouds] == ["only"]
    only = s.clouds[0]
    assert only.driver == "sim" and only.tier == 0 and only.enabled
    assert only.sim is not None  # a sim cloud gets a default [clouds.sim]
    assert s.flavors[0].name == "m1.tiny"
    assert [i.name for i in s.images] == ["cirros", "ubuntu-24.04"]

    f2 = write(tmp_path, '[[flavors]]\nname = "big"\nvcpus = 64\nram_mb = 1024\n', "f2.toml")
    s2 = load_settings(f2, env={})
    assert [f.name for f in s2.flavors] == ["big"]
    assert s2.flavors[0].disk_gb == 0
    assert [c.name for c in s2.clouds] == ["private", "public"]


# A full file -------------------------------------------------------------------------


def test_the_design_example_loads(tmp_path: Path) -> None:
    f = write(tmp_path, DESIGN_TOML.format(data_dir=tmp_path / "data"))
    s = load_settings(f, env={})
    assert s.data_path == tmp_path / "data"
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path / 'data'}/canopy.db"
    assert [(c.name, c.driver, c.tier) for c in s.clouds] == [
        ("private", "sim", 0),
        ("public", "sim", 1),
        ("aws-us-east-1", "ec2", 1),
    ]
    private = s.cloud("private")
    assert private.sim is not None
    assert (private.sim.hosts, private.sim.host_vcpus, private.sim.host_ram_mb) == (4, 16, 65536)
    assert private.sim.api_latency_ms == 20.0
    public = s.cloud("public")
    assert public.sim is not None
    assert public.sim.hosts == 1000 and public.sim.price_per_vcpu_hour == pytest.approx(0.048)
    assert public.sim.host_vcpus == 16  # unset keys keep their defaults
    aws = s.cloud("aws-us-east-1")
    assert aws.sim is None and aws.ec2 is not None
    assert aws.ec2.region == "us-east-1"
    assert aws.ec2.endpoint_url == "http://127.0.0.1:5000"
    assert aws.ec2.credentials == "env"
    assert [(f.name, f.vcpus, f.ram_mb, f.disk_gb) for f in s.flavors] == [
        ("m1.small", 1, 2048, 20)
    ]
    assert [(i.name, i.map) for i in s.images] == [
        ("ubuntu-24.04", {"aws-us-east-1": "ami-0123456789abcdef0"})
    ]
    with pytest.raises(KeyError):
        s.cloud("nope")


def test_registry_builds_every_driver_and_refuses_a_planned_one_naming_the_cloud(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = load_settings(write(tmp_path, DESIGN_TOML.format(data_dir=tmp_path)), env={})
    check_drivers(s)  # sim, ec2 and openstack all ship
    monkeypatch.setitem(registry.PLANNED, "openstack", "the openstack driver is not here")
    child = '[[clouds]]\nname = "child"\ndriver = "openstack"\n[clouds.openstack]\ncloud = "c"\n'
    s = load_settings(write(tmp_path, child), env={})
    with pytest.raises(Unsupported) as err:
        check_drivers(s)
    assert "child" in str(err.value)
    assert err.value.cloud == "child"


def test_config_path_from_canopy_config_env(tmp_path: Path) -> None:
    f = write(tmp_path, 'data_dir = "/srv/canopy"\n')
    s = load_settings(None, env={"CANOPY_CONFIG": str(f)})
    assert s.data_dir == "/srv/canopy"


# Environment and overrides -----------------------------------------------------------


def test_canopy_database_url(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://canopy:pw@db.example:5432/canopy"
    s = load_settings(None, env={"CANOPY_DATABASE_URL": url})
    assert s.database.url == url
    assert s.database_url == url


def test_nested_database_url_beats_the_flat_alias() -> None:
    s = load_settings(
        None, env={"CANOPY_DATABASE_URL": "sqlite+aiosqlite:///a", "CANOPY_DATABASE__URL": "x"}
    )
    assert s.database.url == "x"


def test_canopy_data_dir_and_substitution(tmp_path: Path) -> None:
    s = load_settings(None, env={"CANOPY_DATA_DIR": str(tmp_path)})
    assert s.data_dir == str(tmp_path)
    assert s.data_path == tmp_path
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path}/canopy.db"
    assert "{data_dir}" not in s.database_url


def test_data_dir_tilde_is_expanded_in_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/op")
    s = load_settings(None, env={})
    assert s.data_path == Path("/home/op/.local/share/canopy")
    assert s.database_url == "sqlite+aiosqlite:////home/op/.local/share/canopy/canopy.db"


def test_substitution_in_a_custom_url(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        f'data_dir = "{tmp_path}"\n[database]\nurl = "sqlite+aiosqlite:///{{data_dir}}/x/y.db"\n',
    )
    assert load_settings(f, env={}).database_url == f"sqlite+aiosqlite:///{tmp_path}/x/y.db"


def test_nested_env_var() -> None:
    s = load_settings(None, env={"CANOPY_SCHEDULER__BURST_THRESHOLD": "0.55"})
    assert s.scheduler.burst_threshold == pytest.approx(0.55)
    assert s.scheduler.max_attempts == 3


def test_env_beats_file_and_merges_with_it(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        'data_dir = "/from/file"\n'
        "[scheduler]\nburst_threshold = 0.7\nmax_attempts = 5\n"
        "[api]\nport = 9000\n",
    )
    s = load_settings(
        f,
        env={
            "CANOPY_SCHEDULER__BURST_THRESHOLD": "0.5",
            "CANOPY_DATA_DIR": "/from/env",
            "CANOPY_API_PORT": "9999",
        },
    )
    assert s.scheduler.burst_threshold == pytest.approx(0.5)  # env wins
    assert s.scheduler.max_attempts == 5  # the rest of the file's table survives
    assert s.data_dir == "/from/env"
    assert s.api.port == 9999
    assert s.database_url == "sqlite+aiosqlite:////from/env/canopy.db"


def test_unrelated_env_vars_are_ignored() -> None:
    s = load_settings(None, env={"HOME": "/x", "DATABASE_URL": "nope", "CANOPYX": "1"})
    assert s.database.url == "sqlite+aiosqlite:///{data_dir}/canopy.db"


def test_env_mapping_is_isolated_from_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CANOPY_CONFIG", raising=False)
    monkeypatch.setenv("CANOPY_DATA_DIR", "/from/os/environ")
    assert load_settings(None, env={}).data_dir == DEFAULT_DATA_DIR
    assert load_settings(None).data_dir == "/from/os/environ"


def test_overrides_merge_into_the_file(tmp_path: Path) -> None:
    f = write(tmp_path, "[scheduler]\nmax_attempts = 7\n")
    s = load_settings(f, env={}, overrides={"scheduler": {"burst_threshold": 0.6}})
    assert s.scheduler.max_attempts == 7
    assert s.scheduler.burst_threshold == pytest.approx(0.6)


def test_public_url() -> None:
    s = load_settings(None, env={"CANOPY_API_PORT": "1234"})
    assert s.public_url == "http://127.0.0.1:1234"
    s = load_settings(None, env={}, overrides={"api": {"public_url": "https://c.example/"}})
    assert s.public_url == "https://c.example"


def test_settings_is_not_a_global() -> None:
    a = load_settings(None, env={"CANOPY_DATA_DIR": "/a"})
    b = load_settings(None, env={"CANOPY_DATA_DIR": "/b"})
    assert isinstance(a, Settings) and (a.data_dir, b.data_dir) == ("/a", "/b")


def test_proxy_headers_are_trusted_from_nobody_by_default() -> None:
    s = load_settings(None, env={})
    assert s.api.forwarded_allow_ips == []
    assert s.identity.user_failure_attempts == 0  # per-user lockout off, as in Keystone
    assert s.identity.lockout_failure_attempts == 5  # per (user, address)
    assert s.identity.address_failure_attempts == 50


def test_forwarded_allow_ips_takes_addresses_and_networks(tmp_path: Path) -> None:
    f = tmp_path / "canopy.toml"
    f.write_text(
        '[api]\nforwarded_allow_ips = ["10.0.0.5", "10.1.0.0/16", "::1", "fd00::/8"]\n',
        encoding="utf-8",
    )
    s = load_settings(f, env={})
    assert s.api.forwarded_allow_ips == ["10.0.0.5/32", "10.1.0.0/16", "::1/128", "fd00::/8"]
    env = {"CANOPY_API__FORWARDED_ALLOW_IPS": '["192.0.2.1"]'}
    assert load_settings(None, env=env).api.forwarded_allow_ips == ["192.0.2.1/32"]
