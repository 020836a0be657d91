"""Choosing how a `changes-since` page is read: walk the page order, or sort the matches.

A project's `changes-since=T` page can be read two ways, each the other's worst case:

- **range**: the rows changed since T, from the (project_id, updated_at) index, sorted
  into page order. Cheap when few changed (a poll); when most of a project changed (T far
  in the past, a first sync) it sorts every match to keep `limit` of them: about 100 ms
  at 50,000 servers on SQLite, 35-75 ms on PostgreSQL.
- **walk**: the project's rows in page order (ix_servers_project_order), keeping those
  changed since T, stopping after `limit`. Cheap when most changed; when few did it walks
  the whole project to find them.

`walk_estimate` counts the matches among the first `SAMPLE_PAGES * limit` rows the walk
would visit (from the marker, if any), from the index alone. If they fill a page the walk
is taken and is bounded by that sample; otherwise the range, which is then what sorts
the fewest rows that can be known to match. The estimate costs one bounded read of the
index, whatever the project's size. Only pages in the default order (created_at, then
id, in either direction) of one project, filtered by nothing but the change window and
`deleted`, can walk; every other list keeps its plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Integer, Select, bindparam, func, select

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
    """How many of the first `q_sample` rows of the walk (after the marker's `q_m0`)
    match the shape's change window and `deleted`: a count over the index alone."""
    key = (tuple(shape), desc, marker)
    found = _estimates.get(key)
    if found is not None:
        return found
    # In created_at order only, ties in any order: the index alone answers (it has no
    # id, which would make it the page-order index of every list, deleted rows and all),
    # and a count needs no tie broken.
    walk = select(Server.updated_at, Server.deleted).where(
        Server.project_id == bindparam("q_project")
    )
    if marker:
        after = (
            Server.created_at < bindparam("q_m0") if desc else Server.created_at > bindparam("q_m0")
        )
        walk = walk.where(after)
    walk = walk.order_by(Server.created_at.desc() if desc else Server.created_at.asc())
    sample = walk.limit(bindparam("q_sample", type_=Integer)).subquery("walk")
    q = select(func.count()).select_from(sample).where(sample.c.updated_at >= bindparam("q_since"))
    for term in shape:
        if term[0] == "before":
            q = q.where(sample.c.updated_at <= bindparam("q_before"))
        elif term[0] == "deleted":
            q = q.where(sample.c.deleted.is_(term[1]))
    _estimates[key] = q
    return cast(Select[Any], q)


def walked(shape: Sequence[tuple[Any, ...]]) -> tuple[tuple[Any, ...], ...]:
    """The shape with its change window read along the walk (not from its own index)."""
    return tuple(("since", "walk") if term == ("since",) else term for term in shape)
