"""A server list's SQL, prepared once per shape and reused with new values.

Building a page's SELECT (its columns, filters, order and keyset bound) and having
SQLAlchemy compute the statement's cache key cost 0.3-0.6 ms of CPU per request, more
than the query itself. What the SQL looks like depends only on the request's *shape*:
which filters it names (not their values), `deleted` and `locked` (rendered as
literals), the sort keys and directions, whether there is a marker and a limit, and the
database (SQLite tests a name's required text first; the address filter's SQL differs).
Every value is a bind parameter.

`shape_of` reads a ServerQuery into (shape, values); `statement` builds the SELECT from
the shape alone and keeps it, so the same shape is the same statement object, whose cache
key SQLAlchemy has memoised and whose compiled form its engine cache holds. The builder
never sees a value: a statement cannot carry one request's value into another's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    column,
    false,
    func,
    literal,
    or_,
    select,
    table,
    text,
)

from canopy.domain.context import RequestContext
from canopy.services import regex
from canopy.services.regex_literals import (
    exact_literal,
    literal_search,
    required_literal,
    required_literals,
)
from canopy.store import name_trigrams
from canopy.store.models import InstanceAction, Server, ServerTag
from canopy.store.name_trigrams import phrase_query
from canopy.store.plans import rare, scarce, sorted_apart, unindexed

Term = tuple[Any, ...]
Shape = tuple[Term, ...]

MAX_STATEMENTS = 512  # shapes kept (a few dozen in practice); the oldest go first
_statements: dict[Any, Any] = {}

TRIGRAM_PARAM = "q_name_trigrams"

# Plain equality filters: the ServerQuery field and the column it compares.
_EQUALS = ("user_id", "image_id", "flavor_id", "cloud", "key_name", "task_state")


def shape_of(ctx: RequestContext, query: Any, *, sqlite: bool) -> tuple[Shape, dict[str, Any]]:
    """`query`'s (a ServerQuery's) filters as a shape and the values it binds."""
    terms: list[Term] = []
    values: dict[str, Any] = {}

    def put(term: Term, **bound: Any) -> None:
        terms.append(term)
        values.update(bound)

    if query.all_projects and ctx.is_cloud_admin:
        if query.project_id is not None:
            put(("project",), q_project=query.project_id)
    else:
        put(("project",), q_project=ctx.project_id)
    if query.deleted is not None:
        put(("deleted", bool(query.deleted)))
    if query.changes_since is not None:
        put(("since",), q_since=query.changes_since)
    if query.changes_before is not None:
        put(("before",), q_before=query.changes_before)
    if query.name is not None:
        pattern = regex.portable("name", query.name)
        exact = exact_literal(pattern)
        needle = required_literal(pattern) if sqlite else None
        # Only literal text (`web-42`, `^web-42`): on SQLite, `instr` is the whole test.
        literal = literal_search(pattern) if sqlite and exact is None else None
        how = "regex" if literal is None else ("prefix" if literal[0] else "contains")
        bound = {"q_name": pattern}
        if exact is not None:
            bound["q_name_exact"] = exact
        if needle is not None:
            bound["q_name_needle"] = needle
            # What SQLite's trigram index of names would be asked (services/server_queries
            # decides whether it is; the term then says so: `with_trigrams`).
            phrase = phrase_query(required_literals(pattern)) if exact is None else None
            if phrase is not None:
                bound[TRIGRAM_PARAM] = phrase
        if literal is not None:
            del bound["q_name"]
            bound["q_name_needle"] = literal[1]
        put(("name", exact is not None, needle is not None, how), **bound)
    if query.statuses is not None:
        put(("statuses",), q_statuses=sorted(query.statuses))
    for field in _EQUALS:
        value = getattr(query, field)
        if value is not None:
            put(("equals", field), **{f"q_{field}": value})
    if query.request_id is not None:
        put(("request",), q_request=query.request_id)
    if query.locked is not None:
        put(("locked", bool(query.locked)))
    for field, pattern, version in (("ip", query.ip, 4), ("ip6", query.ip6, 6)):
        if pattern is not None:
            put(("address", version, sqlite), **{f"q_ip{version}": regex.portable(field, pattern)})
    if query.tags:
        put(("tags", len(query.tags)), **{f"q_tag{i}": t for i, t in enumerate(query.tags)})
    if query.tags_any:
        put(("tags_any",), q_tags_any=list(query.tags_any))
    if query.not_tags:
        n = len(query.not_tags)
        put(("not_tags", n), **{f"q_not_tag{i}": t for i, t in enumerate(query.not_tags)})
    if query.not_tags_any:
        put(("not_tags_any",), q_not_tags_any=list(query.not_tags_any))
    return tuple(terms), values


def statement(
    columns: Sequence[Any],
    shape: Shape,
    sort: Sequence[tuple[str, bool]],
    *,
    marker: bool,
    limit: bool,
) -> Select[Any]:
    """The SELECT of `columns` for this shape, order and page (built on first use).

    With `marker`, it binds `q_m0`, `q_m1`, ... to the marker's values of the sort keys
    (`sort_columns(sort)`); with `limit`, `q_limit`."""
    # Keyed by the columns' identities: the statement kept holds them, so no id is reused.
    key = (tuple(id(c) for c in columns), shape, tuple(sort), marker, limit)
    found = _statements.get(key)
    if found is not None:
        return cast(Select[Any], found)
    q = select(*columns)
    # Names found from the trigram index drive the page: no other index may (the project's
    # or the marker's would walk the project and test each row against the candidates).
    driven = any(term[0] == "name" and term[-1] == "trigrams" for term in shape)
    scoped = ("project",) in shape
    for term in shape:
        q = q.where(_sql(term, driven=driven, scoped=scoped))
    keys = sort_columns(sort)
    if marker:
        bounds = [(unindexed(col), d) for col, d in keys] if driven else keys
        q = q.where(after_keys(bounds, [bindparam(f"q_m{i}") for i in range(len(keys))]))
    order = keys
    if ("since",) in shape or driven:
        # The change window's range is the plan: the matches are sorted, never found by
        # walking the page order (which SQLite prefers after ANALYZE, to spare the sort).
        order = [(sorted_apart(keys[0][0]), keys[0][1]), *keys[1:]]
    q = q.order_by(*(col.desc() if desc else col.asc() for col, desc in order))
    if limit:
        q = q.limit(bindparam("q_limit", type_=Integer))
    _keep(key, q)
    return q


def marker_statement(sort: Sequence[tuple[str, bool]]) -> Select[Any]:
    """The marker server's project and sort-key values (binds `q_marker`)."""
    key = ("marker", tuple(sort))
    found = _statements.get(key)
    if found is not None:
        return cast(Select[Any], found)
    cols = (col for col, _ in sort_columns(sort))
    q = select(Server.project_id, *cols).where(Server.id == bindparam("q_marker"))
    _keep(key, q)
    return q


def _keep(key: Any, q: Any) -> None:
    if len(_statements) >= MAX_STATEMENTS:
        for old in list(_statements)[: MAX_STATEMENTS // 10]:
            del _statements[old]
    _statements[key] = q


def with_trigrams(shape: Shape) -> Shape:
    """The shape with its name's candidates read from SQLite's trigram index of names."""
    return tuple((*term, "trigrams") if term[0] == "name" else term for term in shape)


def _sql(term: Term, *, driven: bool = False, scoped: bool = False) -> ColumnElement[bool]:
    kind = term[0]
    if kind == "project":
        project: Any = unindexed(Server.project_id) if driven else Server.project_id
        return cast(ColumnElement[bool], project == bindparam("q_project"))
    if kind == "deleted":
        deleted = unindexed(Server.deleted) if driven else Server.deleted
        return deleted.is_(term[1])
    if kind == "since":
        if term[1:] == ("walk",):  # tested along the page-order walk (server_walk.py)
            return unindexed(Server.updated_at) >= bindparam("q_since")
        # Few rows changed since (what a poll asks): the (project, updated_at) index
        # answers, also after ANALYZE, which otherwise prefers the page-order index
        # when `deleted` is named too and walks every row of the project.
        return cast(ColumnElement[bool], rare(Server.updated_at >= bindparam("q_since")))
    if kind == "before":
        return Server.updated_at <= bindparam("q_before")
    if kind == "name":
        matches = _name(exact=term[1], needle=term[2], how=term[3])
        if term[-1] == "trigrams":
            return and_(_trigram_candidates(scoped=scoped), matches)
        return matches
    if kind == "statuses":
        return Server.status.in_(bindparam("q_statuses", expanding=True))
    if kind == "equals":
        return cast(ColumnElement[bool], getattr(Server, term[1]) == bindparam(f"q_{term[1]}"))
    if kind == "request":
        return Server.id.in_(
            select(InstanceAction.server_id).where(
                InstanceAction.action == "create",
                InstanceAction.request_id == bindparam("q_request"),
            )
        )
    if kind == "locked":
        return Server.locked.is_(term[1])
    if kind == "address":
        return _has_address(version=term[1], sqlite=term[2])
    if kind == "tags":
        return and_(*(_tagged(f"q_tag{i}") for i in range(term[1])))
    if kind == "tags_any":
        return _tagged_any("q_tags_any")
    if kind == "not_tags":  # not all of them: at least one missing
        return or_(*(~_tagged(f"q_not_tag{i}") for i in range(term[1])))
    if kind == "not_tags_any":  # none of them
        return ~_tagged_any("q_not_tags_any")
    raise AssertionError(f"unknown filter term {term!r}")


def _tagged(name: str) -> ColumnElement[bool]:
    return Server.id.in_(select(ServerTag.server_id).where(ServerTag.tag == bindparam(name)))


def _tagged_any(name: str) -> ColumnElement[bool]:
    tags: BindParameter[str] = bindparam(name, expanding=True)
    return Server.id.in_(select(ServerTag.server_id).where(ServerTag.tag.in_(tags)))


def _name(*, exact: bool, needle: bool, how: str) -> ColumnElement[bool]:
    """The name matches the pattern, asked of as few rows as can be.

    An exact name (`^literal$`) is also compared as such: implied by the pattern, and few
    rows have it, so the name index answers. On SQLite the pattern is a Python call per
    row; a text every match must contain (services/regex_literals.py) is tested first
    with SQLite's own `instr`, and the pattern only on the rows that have it (the CASE
    fixes that order). PostgreSQL's `~` is in C and, where pg_trgm is installed, answered
    from the trigram index on the name (migration 0010).
    """
    if how != "regex":  # literal text: contained (or at the start), exactly as RE2 says
        at = func.instr(Server.name, bindparam("q_name_needle", type_=String))
        return at == 1 if how == "prefix" else at > 0
    matches = Server.name.regexp_match(bindparam("q_name", type_=String))
    if needle:
        has = func.instr(Server.name, bindparam("q_name_needle", type_=String)) > 0
        matches = cast(ColumnElement[bool], case((has, matches), else_=false()))
    if exact:
        same = cast(ColumnElement[bool], scarce(Server.name == bindparam("q_name_exact")))
        return and_(same, matches)
    return matches


def _trigram_match(*, scoped: bool) -> str:
    """SQL: the index's rows whose names have the pattern's required texts (bound as
    `q_name_trigrams`); `scoped`, only those of the project bound as `q_project` (a range
    of rowids FTS5 seeks to: store/name_trigrams.py)."""
    t = name_trigrams.TRIGRAMS
    match = f"{t} MATCH :{TRIGRAM_PARAM}"
    if scoped:
        match += " AND " + name_trigrams.in_project(f"{t}.rowid", "q_project")
    return match


def _trigram_params(*, scoped: bool) -> list[BindParameter[str]]:
    params = [bindparam(TRIGRAM_PARAM, type_=String)]
    if scoped:
        params.append(bindparam("q_project", type_=String))
    return params


def _trigram_candidates(*, scoped: bool) -> ColumnElement[bool]:
    """The server is among those whose names have the pattern's required texts, read
    from SQLite's trigram index (store/name_trigrams.py): a candidate set, the pattern
    still tested on each. `scoped`: the project's names only (the index reads no other
    project's; the page tests the project again)."""
    found = text(
        f"SELECT rowid FROM {name_trigrams.TRIGRAMS} WHERE {_trigram_match(scoped=scoped)}"
    ).bindparams(*_trigram_params(scoped=scoped))
    keys = name_trigrams.keys
    ids = select(keys.c.server_id).where(keys.c.key.in_(found.columns(column("rowid", Integer))))
    return Server.id.in_(ids)


def _trigram_estimate(*, scoped: bool) -> Select[Any]:
    match = text(_trigram_match(scoped=scoped)).bindparams(*_trigram_params(scoped=scoped))
    found = (
        select(name_trigrams.trigrams.c.rowid)
        .where(match)
        .limit(bindparam("q_cap", type_=Integer))
        .subquery("found")
    )
    return select(func.count()).select_from(found)


# How many names have the pattern's required texts (`q_name_trigrams`), up to `q_cap`:
# by whether the list is one project's (`q_project`; True) or every project's (an
# admin's all_projects list, which sees them all). A project's count reads that project's
# names only: whether its page is read from the index never depends on other projects.
TRIGRAM_ESTIMATE = {scoped: _trigram_estimate(scoped=scoped) for scoped in (False, True)}
# Whether the trigram index is in this SQLite database (migration 0033 left it out where
# FTS5 had no trigram tokenizer).
TRIGRAMS_INSTALLED = (
    select(func.count())
    .select_from(table("sqlite_master"))
    .where(column("type") == "table", column("name") == name_trigrams.TRIGRAMS)
)


def _has_address(*, version: int, sqlite: bool) -> ColumnElement[bool]:
    """An address of this IP version matches the pattern (addresses are JSON:
    {network: [{"addr": ..., "version": 4|6}, ...]})."""
    name = f"q_ip{version}"
    if not sqlite:
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
    clause = text(sql).bindparams(bindparam(name, type_=String))
    return clause.self_group()  # type: ignore[return-value]


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


def sort_columns(sort: Sequence[tuple[str, bool]]) -> list[tuple[Any, bool]]:
    keys: list[tuple[Any, bool]] = []
    seen: set[str] = set()
    for key, desc in sort:
        if key in SORT_KEYS and key not in seen:
            seen.add(key)
            keys.append((SORT_KEYS[key], desc))
    if "id" not in seen:
        keys.append((Server.id, keys[-1][1] if keys else True))
    return keys
