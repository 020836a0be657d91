"""`canopy cloud add/set/disable/enable/remove`: clouds at run time, from the command line."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from canopy.cli.main import app
from canopy.credentials import vault
from canopy.store.db import Database
from canopy.store.models import Cloud

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("CANOPY_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("COLUMNS", "250")


def canopy(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=stdin)


def row(data: Path, name: str) -> Cloud | None:
    async def go() -> Cloud | None:
        db = Database(f"sqlite+aiosqlite:///{data / 'canopy.db'}")
        try:
            async with db.read() as s:
                return (
                    await s.execute(select(Cloud).where(Cloud.name == name))
                ).scalar_one_or_none()
        finally:
            await db.dispose()

    return asyncio.run(go())


@pytest.fixture
def data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    r = canopy("db", "upgrade", "--data-dir", str(data))
    assert r.exit_code == 0, r.output
    return data


def test_add_show_set_disable_enable_remove(data: Path) -> None:
    d = ["--data-dir", str(data)]
    r = canopy(
        "cloud", "add", "extra", "--driver", "sim", "--tier", "2",
        "--option", "hosts=3", "--option", "host_vcpus=4", "--flavor-map", "m1.tiny=tiny", *d,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "cloud extra added (driver sim, tier 2)" in r.output
    c = row(data, "extra")
    assert c is not None and c.source == "api" and c.tier == 2 and c.enabled
    assert c.driver_settings is not None and c.driver_settings["sim"]["hosts"] == 3
    assert c.driver_settings["flavor_map"] == {"m1.tiny": "tiny"}

    r = canopy("cloud", "show", "extra", *d)
    assert r.exit_code == 0, r.output
    assert "added at run time" in r.output and "credentials" in r.output

    r = canopy("cloud", "set", "extra", "--option", "hosts=5", "--tier", "3", *d)
    assert r.exit_code == 0, r.output
    c = row(data, "extra")
    assert c is not None and c.tier == 3 and c.driver_settings is not None
    assert c.driver_settings["sim"]["hosts"] == 5 and c.driver_settings["sim"]["host_vcpus"] == 4
    r = canopy("cloud", "set", "extra", "--unset", "host_vcpus", *d)
    c = row(data, "extra")
    assert c is not None and c.driver_settings is not None
    assert c.driver_settings["sim"]["host_vcpus"] == 16  # the default again

    assert canopy("cloud", "disable", "extra", *d).exit_code == 0
    assert (c := row(data, "extra")) is not None and not c.enabled
    r = canopy("cloud", "list", *d)
    assert "disabled" in next(line for line in r.output.splitlines() if " extra " in line)
    assert canopy("cloud", "enable", "extra", *d).exit_code == 0
    assert (c := row(data, "extra")) is not None and c.enabled

    r = canopy("cloud", "remove", "extra", *d)
    assert r.exit_code == 0, r.output
    c = row(data, "extra")
    assert c is not None and c.removed_at is not None and not c.enabled
    r = canopy("cloud", "list", *d)
    assert "removed" in next(line for line in r.output.splitlines() if " extra " in line)


def test_bad_options_name_the_field_and_change_nothing(data: Path) -> None:
    d = ["--data-dir", str(data)]
    r = canopy("cloud", "add", "aws-2", "--driver", "ec2", "--option", "region=nowhere", *d)
    assert r.exit_code == 2
    assert "options.region" in r.output
    assert row(data, "aws-2") is None
    r = canopy("cloud", "add", "x", "--driver", "sim", "--option", "novalue", *d)
    assert r.exit_code == 2 and "KEY=VALUE" in r.output


def test_config_clouds_are_edited_in_the_file(data: Path) -> None:
    d = ["--data-dir", str(data)]
    for args in (("set", "private", "--tier", "4"), ("disable", "private"), ("remove", "public")):
        r = canopy("cloud", *args, *d)
        assert r.exit_code == 2
        assert "config file" in r.output.replace("\n", " ")
    c = row(data, "private")
    assert c is not None and c.enabled and c.tier == 0 and c.removed_at is None


def test_credentials_come_from_a_file_or_stdin_and_are_never_printed(
    data: Path, tmp_path: Path
) -> None:
    d = ["--data-dir", str(data)]
    creds = tmp_path / "aws.json"
    creds.write_text(json.dumps({"access_key_id": KEY_ID, "secret_access_key": SECRET}))
    r = canopy(
        "cloud", "add", "aws-2", "--driver", "ec2", "--tier", "1",
        "--option", "region=us-east-1", "--option", 'zones=["us-east-1a"]',
        "--credentials-file", str(creds), *d,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "with stored credentials" in r.output
    c = row(data, "aws-2")
    assert c is not None and c.credentials is not None
    assert c.driver_settings is not None and c.driver_settings["ec2"]["zones"] == ["us-east-1a"]
    # Sealed with the data dir's key: it opens to what was given, and only with that key.
    assert vault(None, data).open(c.credentials)["secret_access_key"] == SECRET
    r = canopy("cloud", "show", "aws-2", *d)
    assert "set (write-only" in r.output
    assert SECRET not in r.output and KEY_ID not in r.output

    # New keys on standard input (TOML works too); rejected ones are not echoed.
    toml = f'access_key_id = "{KEY_ID}"\nsecret_access_key = "{SECRET}-2"\n'
    r = canopy("cloud", "set", "aws-2", "--credentials-file", "-", *d, stdin=toml)
    assert r.exit_code == 0, r.output
    c = row(data, "aws-2")
    assert c is not None and c.credentials is not None
    assert vault(None, data).open(c.credentials)["secret_access_key"] == SECRET + "-2"
    bad = f'{{"access_key_id": "{SECRET}", "secret_access_key": "{SECRET}"}}'
    r = canopy("cloud", "set", "aws-2", "--credentials-file", "-", *d, stdin=bad)
    assert r.exit_code == 2 and "credentials.access_key_id" in r.output
    assert SECRET not in r.output
    r = canopy("cloud", "set", "aws-2", "--clear-credentials", *d)
    assert r.exit_code == 0, r.output
    c = row(data, "aws-2")
    assert c is not None and c.credentials is None
    assert c.driver_settings is not None and c.driver_settings["ec2"]["credentials"] == "env"


def test_a_config_file_cannot_say_stored(tmp_path: Path) -> None:
    config = tmp_path / "canopy.toml"
    config.write_text(
        '[[clouds]]\nname = "aws"\ndriver = "ec2"\n[clouds.ec2]\nregion = "us-east-1"\n'
        'credentials = "stored"\n'
    )
    r = canopy("db", "upgrade", "--config", str(config), "--data-dir", str(tmp_path / "d"))
    assert r.exit_code == 2
    assert "only for clouds added at run time" in r.output.replace("\n", " ")
