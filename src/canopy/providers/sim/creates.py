"""The sim's own record of the create calls it answered, kept in its state file.

Every create that reaches the sim through its API leaves one row: a server created, an
existing server returned (found by its client token or by its canopy id), or a refusal
with its reason. Out-of-band creates (an operator's) leave none. Tests read it to prove
that canopy never created a server twice: the end state cannot show that, because leak
collection deletes the duplicates it finds.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from canopy.domain.errors import CapacityError, CloudError, CloudQuotaError
from canopy.providers.sim.status import from_us

SCHEMA = """CREATE TABLE IF NOT EXISTS create_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    canopy_id TEXT,
    remote_id TEXT,
    outcome TEXT NOT NULL,
    token_matched INTEGER NOT NULL DEFAULT 0,
    refusal TEXT,
    reason TEXT
)"""


class Outcome(StrEnum):
    CREATED = "created"  # a new server was inserted
    RETURNED = "returned"  # an existing server was the answer; nothing was created
    REFUSED = "refused"  # nothing was created: see `refusal` and `reason`


class Refusal(StrEnum):
    CAPACITY = "capacity"  # no host fits, or an injected capacity error
    QUOTA = "quota"  # the account's own quota
    INVALID = "invalid"  # a bad request (an unknown key pair)


@dataclass(frozen=True, slots=True)
class CreateRecord:
    """One create call the sim answered."""

    cloud: str
    seq: int
    at: datetime
    canopy_id: str | None
    remote_id: str | None  # the server created or returned; None for a refusal
    outcome: Outcome
    token_matched: bool  # returned because its client token matched (EC2's ClientToken)
    refusal: Refusal | None
    reason: str | None  # a refusal's message, as the caller got it
    deleted_at: datetime | None  # when the server `remote_id` was deleted, if it was

    def __str__(self) -> str:
        what = f"{self.outcome} {self.remote_id or ''}".strip()
        if self.refusal is not None:
            what = f"refused ({self.refusal}: {self.reason})"
        gone = "" if self.deleted_at is None else f", deleted at {self.deleted_at.isoformat()}"
        return f"{self.cloud} #{self.seq} at {self.at.isoformat()}: {self.canopy_id}: {what}{gone}"


def refusal_kind(error: CloudError) -> Refusal:
    if isinstance(error, CapacityError):
        return Refusal.CAPACITY
    if isinstance(error, CloudQuotaError):
        return Refusal.QUOTA
    return Refusal.INVALID


def log(
    conn: sqlite3.Connection,
    *,
    at_us: int,
    canopy_id: str | None,
    outcome: Outcome,
    remote_id: str | None = None,
    token_matched: bool = False,
    refused: CloudError | None = None,
) -> None:
    """Add one row to the log, inside the caller's transaction."""
    conn.execute(
        "INSERT INTO create_log (at, canopy_id, remote_id, outcome, token_matched, refusal,"
        " reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            at_us,
            canopy_id,
            remote_id,
            str(outcome),
            int(token_matched),
            None if refused is None else str(refusal_kind(refused)),
            None if refused is None else str(refused),
        ),
    )


def records(conn: sqlite3.Connection, cloud: str) -> list[CreateRecord]:
    """The whole log, oldest first, with the deletion time of each server it names."""
    rows = conn.execute(
        "SELECT l.seq, l.at, l.canopy_id, l.remote_id, l.outcome, l.token_matched, l.refusal,"
        " l.reason, s.deleted_at FROM create_log l"
        " LEFT JOIN servers s ON s.remote_id = l.remote_id ORDER BY l.seq"
    ).fetchall()
    return [
        CreateRecord(
            cloud=cloud,
            seq=seq,
            at=from_us(at),
            canopy_id=canopy_id,
            remote_id=remote_id,
            outcome=Outcome(outcome),
            token_matched=bool(token_matched),
            refusal=None if refusal is None else Refusal(refusal),
            reason=reason,
            deleted_at=None if deleted_at is None else from_us(deleted_at),
        )
        for seq, at, canopy_id, remote_id, outcome, token_matched, refusal, reason, deleted_at in (
            rows
        )
    ]


def created_more_than_once(logs: Iterable[CreateRecord]) -> dict[str, list[CreateRecord]]:
    """Canopy ids the API created more than one server for, with those creates.

    Pass the logs of every cloud together. Where each server should be created once (no
    boot failure that is rescheduled), any entry here is a double create.
    """
    created: dict[str, list[CreateRecord]] = defaultdict(list)
    for r in logs:
        if r.outcome is Outcome.CREATED and r.canopy_id is not None:
            created[r.canopy_id].append(r)
    return {cid: rs for cid, rs in created.items() if len(rs) > 1}


def created_while_live(logs: Iterable[CreateRecord]) -> list[str]:
    """Each create made while an earlier server of the same canopy id was still live.

    A server rescheduled after a failed boot is created again, but only after the failed
    one was deleted; two live at once is a double create. Pass the logs of every cloud
    together (their clock must be the same). Returns one line per double, to print.
    """
    created: dict[str, list[CreateRecord]] = defaultdict(list)
    for r in logs:
        if r.outcome is Outcome.CREATED and r.canopy_id is not None:
            created[r.canopy_id].append(r)
    doubles = []
    for rs in created.values():
        rs.sort(key=lambda r: (r.at, r.seq))
        for i, later in enumerate(rs):
            for earlier in rs[:i]:
                if earlier.deleted_at is None or earlier.deleted_at > later.at:
                    doubles.append(f"{later} while {earlier} was live")
                    break
    return doubles
