"""Every timestamp council writes, made one way: ISO-8601 in UTC, milliseconds, a `Z`.

`2026-12-02T21:42:57.123Z`. Strings of this shape sort as the moments they name, so the store
compares them in SQL (a device's last-seen threshold, a pairing code's expiry) without parsing.
Rows whose time SQLite fills in use `SQL_NOW`, which writes the same shape.
"""

from __future__ import annotations

from datetime import UTC, datetime

SQL_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


def stamp(moment: datetime | None = None) -> str:
    """`moment` (default: now) as council writes it."""
    moment = datetime.now(UTC) if moment is None else moment.astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse(text: str) -> datetime:
    """A stamp back to an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
