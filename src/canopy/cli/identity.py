"""`canopy project` and `canopy user`: identity straight on the database, like
keystone-manage, for the first users and for when no admin token is at hand."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.bootstrap import open_database, open_existing
from canopy.cli.common import ConfigOpt, DataDirOpt, console, fail, run, settings_from
from canopy.domain.clock import SystemClock
from canopy.domain.errors import NotFound
from canopy.services import identity
from canopy.services.passwords import hash_password
from canopy.store.db import Database
from canopy.store.models import Project, RoleAssignment, User

project_app = typer.Typer(help="Projects (Keystone's, in domain Default).", no_args_is_help=True)
user_app = typer.Typer(help="Users and their roles on projects.", no_args_is_help=True)


def _opener(
    config: Path | None, data_dir: Path | None, *, writes: bool = True
) -> Callable[[], Awaitable[Database]]:
    """Load the settings now (a bad config fails before anything runs); open the database
    when called. A command that writes migrates it first (never reconciling the config);
    one that only reads opens it as it is."""
    settings = settings_from(config, data_dir)
    if writes:
        return lambda: open_database(settings)
    return lambda: open_existing(settings)


@project_app.command("create")
def project_create(
    name: Annotated[str, typer.Argument(help="project name, unique")],
    description: Annotated[str, typer.Option(help="free text")] = "",
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create a project."""

    open_db = _opener(config, data_dir)

    async def _go() -> Project:
        db = await open_db()
        try:
            async with db.session() as s:
                return await identity.create_project(
                    s, name, SystemClock().now(), description=description
                )
        finally:
            await db.dispose()

    p = run(_go())
    console.print(f"created project [bold]{escape(p.name)}[/] id {p.id}")


@project_app.command("list")
def project_list(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Every project, with how many users hold a role on it."""

    open_db = _opener(config, data_dir, writes=False)

    async def _go() -> tuple[list[Project], dict[str, int]]:
        db = await open_db()
        try:
            async with db.read() as s:
                projects = await identity.list_projects(s)
                members: dict[str, set[str]] = {}
                for a in await identity.list_assignments(s):
                    members.setdefault(a.project_id, set()).add(a.user_id)
                return projects, {k: len(v) for k, v in members.items()}
        finally:
            await db.dispose()

    projects, counts = run(_go())
    t = Table(title="Projects")
    for col in ("name", "id", "enabled", "users", "description"):
        t.add_column(col, justify="right" if col == "users" else "left")
    for p in sorted(projects, key=lambda p: p.name):
        t.add_row(
            escape(p.name),
            p.id,
            "yes" if p.enabled else "[dim]no[/]",
            str(counts.get(p.id, 0)),
            escape(p.description),
        )
    console.print(t)


def _interactive() -> bool:
    """Whether someone can be asked for a password (stdin is a terminal)."""
    return sys.stdin.isatty()


PasswordOpt = Annotated[
    str | None,
    typer.Option(help="the password; without it you are asked, or one is generated"),
]


@user_app.command("create")
def user_create(
    name: Annotated[str, typer.Argument(help="user name, unique")],
    project: Annotated[str, typer.Option(help="project (name or id) to give the role on")],
    role: Annotated[str, typer.Option(help="admin, member or reader")] = "member",
    password: PasswordOpt = None,
    generate_password: Annotated[
        bool, typer.Option("--generate-password", help="generate one and print it once")
    ] = False,
    email: Annotated[str | None, typer.Option(help="e-mail address")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create a user with a role on a project (the project becomes their default)."""
    if role not in identity.ROLES:
        fail(f"no role named {role!r}", f"the roles are {', '.join(identity.ROLES)}")
    if password is not None and generate_password:
        fail("give --password or --generate-password, not both")
    if password == "":
        fail("the password must not be empty")
    generated = False
    if password is None:
        if generate_password or not _interactive():
            password, generated = secrets.token_urlsafe(18), True
        else:
            password = typer.prompt(
                f"Password for {name}", hide_input=True, confirmation_prompt=True
            )
            if not password:
                fail("the password must not be empty")

    open_db = _opener(config, data_dir)
    password_hash = hash_password(password)  # before the transaction: it takes ~30 ms

    async def _go() -> tuple[User, Project]:
        db = await open_db()
        try:
            async with db.session() as s:
                p = await _find_project(s, project)
                now = SystemClock().now()
                u = await identity.create_user(
                    s, name, password_hash, now, default_project_id=p.id, email=email
                )
                await identity.grant(s, u.id, p.id, role)
                return u, p
        finally:
            await db.dispose()

    u, p = run(_go())
    console.print(
        f"created user [bold]{escape(u.name)}[/] id {u.id} with role {role} on project "
        f"{escape(p.name)}"
    )
    if generated:
        console.print(f"password [bold]{password}[/]  (shown only now; it is stored hashed)")


async def _find_project(s: AsyncSession, ref: str) -> Project:
    try:
        return await identity.find_project(s, id=ref)
    except NotFound:
        pass
    try:
        return await identity.find_project(s, name=ref)
    except NotFound:
        raise NotFound(
            f"no project named {ref!r}; `canopy project list` shows them, "
            "`canopy project create` makes one"
        ) from None


@user_app.command("list")
def user_list(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Every user with their roles."""

    open_db = _opener(config, data_dir, writes=False)

    async def _go() -> tuple[list[User], list[RoleAssignment], dict[str, str]]:
        db = await open_db()
        try:
            async with db.read() as s:
                users = await identity.list_users(s)
                grants = await identity.list_assignments(s)
                names = {p.id: p.name for p in await identity.list_projects(s)}
                return users, grants, names
        finally:
            await db.dispose()

    users, grants, project_names = run(_go())
    roles: dict[str, list[str]] = {}
    for a in grants:
        where = project_names.get(a.project_id, a.project_id)
        roles.setdefault(a.user_id, []).append(f"{a.role} on {where}")
    t = Table(title="Users")
    for col in ("name", "id", "enabled", "roles", "email"):
        t.add_column(col)
    for u in sorted(users, key=lambda u: u.name):
        t.add_row(
            escape(u.name),
            u.id,
            "yes" if u.enabled else "[dim]no[/]",
            escape(", ".join(roles.get(u.id, [])) or "-"),
            escape(u.email or ""),
        )
    console.print(t)
