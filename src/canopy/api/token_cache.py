"""A short in-process cache of validated tokens, so a request costs no token queries.

Validating a token is four queries (the token, its user, its project, the user's roles
there): about 5% of a page of servers. The cache keeps what `validate_token` answered,
keyed by the token's SHA-256 (the database's own key for it), for at most `TTL_SECONDS`
of the app's clock, and never past the token's expiry.

Revocation is honoured:

- **in this process, at once**: any change this process makes to tokens, users, projects
  or role assignments (a revocation, a disabled user or project, a role granted or
  removed, a deleted user) bumps a process-wide generation, at flush and again at commit,
  and an entry of an older generation is never used. New tokens do not (they make no
  cached answer wrong);
- **made by another process** (another `canopy api --workers` process, or a `canopy`
  command on the same database), within `TTL_SECONDS`: the bound on how long a revoked
  token, a disabled user or a removed role can still be used is 2 seconds.

Only valid tokens are cached: an unknown or revoked token is looked up every time.
Concurrent requests carrying the same token share one look-up (`fetch`).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from canopy.services.tokens import TokenInfo, token_digest
from canopy.store.models import ApplicationCredential, Project, RoleAssignment, Token, User

TTL_SECONDS = 2.0
MAX_ENTRIES = 4096
_IDENTITY = (Token, User, Project, RoleAssignment, ApplicationCredential)
_NEW_MATTERS = (RoleAssignment,)  # a new role is a change to a cached answer
_PENDING = "canopy_identity_changed"
_generation = itertools.count(1)
_current = 0


def generation() -> int:
    """The process-wide identity generation: it moves on every identity change."""
    return _current


def bump() -> None:
    """Make every cached answer in this process stale."""
    global _current
    _current = next(_generation)


class TokenCache:
    """Validated tokens by digest: (answer, when cached, generation)."""

    def __init__(self, ttl_seconds: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl = timedelta(seconds=ttl_seconds)
        self.max_entries = max_entries
        self._entries: dict[str, tuple[TokenInfo, datetime, int]] = {}
        self._loading: dict[str, asyncio.Future[TokenInfo | None]] = {}

    async def fetch(
        self, token: str, now: datetime, load: Callable[[], Awaitable[TokenInfo]]
    ) -> TokenInfo:
        """The cached answer, else `load()`'s, kept. Concurrent requests with the same
        token wait for one load instead of each running it (when an entry expires under
        load, every request in flight would otherwise miss at once). A failed or
        cancelled load is each waiter's to repeat, so its error is their own."""
        hit = self.get(token, now)
        if hit is not None:
            return hit
        key = token_digest(token)
        pending = self._loading.get(key)
        if pending is not None:
            shared = await asyncio.shield(pending)
            if shared is not None:
                return shared
            return await load()
        gen = _current
        future: asyncio.Future[TokenInfo | None] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        info: TokenInfo | None = None
        try:
            info = await load()
            self.put(token, info, now, gen)
            return info
        finally:
            del self._loading[key]
            future.set_result(info)

    def get(self, token: str, now: datetime) -> TokenInfo | None:
        key = token_digest(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        info, at, gen = entry
        if gen != _current or not (at <= now < at + self.ttl) or info.expires_at <= now:
            del self._entries[key]
            return None
        return info

    def put(self, token: str, info: TokenInfo, now: datetime, gen: int) -> None:
        """Keep `info`, validated at `now` under generation `gen` (read before the lookup,
        so a change made during the lookup leaves the entry stale)."""
        if gen != _current:
            return
        if len(self._entries) >= self.max_entries:
            # The oldest tenth goes: dicts keep insertion order.
            for key in list(itertools.islice(self._entries, self.max_entries // 10 or 1)):
                del self._entries[key]
        self._entries[token_digest(token)] = (info, now, gen)

    def __len__(self) -> int:
        return len(self._entries)


def _touches_identity(session: Session) -> bool:
    for obj in itertools.chain(session.dirty, session.deleted):
        if isinstance(obj, _IDENTITY):
            return True
    return any(isinstance(obj, _NEW_MATTERS) for obj in session.new)


def _after_flush(session: Session, _ctx: UOWTransaction) -> None:
    if _touches_identity(session):
        session.info[_PENDING] = True
        bump()


def _on_execute(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete):
        return
    mapper = state.bind_mapper
    if mapper is not None and issubclass(mapper.class_, _IDENTITY):
        state.session.info[_PENDING] = True
        bump()


def _after_commit(session: Session) -> None:
    if session.info.pop(_PENDING, False):
        bump()


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


_installed = False


def install_invalidation() -> None:
    """Listen for identity changes in every session of this process (once)."""
    global _installed
    if _installed:
        return
    listeners: list[tuple[str, Any]] = [
        ("after_flush", _after_flush),
        ("do_orm_execute", _on_execute),
        ("after_commit", _after_commit),
        ("after_rollback", _after_rollback),
    ]
    for name, fn in listeners:
        event.listen(Session, name, fn)
    _installed = True
