"""`canopy project` and `canopy user`: identity on the database, like keystone-manage."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner, Result

from canopy import bootstrap
from canopy.bootstrap import AdminBootstrap, ensure_admin, open_database, write_clouds_yaml
from canopy.cli.main import app
from canopy.config import load_settings
from canopy.domain.clock import SystemClock
from canopy.services import identity
from canopy.services.passwords import verify_password
from canopy.store.db import Database


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("CANOPY_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("COLUMNS", "250")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def canopy(data: Path, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, [*args, "--data-dir", str(data)], input=stdin)


def check_password(data: Path, user: str, password: str) -> bool:
    async def _go() -> bool:
        db = Database(f"sqlite+aiosqlite:///{data / 'canopy.db'}")
        try:
            async with db.read() as s:
                u = await identity.find_user(s, name=user)
                return verify_password(u.password_hash, password)
        finally:
            await db.dispose()

    return asyncio.run(_go())


def test_project_create_and_list(data: Path) -> None:
    r = canopy(data, "project", "create", "team-a", "--description", "the A team")
    assert r.exit_code == 0, r.output
    assert "created project team-a" in r.output
    r = canopy(data, "project", "list")
    assert r.exit_code == 0, r.output
    assert "team-a" in r.output and "the A team" in r.output


def test_a_duplicate_project_is_a_clear_error(data: Path) -> None:
    assert canopy(data, "project", "create", "p").exit_code == 0
    r = canopy(data, "project", "create", "p")
    assert r.exit_code == 2
    assert "duplicate name p" in r.output


def test_user_create_with_a_password_and_a_role(data: Path) -> None:
    canopy(data, "project", "create", "p1")
    r = canopy(
        data, "user", "create", "ann", "--project", "p1", "--role", "admin", "--password", "pw1"
    )
    assert r.exit_code == 0, r.output
    assert "created user ann" in r.output and "admin on project p1" in r.output
    assert "pw1" not in r.output
    assert check_password(data, "ann", "pw1")
    r = canopy(data, "user", "list")
    assert r.exit_code == 0, r.output
    assert "ann" in r.output and "admin on p1" in r.output


def test_user_create_generates_and_prints_a_password(data: Path) -> None:
    canopy(data, "project", "create", "p1")
    r = canopy(data, "user", "create", "ben", "--project", "p1", "--generate-password")
    assert r.exit_code == 0, r.output
    line = next(x for x in r.output.splitlines() if x.startswith("password "))
    password = line.split()[1]
    assert len(password) >= 16 and "shown only now" in line
    assert check_password(data, "ben", password)


def test_user_create_without_a_terminal_generates_one_too(data: Path) -> None:
    canopy(data, "project", "create", "p1")
    r = canopy(data, "user", "create", "cal", "--project", "p1")
    assert r.exit_code == 0, r.output
    assert "password " in r.output and "member on project p1" in r.output


def test_user_create_asks_for_the_password_on_a_terminal(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canopy(data, "project", "create", "p1")
    monkeypatch.setattr("canopy.cli.identity._interactive", lambda: True)
    r = canopy(data, "user", "create", "dee", "--project", "p1", stdin="s3cret\ns3cret\n")
    assert r.exit_code == 0, r.output
    assert check_password(data, "dee", "s3cret")
    assert "password " not in r.output.replace("Password for", "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--project", "nope", "--password", "x"), "no project named 'nope'"),
        (("--project", "p1", "--role", "boss", "--password", "x"), "no role named 'boss'"),
        (("--project", "p1", "--password", ""), "must not be empty"),
        (("--project", "p1", "--password", "x", "--generate-password"), "not both"),
    ],
)
def test_user_create_errors_exit_2(data: Path, args: tuple[str, ...], message: str) -> None:
    canopy(data, "project", "create", "p1")
    r = canopy(data, "user", "create", "eve", *args)
    assert r.exit_code == 2, r.output
    assert message in r.output


def test_a_duplicate_user_is_a_clear_error(data: Path) -> None:
    canopy(data, "project", "create", "p1")
    assert (
        canopy(data, "user", "create", "fay", "--project", "p1", "--password", "x").exit_code == 0
    )
    r = canopy(data, "user", "create", "fay", "--project", "p1", "--password", "y")
    assert r.exit_code == 2 and "duplicate name fay" in r.output


def test_the_help_lists_project_and_user(data: Path) -> None:
    r = CliRunner().invoke(app, ["--help"])
    assert "project" in r.output and "user" in r.output


# The first admin, as `canopy up` makes it ------------------------------------------------


async def _bootstrap(data: Path, password: str | None) -> AdminBootstrap:
    settings = load_settings(env={}, overrides={"data_dir": str(data)})
    db = await open_database(settings)
    try:
        return await ensure_admin(db, SystemClock(), password)
    finally:
        await db.dispose()


def test_the_first_start_generates_a_password_and_later_starts_keep_it(data: Path) -> None:
    first = asyncio.run(_bootstrap(data, None))
    assert first.created and first.generated and first.password
    assert check_password(data, "admin", first.password)
    again = asyncio.run(_bootstrap(data, None))
    assert not again.created and not again.generated and not again.reset
    assert again.password is None  # not known any more: never shown twice
    assert again.user_id == first.user_id and again.project_id == first.project_id
    assert check_password(data, "admin", first.password)


def test_the_environment_password_is_authoritative(data: Path) -> None:
    first = asyncio.run(_bootstrap(data, "one"))
    assert first.created and not first.generated and first.password == "one"
    same = asyncio.run(_bootstrap(data, "one"))
    assert not same.reset
    changed = asyncio.run(_bootstrap(data, "two"))
    assert changed.reset and changed.password == "two"
    assert check_password(data, "admin", "two") and not check_password(data, "admin", "one")


def test_the_admin_role_is_restored_on_every_start(data: Path) -> None:
    asyncio.run(_bootstrap(data, "pw"))
    r = canopy(data, "user", "list")
    assert "admin on admin" in r.output


def test_clouds_yaml_is_private_and_complete(data: Path) -> None:
    settings = load_settings(env={}, overrides={"data_dir": str(data), "api": {"port": 9999}})
    path = write_clouds_yaml(settings, 'p"w\\d')
    assert path == data / "clouds.yaml"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    import yaml  # openstacksdk's dependency, so present wherever the clients are

    cloud = yaml.safe_load(path.read_text())["clouds"]["canopy"]
    assert cloud["auth"] == {
        "auth_url": "http://127.0.0.1:9999/identity",
        "username": "admin",
        "password": 'p"w\\d',
        "project_name": "admin",
        "user_domain_name": "Default",
        "project_domain_name": "Default",
    }
    assert cloud["region_name"] == "RegionOne" and cloud["identity_api_version"] == 3
    # rewriting keeps it private even if someone loosened the mode
    os.chmod(path, 0o644)
    write_clouds_yaml(settings, "other")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_the_admin_bootstrap_hashes_in_a_thread_with_no_write_transaction_open(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Argon2 never runs on the event loop nor under the database's write lock, at start
    either: a new admin, a changed password and an unchanged one."""
    seen: list[tuple[str, bool, int]] = []
    open_writes = 0

    def watched(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            on_loop = threading.current_thread() is threading.main_thread()
            seen.append((name, on_loop, open_writes))
            return fn(*args)

        return run

    monkeypatch.setattr(bootstrap, "hash_password", watched("hash", bootstrap.hash_password))
    monkeypatch.setattr(bootstrap, "verify_password", watched("verify", bootstrap.verify_password))

    async def run(password: str | None) -> None:
        nonlocal open_writes
        settings = load_settings(env={}, overrides={"data_dir": str(data)})
        db = await open_database(settings)
        session = db.session

        @contextlib.asynccontextmanager
        async def counted() -> AsyncIterator[AsyncSession]:
            nonlocal open_writes
            async with session() as s:
                open_writes += 1
                try:
                    yield s
                finally:
                    open_writes -= 1

        monkeypatch.setattr(db, "session", counted)
        try:
            await ensure_admin(db, SystemClock(), password)
        finally:
            await db.dispose()

    asyncio.run(run("first"))  # created: one hash
    asyncio.run(run("second"))  # changed: a check, then a hash
    asyncio.run(run("second"))  # unchanged: a check only
    assert seen == [
        ("hash", False, 0),
        ("verify", False, 0),
        ("hash", False, 0),
        ("verify", False, 0),
    ]
