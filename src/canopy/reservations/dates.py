"""Blazar's dates: what clients send ("YYYY-MM-DD HH:MM", UTC, or "now") and what they read.

Responses carry `%Y-%m-%dT%H:%M:%S.%f` (no zone, UTC): `openstack reservation lease set
--prolong-for` parses exactly that format from a GET before it sends the new end date.
"""

from __future__ import annotations

from datetime import UTC, datetime

from canopy.domain.errors import InvalidRequest

# What Blazar accepts on input (its api/v1/leases and manager: "%Y-%m-%d %H:%M"), and the
# response format, accepted back too since a client may echo what it read.
INPUT_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S")
OUTPUT_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


def parse_date(value: object, field: str, now: datetime) -> datetime:
    """A request's date as an aware UTC datetime; "now" is `now` (to the second)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{field} must be a date as 'YYYY-MM-DD HH:MM' (UTC) or 'now'.")
    text = value.strip()
    if text == "now":
        return now.replace(microsecond=0)
    for fmt in INPUT_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    shown = text[:40]
    raise InvalidRequest(f"{field} {shown!r} is not a date as 'YYYY-MM-DD HH:MM' (UTC).")


def format_date(value: datetime | None) -> str | None:
    """A date as Blazar's responses give it (UTC, no zone, microseconds)."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime(OUTPUT_FORMAT)
