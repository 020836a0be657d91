"""A server's tags and user data: rows of their own, read only by who needs them.

Tags are `server_tags` rows (one per tag), so `?tags=` filters are plain SQL on an index;
user data (up to 64 KiB) is a `server_user_data` row, so loading servers, a page of them
or a controller's batch never loads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import ColumnElement, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.store.models import Server, ServerTag, ServerUserData

_USER_DATA_CACHE = "canopy.user_data"


async def tags_of(s: AsyncSession, server_ids: Sequence[str]) -> dict[str, list[str]]:
    """Each server's tags, sorted (servers without tags are absent)."""
    out: dict[str, list[str]] = {}
    if not server_ids:
        return out
    rows = await s.execute(
        select(ServerTag.server_id, ServerTag.tag)
        .where(ServerTag.server_id.in_(server_ids))
        .order_by(ServerTag.server_id, ServerTag.tag)
    )
    for sid, tag in rows:
        out.setdefault(sid, []).append(tag)
    return out


async def replace_tags(s: AsyncSession, server_id: str, tags: Iterable[str]) -> list[str]:
    """Make `tags` (already validated) the server's tags; return them sorted."""
    clean = sorted(set(tags))
    await s.execute(delete(ServerTag).where(ServerTag.server_id == server_id))
    if clean:
        await s.execute(insert(ServerTag), [{"server_id": server_id, "tag": t} for t in clean])
    return clean


def tagged(tag: str) -> ColumnElement[bool]:
    """Servers carrying `tag` (a semi-join on the tag index)."""
    return Server.id.in_(select(ServerTag.server_id).where(ServerTag.tag == tag))


def tagged_any(tags: Sequence[str]) -> ColumnElement[bool]:
    """Servers carrying at least one of `tags`."""
    return Server.id.in_(select(ServerTag.server_id).where(ServerTag.tag.in_(tags)))


async def user_data_of(s: AsyncSession, server_ids: Sequence[str]) -> dict[str, str]:
    """The user data of those of `server_ids` that have any."""
    if not server_ids:
        return {}
    rows = await s.execute(
        select(ServerUserData.server_id, ServerUserData.data).where(
            ServerUserData.server_id.in_(server_ids)
        )
    )
    return {sid: data for sid, data in rows}


async def user_data_for(s: AsyncSession, server: Server, batch: Sequence[Server]) -> str | None:
    """`server`'s user data, reading it for the whole `batch` it belongs to at once.

    The first call in a transaction reads the user data of every server of the batch in
    one query and keeps it in the session; the next calls for the batch read nothing.
    """
    cache: dict[str, str | None] = s.info.setdefault(_USER_DATA_CACHE, {})
    if server.id not in cache:
        ids = [b.id for b in batch if b.id not in cache]
        if server.id not in ids:
            ids.append(server.id)
        found = await user_data_of(s, ids)
        for sid in ids:
            cache[sid] = found.get(sid)
    return cache[server.id]
