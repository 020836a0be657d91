"""`canopy subscription`: an operator's subscriptions, straight into the database."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from canopy.cli.main import app


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("CANOPY_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("COLUMNS", "250")


def canopy(data: Path, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--data-dir", str(data)])


def test_create_list_show_delete(tmp_path: Path) -> None:
    data = tmp_path / "data"
    r = canopy(data, "project", "create", "team-a")
    assert r.exit_code == 0, r.output
    r = canopy(
        data, "subscription", "create", "https://hooks.example.com/a", "-e", "lease.*",
        "--project", "team-a",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    m = re.search(r"\(([0-9a-f-]{36})\)", r.output)
    secret = re.search(r"keep it\): (\S+)", r.output)
    assert m and secret, r.output
    sid = m.group(1)
    r = canopy(data, "subscription", "list")
    assert r.exit_code == 0 and sid in r.output and "lease.*" in r.output
    assert secret.group(1) not in r.output
    r = canopy(data, "subscription", "show", sid, "--dead")
    assert r.exit_code == 0 and "hooks.example.com" in r.output
    assert secret.group(1) not in r.output
    r = canopy(data, "subscription", "replay", sid)
    assert r.exit_code == 0 and "replaying 0" in r.output
    r = canopy(data, "subscription", "delete", sid)
    assert r.exit_code == 0
    r = canopy(data, "subscription", "show", sid)
    assert r.exit_code == 2 and "could not be found" in r.output


def test_a_bad_url_is_refused_with_the_reason(tmp_path: Path) -> None:
    r = canopy(tmp_path / "data", "subscription", "create", "http://169.254.169.254/")
    assert r.exit_code == 2
    assert "link-local" in r.output
