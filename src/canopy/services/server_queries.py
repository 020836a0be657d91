"""Reading servers: one page of a filtered, sorted server list, in one indexed query."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Result,
    Row,
    Select,
    String,
    and_,
    bindparam,
    case,
    false,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.context import RequestContext
from canopy.domain.errors import InvalidRequest
from canopy.services import regex
from canopy.services.regex_literals import required_literal
from canopy.services.server_scope import ServerScope, _could_be_id
from canopy.store.models import InstanceAction, Server
from canopy.store.plans import rare
from canopy.store.server_extras import tagged, tagged_any

_Conditions = list[ColumnElement[bool]]


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
            return list((await self._page(s, ctx, query, select(Server))).scalars())

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
            return (await self._page(s, ctx, query, select(*columns))).all()

    async def _page(
        self, s: AsyncSession, ctx: RequestContext, query: ServerQuery, q: Select[Any]
    ) -> Result[Any]:
        """Run `q` (a select over servers) with the query's filters, order and page."""
        for cond in self._conditions(ctx, query):
            q = q.where(cond)
        keys = _sort_columns(query.sort)
        if query.marker is not None:
            q = q.where(await self._after_marker(s, ctx, query, keys))
        q = q.order_by(*(col.desc() if desc else col.asc() for col, desc in keys))
        if query.limit is not None:
            q = q.limit(query.limit)
        patterns = (query.name, query.ip, query.ip6)
        timeout = self.settings.api.regex_timeout_seconds
        bounded = timeout if any(p is not None for p in patterns) else None
        return await regex.execute(s, q, bounded)

    def _conditions(self, ctx: RequestContext, query: ServerQuery) -> Sequence[ColumnElement[bool]]:
        conds: _Conditions = []
        if query.all_projects and ctx.is_cloud_admin:
            if query.project_id is not None:
                conds.append(Server.project_id == query.project_id)
        else:
            conds.append(Server.project_id == ctx.project_id)
        if query.deleted is not None:
            conds.append(Server.deleted.is_(query.deleted))
        if query.changes_since is not None:
            # Few rows changed since (what a poll asks): the (project, updated_at) index
            # answers, also after ANALYZE, which otherwise prefers the page-order index
            # when `deleted` is named too and walks every row of the project.
            since = Server.updated_at >= query.changes_since
            conds.append(cast(ColumnElement[bool], rare(since)))
        if query.changes_before is not None:
            conds.append(Server.updated_at <= query.changes_before)
        if query.user_id is not None:
            conds.append(Server.user_id == query.user_id)
        if query.name is not None:
            name_pattern = regex.portable("name", query.name)
            exact = regex.exact_literal(name_pattern)
            if exact is not None:
                # Implied by the pattern, and few rows have it: the name index answers.
                conds.append(cast(ColumnElement[bool], rare(Server.name == exact)))
            conds.append(self._name_matches(name_pattern))
        if query.statuses is not None:
            conds.append(Server.status.in_(sorted(query.statuses)))
        for col, value in (
            (Server.image_id, query.image_id),
            (Server.flavor_id, query.flavor_id),
            (Server.cloud, query.cloud),
            (Server.key_name, query.key_name),
            (Server.task_state, query.task_state),
        ):
            if value is not None:
                conds.append(col == value)
        if query.request_id is not None:
            conds.append(
                Server.id.in_(
                    select(InstanceAction.server_id).where(
                        InstanceAction.action == "create",
                        InstanceAction.request_id == query.request_id,
                    )
                )
            )
        if query.locked is not None:
            conds.append(Server.locked.is_(query.locked))
        for pattern, version in ((query.ip, 4), (query.ip6, 6)):
            if pattern is not None:
                field = "ip6" if version == 6 else "ip"
                conds.append(self._has_address(regex.portable(field, pattern), version))
        if query.tags:
            conds.extend(tagged(t) for t in query.tags)
        if query.tags_any:
            conds.append(tagged_any(query.tags_any))
        if query.not_tags:  # not all of them: at least one missing
            conds.append(or_(*(~tagged(t) for t in query.not_tags)))
        if query.not_tags_any:  # none of them
            conds.append(~tagged_any(query.not_tags_any))
        return conds

    def _name_matches(self, pattern: str) -> ColumnElement[bool]:
        """The name matches `pattern` (canonical), the pattern asked of as few rows as can be.

        On SQLite the pattern is a Python call per row; a text every match must contain
        is tested first with SQLite's own `instr` (services/regex_literals.py), and the
        pattern only on the rows that have it (the CASE fixes that order). PostgreSQL's
        `~` is in C and, where pg_trgm is installed, answered from the trigram index on
        the name (migration 0010).
        """
        matches = Server.name.regexp_match(pattern)
        literal = required_literal(pattern) if self.db.is_sqlite else None
        if literal is None:
            return matches
        return cast(
            ColumnElement[bool],
            case((func.instr(Server.name, literal) > 0, matches), else_=false()),
        )

    def _has_address(self, pattern: str, version: int) -> ColumnElement[bool]:
        """An address of this IP version matches `pattern` (addresses are JSON:
        {network: [{"addr": ..., "version": 4|6}, ...]})."""
        self._tag_params += 1
        name = f"ip_{self._tag_params}"
        if self.db.is_postgres:
            sql = (
                "EXISTS (SELECT 1 FROM json_each(servers.addresses) AS n, "
                "json_array_elements(n.value) AS a WHERE a.value ->> 'addr' ~ "
                f":{name} AND a.value ->> 'version' = '{version}')"
            )
        else:
            sql = (
                "EXISTS (SELECT 1 FROM json_each(servers.addresses) AS n, json_each(n.value) "
                f"AS a WHERE json_extract(a.value, '$.addr') REGEXP :{name} "
                f"AND json_extract(a.value, '$.version') = {version})"
            )
        clause = text(sql).bindparams(bindparam(name, pattern, type_=String))
        return clause.self_group()  # type: ignore[return-value]

    async def _after_marker(
        self,
        s: AsyncSession,
        ctx: RequestContext,
        query: ServerQuery,
        keys: Sequence[tuple[Any, bool]],
    ) -> ColumnElement[bool]:
        """Rows strictly after the marker server in the page order."""
        marker = query.marker
        assert marker is not None
        row = None
        if _could_be_id(marker):
            q = select(Server.project_id, *(col for col, _ in keys)).where(Server.id == marker)
            row = (await s.execute(q)).one_or_none()
        if row is None or not (
            (ctx.is_cloud_admin and query.all_projects) or row[0] == ctx.project_id
        ):
            raise InvalidRequest(f"marker [{marker}] not found")
        return after_keys(keys, list(row[1:]))


def after_keys(keys: Sequence[tuple[Any, bool]], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after `values` in the order `keys`: (k1 > v1) OR (k1 = v1 AND k2 > v2)
    OR ..., led by the range bound k1 >= v1 that it implies. Without that bound no index
    range follows from the OR and a deep page walked every row before it (33 ms against
    15 ms at 100,000 servers); with it, the first key's index starts at the marker."""
    ors: list[ColumnElement[bool]] = []
    for i, (col, desc) in enumerate(keys):
        equal = [keys[j][0] == values[j] for j in range(i)]
        beyond = col < values[i] if desc else col > values[i]
        ors.append(and_(*equal, beyond))
    first, desc = keys[0]
    lead = first <= values[0] if desc else first >= values[0]
    return and_(lead, or_(*ors))


# Sort keys a server list may be ordered by, each a non-null SQL expression so keyset
# pagination can compare it. The id always ends the order, as the tie-breaker.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SORT_KEYS: dict[str, Any] = {
    "created_at": Server.created_at,
    "updated_at": Server.updated_at,
    "name": Server.name,
    "id": Server.id,
    "project_id": Server.project_id,
    "user_id": Server.user_id,
    "status": Server.status,
    "key_name": func.coalesce(Server.key_name, ""),
    "task_state": func.coalesce(Server.task_state, ""),
    "observed_state": func.coalesce(Server.observed_state, ""),
    "cloud": func.coalesce(Server.cloud, ""),
    "zone": func.coalesce(Server.cloud, Server.requested_zone, ""),
    "image_id": func.coalesce(Server.image_id, ""),
    "flavor_id": Server.flavor_id,
    "launched_at": func.coalesce(Server.launched_at, literal(_EPOCH, Server.launched_at.type)),
    "terminated_at": func.coalesce(
        Server.terminated_at, literal(_EPOCH, Server.terminated_at.type)
    ),
}


def _sort_columns(sort: Sequence[tuple[str, bool]]) -> list[tuple[Any, bool]]:
    keys: list[tuple[Any, bool]] = []
    seen: set[str] = set()
    for key, desc in sort:
        if key in SORT_KEYS and key not in seen:
            seen.add(key)
            keys.append((SORT_KEYS[key], desc))
    if "id" not in seen:
        keys.append((Server.id, keys[-1][1] if keys else True))
    return keys
