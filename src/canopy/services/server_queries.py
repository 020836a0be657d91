"""Reading servers: one page of a filtered, sorted server list, in one indexed query."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Result, Row
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.context import RequestContext
from canopy.domain.errors import InvalidRequest
from canopy.services import regex
from canopy.services.server_scope import ServerScope, _could_be_id
from canopy.services.server_statements import (
    TRIGRAM_ESTIMATE,
    TRIGRAM_PARAM,
    TRIGRAMS_INSTALLED,
    Shape,
    marker_statement,
    shape_of,
    statement,
    with_trigrams,
)
from canopy.services.server_walk import SAMPLE_PAGES, walk_estimate, walkable, walked
from canopy.store.models import Server
from canopy.store.plain_reads import Rows, Run, Unsupported
from canopy.store.regexp import TooSlow

# The most names a pattern's candidates from the trigram index may be: each is looked up,
# tested and sorted (about 10-25 us each on SQLite: 1,111 took 27-37 ms at 100,000
# servers on a loaded machine).
TRIGRAM_CANDIDATES = 2000

AsyncRun = Callable[[Any, Mapping[str, Any]], Awaitable[Sequence[Any]]]


@dataclass(frozen=True, slots=True)
class ServerQuery:
    """One page of a server list: filters, order and keyset pagination, all in SQL.

    `deleted`: False = live servers only, True = deleted only, None = both.
    `sort`: (key, descending) pairs over SORT_KEYS; the id breaks ties last.
    """

    all_projects: bool = False
    project_id: str | None = None  # with all_projects: only this project
    user_id: str | None = None
    name: str | None = None  # a regular expression (re.search)
    statuses: frozenset[str] | None = None
    deleted: bool | None = False
    changes_since: datetime | None = None
    changes_before: datetime | None = None
    image_id: str | None = None
    flavor_id: str | None = None
    cloud: str | None = None
    key_name: str | None = None
    task_state: str | None = None
    request_id: str | None = None  # servers created by this request (reservation id)
    tags: tuple[str, ...] = ()  # every one of these
    tags_any: tuple[str, ...] = ()  # at least one
    not_tags: tuple[str, ...] = ()  # not all of these
    not_tags_any: tuple[str, ...] = ()  # none of these
    locked: bool | None = None
    ip: str | None = None  # a regular expression over the IPv4 addresses
    ip6: str | None = None  # ... and over the IPv6 ones
    sort: tuple[tuple[str, bool], ...] = (("created_at", True),)
    limit: int | None = None
    marker: str | None = None


class ServerQueries(ServerScope):
    """ServerService's lists and searches."""

    async def list(
        self,
        ctx: RequestContext,
        *,
        include_deleted: bool = False,
        changes_since: datetime | None = None,
        all_projects: bool = False,
    ) -> Sequence[Server]:
        deleted: bool | None = None if (include_deleted or changes_since) else False
        return await self.search(
            ctx,
            ServerQuery(all_projects=all_projects, deleted=deleted, changes_since=changes_since),
        )

    async def search(
        self, ctx: RequestContext, query: ServerQuery, *, session: AsyncSession | None = None
    ) -> Sequence[Server]:
        """One page of servers (up to `query.limit`), in one indexed query.

        Raises InvalidRequest for a bad name pattern or an unknown marker.
        """
        if query.limit is not None and query.limit <= 0:
            return []
        async with self._unit(session, write=False) as s:
            return list((await self._page(s, ctx, query, (Server,))).scalars())

    async def search_rows(
        self,
        ctx: RequestContext,
        query: ServerQuery,
        columns: Sequence[Any],
        *,
        session: AsyncSession | None = None,
    ) -> Sequence[Row[Any]]:
        """`search`, as plain rows of `columns` (no ORM entities, no identity map, and no
        JSON column decoded that the caller does not read): what a list page renders."""
        if query.limit is not None and query.limit <= 0:
            return []
        async with self._unit(session, write=False) as s:
            return (await self._page(s, ctx, query, columns, core=True)).all()

    def search_plain(
        self, ctx: RequestContext, query: ServerQuery, columns: Sequence[Any]
    ) -> Rows | None:
        """`search_rows` on SQLite's plain reads (store/plain_reads.py): the same
        statements, their rows as the driver returns them (times and JSON as text,
        booleans as 0/1). None when this database or this query is not for them (then
        `search_rows` is the way)."""
        reads = self.db.plain_reads
        if reads is None:
            return None
        if query.limit is not None and query.limit <= 0:
            return []
        try:
            with reads.transaction(time_limit=self._pattern_limit(query)) as run:
                q, values = _plan_sync(self, run, ctx, query, columns)
                return run(q, values)
        except Unsupported:
            return None
        except TooSlow:
            limit = self.settings.api.regex_timeout_seconds
            raise InvalidRequest(regex.too_slow(limit)) from None

    async def _page(
        self,
        s: AsyncSession,
        ctx: RequestContext,
        query: ServerQuery,
        columns: Sequence[Any],
        *,
        core: bool = False,
    ) -> Result[Any]:
        """Select `columns` of servers with the query's filters, order and page: a statement
        prepared once per shape (services/server_statements.py), run with this query's
        values."""

        async def run(q: Any, values: Mapping[str, Any]) -> Sequence[Any]:
            return (await s.execute(q, values)).all()

        q, values = await self._plan(run, ctx, query, columns)
        return await regex.execute(s, q, self._pattern_limit(query), values, core=core)

    def _pattern_limit(self, query: ServerQuery) -> float | None:
        """The time limit of a page carrying a user's pattern (None: it carries none)."""
        patterns = (query.name, query.ip, query.ip6)
        if all(p is None for p in patterns):
            return None
        return self.settings.api.regex_timeout_seconds

    async def _plan(
        self, run: AsyncRun, ctx: RequestContext, query: ServerQuery, columns: Sequence[Any]
    ) -> tuple[Any, dict[str, Any]]:
        """The page's statement (prepared once per shape) and its values: the marker's
        sort-key values and the walk-or-sort choice read through `run`."""
        shape, values = shape_of(ctx, query, sqlite=self.db.is_sqlite)
        if TRIGRAM_PARAM in values:
            if await self._trigrams_answer(run, values, scoped=("project",) in shape):
                shape = with_trigrams(shape)
            else:
                del values[TRIGRAM_PARAM]
        if query.marker is not None:
            values.update(await self._after_marker(run, ctx, query))
        if query.limit is not None:
            values["q_limit"] = query.limit
            if walkable(shape, query.sort) and await self._walk_fills(run, shape, query, values):
                shape = walked(shape)
        q = statement(
            columns,
            shape,
            query.sort,
            marker=query.marker is not None,
            limit=query.limit is not None,
        )
        return q, values

    async def _trigrams_answer(
        self, run: AsyncRun, values: dict[str, Any], *, scoped: bool
    ) -> bool:
        """Whether the name's candidates are read from SQLite's trigram index of names: it
        is there, and fewer than TRIGRAM_CANDIDATES names have the pattern's required
        texts. More (`web` in a project of `web-*`), and the page order is walked instead,
        testing each row (the walk meets a page of matches soon; the candidates would all
        be read and sorted).

        `scoped` (the list is one project's, `q_project`): only that project's names are
        counted, and later read, from the index. Names of projects the list may not see
        never change the choice (nor its cost much: FTS5 seeks to the project's keys), so
        a tenant learns nothing of them from the plan or its timing. An admin's list of
        every project counts every project's names: all of them are what it sees."""
        if self.db.name_trigrams is None:
            self.db.name_trigrams = bool((await run(TRIGRAMS_INSTALLED, {}))[0][0])
        if not self.db.name_trigrams:
            return False
        params = {TRIGRAM_PARAM: values[TRIGRAM_PARAM], "q_cap": TRIGRAM_CANDIDATES}
        if scoped:
            params["q_project"] = values["q_project"]
        found = (await run(TRIGRAM_ESTIMATE[scoped], params))[0][0]
        return bool(found < TRIGRAM_CANDIDATES)

    async def _walk_fills(
        self, run: AsyncRun, shape: Shape, query: ServerQuery, values: dict[str, Any]
    ) -> bool:
        """Whether the first rows a walk of the page order would visit hold a full page of
        matches (services/server_walk.py): then the walk is the plan, bounded by them."""
        assert query.limit is not None
        desc = query.sort[0][1]
        q = walk_estimate(shape, desc, marker=query.marker is not None)
        params = {**values, "q_sample": query.limit * SAMPLE_PAGES}
        found = (await run(q, params))[0][0]
        return bool(found >= query.limit)

    async def _after_marker(
        self, run: AsyncRun, ctx: RequestContext, query: ServerQuery
    ) -> dict[str, Any]:
        """The marker server's sort-key values, bound as `q_m0`, `q_m1`, ... (the page
        starts strictly after them)."""
        marker = query.marker
        assert marker is not None
        row = None
        if _could_be_id(marker):
            q = marker_statement(query.sort)
            rows = await run(q, {"q_marker": marker})
            row = rows[0] if rows else None
        if row is None or not (
            (ctx.is_cloud_admin and query.all_projects) or row[0] == ctx.project_id
        ):
            raise InvalidRequest(f"marker [{marker}] not found")
        return {f"q_m{i}": value for i, value in enumerate(row[1:])}


def _plan_sync(
    queries: ServerQueries,
    run: Run,
    ctx: RequestContext,
    query: ServerQuery,
    columns: Sequence[Any],
) -> tuple[Any, dict[str, Any]]:
    """`_plan` over a synchronous `run`: its coroutine never suspends (nothing it awaits
    does), so it is driven to its end here, in one step, inside the caller's transaction."""

    async def arun(q: Any, values: Mapping[str, Any]) -> Sequence[Any]:
        return run(q, values)

    coro = queries._plan(arun, ctx, query, columns)
    try:
        coro.send(None)
    except StopIteration as done:
        plan: tuple[Any, dict[str, Any]] = done.value
        return plan
    coro.close()
    raise RuntimeError("a plain read plan awaited something that suspends")
