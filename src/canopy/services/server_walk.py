"""Choosing how a `changes-since` page is read: walk the page order, or sort the matches.

A project's `changes-since=T` page can be read two ways, each the other's worst case:

- **range**: the rows changed since T, from the (project_id, updated_at) index, sorted
  into page order. Cheap when few changed (a poll); when most of a project changed (T far
  in the past, a first sync) it sorts every match to keep `limit` of them: about 100 ms
  at 50,000 servers on SQLite, 35-75 ms on PostgreSQL.
- **walk**: the project's rows in page order (ix_servers_project_order), keeping those
  changed since T, stopping after `limit`. Cheap when most changed; when few did it walks
  the whole project to find them.

`walk_estimate` first counts the window's range up to a page: fewer than `limit` rows
changed (a poll) and the range is the plan, sorting less than a page. Otherwise it
counts the matches among the first `SAMPLE_PAGES * limit` rows the walk would visit (from
the marker, if any). If they fill a page the walk is taken, bounded by that sample;
otherwise the range. The estimate is one statement reading at most `limit` entries of
one index and `SAMPLE_PAGES * limit` of another, from the indexes alone, whatever the
project's size. Only pages in the default order (created_at, then
id, in either direction) of one project, filtered by nothing but the change window and
`deleted`, can walk; every other list keeps its plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import BindParameter, Integer, Select, bindparam, case, func, literal, select

from canopy.store.models import Server

SAMPLE_PAGES = 10  # the walk is taken when 1 in 10 of the rows it visits match, or more
_WALKABLE = frozenset({"project", "deleted", "since", "before"})
_estimates: dict[Any, Select[Any]] = {}


def walkable(shape: Sequence[tuple[Any, ...]], sort: Sequence[tuple[str, bool]]) -> bool:
    """Whether a page of this shape and order may be read by walking the page order."""
    kinds = {term[0] for term in shape}
    if "project" not in kinds or "since" not in kinds or not kinds <= _WALKABLE:
        return False
    keys = [key for key, _ in sort]
    if keys not in (["created_at"], ["created_at", "id"]):
        return False
    return len({desc for _, desc in sort}) == 1


def walk_estimate(shape: Sequence[tuple[Any, ...]], desc: bool, *, marker: bool) -> Select[Any]:
    """0 if fewer than `q_limit` rows of the project changed in the window (the range is
    the plan: it sorts fewer than a page), else how many of the first `q_sample` rows of
    the walk (after the marker's `q_m0`) match the window and `deleted`. Both are counts
    over an index alone; the second is only read when the first is not enough."""
    key = (tuple(shape), desc, marker)
    found = _estimates.get(key)
    if found is not None:
        return found
    before = ("before",) in shape
    # At most a page of the window's range (a poll's few changes end it at once).
    window = select(Server.updated_at).where(
        Server.project_id == bindparam("q_project"), Server.updated_at >= bindparam("q_since")
    )
    if before:
        window = window.where(Server.updated_at <= bindparam("q_before"))
    page = window.limit(bindparam("q_limit", type_=Integer)).subquery("window")
    in_window = select(func.count()).select_from(page).scalar_subquery()
    # In created_at order only, ties in any order: the index alone answers (it has no
    # id, which would make it the page-order index of every list, deleted rows and all),
    # and a count needs no tie broken.
    walk = select(Server.updated_at, Server.deleted).where(
        Server.project_id == bindparam("q_project")
    )
    if marker:
        m0: BindParameter[Any] = bindparam("q_m0")
        walk = walk.where(Server.created_at < m0 if desc else Server.created_at > m0)
    walk = walk.order_by(Server.created_at.desc() if desc else Server.created_at.asc())
    sample = walk.limit(bindparam("q_sample", type_=Integer)).subquery("walk")
    walked_q = (
        select(func.count()).select_from(sample).where(sample.c.updated_at >= bindparam("q_since"))
    )
    if before:
        walked_q = walked_q.where(sample.c.updated_at <= bindparam("q_before"))
    for term in shape:
        if term[0] == "deleted":
            walked_q = walked_q.where(sample.c.deleted.is_(term[1]))
    q = select(
        case(
            (in_window < bindparam("q_limit", type_=Integer), literal(0)),
            else_=walked_q.scalar_subquery(),
        )
    )
    _estimates[key] = q
    return q


def walked(shape: Sequence[tuple[Any, ...]]) -> tuple[tuple[Any, ...], ...]:
    """The shape with its change window read along the walk (not from its own index)."""
    return tuple(("since", "walk") if term == ("since",) else term for term in shape)
