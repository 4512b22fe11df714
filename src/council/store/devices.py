"""Paired devices, pairing codes and the audit log on the stick: all of their SQL lives here.

Threat model (an attacker on the same Wi-Fi, or someone who copies the stick later):

- Tokens and pairing codes are never written down, only their SHA-256 (see
  `council.security.tokens`); a copied database cannot be replayed against the hub.
- A token is found by its digest through the UNIQUE index, so a lookup's timing depends on the
  digest and not on how many leading characters of a guessed token were right.
- A revoked device stays in the table (with `revoked_at`) so the audit trail keeps its name, but
  its token never authenticates again.
- Authenticating writes `last_seen_at`/`last_address` at most once per `LAST_SEEN_INTERVAL` per
  device, so a phone streaming tokens does not cost a flash write per request; a stick wears out.
- Everything a phone sends that ends up in the database (its name, its address) is cleaned of
  control and formatting characters and shortened: a hostile name must not be able to move the
  cursor or forge a line in the terminal prompt that asks the owner to approve it.
- The audit log never holds a secret, and keeps only its newest `AUDIT_KEEP` rows, so a flood of
  failed attempts cannot fill the stick.

The low-level code functions (`insert_code`, `find_code`, `claim_code`, ...) and `insert_device`
run inside the caller's `transaction(db)` (see `council.security.pairing`); the public device
operations (`rename_device`, `revoke_device`) open their own.
"""

from __future__ import annotations

import hmac
import sqlite3
import unicodedata
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from council.errors import NotFound
from council.store.conversations import new_id, transaction
from council.store.db import resolve_prefix
from council.timestamps import stamp

AuditEvent = Literal[
    "paired", "pairing_failed", "locked_out", "revoked", "renamed", "code_minted", "confirmed"
]
LAST_SEEN_INTERVAL = timedelta(seconds=30)
NAME_LENGTH = 60
ADDRESS_LENGTH = 64
DETAIL_LENGTH = 200
AUDIT_KEEP = 10_000
DEFAULT_DEVICE_NAME = "Phone"


def clean_text(text: str, limit: int) -> str:
    """Printable text on one line: control, format (bidi overrides) and odd characters go."""
    kept = "".join(
        ch if not unicodedata.category(ch).startswith(("C", "Z")) else " " for ch in text
    )
    line = " ".join(kept.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def clean_name(name: str | None, fallback: str = DEFAULT_DEVICE_NAME) -> str:
    return clean_text(name or "", NAME_LENGTH) or fallback


def clean_address(address: str | None) -> str:
    return clean_text(address or "", ADDRESS_LENGTH) or "unknown"


@dataclass(frozen=True)
class Device:
    id: str
    name: str
    created_at: str
    last_seen_at: str | None
    last_address: str | None
    revoked_at: str | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEVICE_COLUMNS = "id, name, created_at, last_seen_at, last_address, revoked_at"


def _device(row: tuple[Any, ...]) -> Device:
    return Device(*row)


def resolve_device_id(db: sqlite3.Connection, prefix: str) -> str:
    """A full device id from itself or a unique prefix of at least four hex characters."""
    return resolve_prefix(db, "devices", prefix, "device")


def get_device(db: sqlite3.Connection, device_id: str) -> Device:
    full_id = resolve_device_id(db, device_id)
    row = db.execute(f"SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?", (full_id,)).fetchone()  # noqa: S608
    if row is None:
        raise NotFound(f"no device {device_id!r}")
    return _device(row)


def insert_device(
    db: sqlite3.Connection, *, name: str, token_hash: str, address: str, at: str
) -> Device:
    """Record a newly paired device (inside the pairing's transaction)."""
    device = Device(new_id(), clean_name(name), at, at, clean_address(address), None)
    db.execute(
        f"INSERT INTO devices ({DEVICE_COLUMNS}, token_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
        (*asdict(device).values(), token_hash),
    )
    return device


def device_by_token_hash(
    db: sqlite3.Connection, digest: str, address: str, *, now: datetime | None = None
) -> Device | None:
    """The live device whose token hashes to `digest`, or None (unknown or revoked); its last
    sighting is recorded. `council.security.pairing.authenticate` hashes the token."""
    device = live_device_by_token_hash(db, digest)
    return None if device is None else record_sighting(db, device, address, now=now)


def live_device_by_token_hash(db: sqlite3.Connection, digest: str) -> Device | None:
    """The same lookup, reading only (the hub's gate records the sighting apart from it, so a
    stalled or read-only stick never keeps a phone out)."""
    row = db.execute(
        f"SELECT {DEVICE_COLUMNS}, token_hash FROM devices WHERE token_hash = ?",  # noqa: S608
        (digest,),
    ).fetchone()
    if row is None or not hmac.compare_digest(row[-1].encode(), digest.encode()):
        return None
    device = _device(row[:-1])
    return None if device.revoked else device


def record_sighting(
    db: sqlite3.Connection, device: Device, address: str, *, now: datetime | None = None
) -> Device:
    """Note when and from where a device was last seen, at most once per `LAST_SEEN_INTERVAL`."""
    moment = datetime.now(UTC) if now is None else now
    at, address = stamp(moment), clean_address(address)
    threshold = stamp(moment - LAST_SEEN_INTERVAL)
    # A single conditional UPDATE (autocommitted): no write at all inside the interval.
    updated = db.execute(
        """UPDATE devices SET last_seen_at = ?, last_address = ?
           WHERE id = ? AND revoked_at IS NULL AND (last_seen_at IS NULL OR last_seen_at <= ?)""",
        (at, address, device.id, threshold),
    ).rowcount
    if updated:
        device = replace(device, last_seen_at=at, last_address=address)
    return device


def sighting_due(device: Device, *, now: datetime | None = None) -> bool:
    """Whether `record_sighting` would write anything now."""
    moment = datetime.now(UTC) if now is None else now
    return device.last_seen_at is None or device.last_seen_at <= stamp(moment - LAST_SEEN_INTERVAL)


def revoked_among(db: sqlite3.Connection, device_ids: list[str]) -> list[str]:
    """Which of these devices are revoked (a cheap indexed read, polled while streams are open)."""
    marks = ",".join("?" * len(device_ids))
    query = f"SELECT id FROM devices WHERE revoked_at IS NOT NULL AND id IN ({marks})"  # noqa: S608
    return [row[0] for row in db.execute(query, device_ids)]


def list_devices(db: sqlite3.Connection, *, include_revoked: bool = True) -> list[Device]:
    """Oldest first; two paired in the same millisecond in the order they were paired."""
    query = f"SELECT {DEVICE_COLUMNS} FROM devices"  # noqa: S608
    if not include_revoked:
        query += " WHERE revoked_at IS NULL"
    return [_device(row) for row in db.execute(query + " ORDER BY created_at, rowid")]


def rename_device(db: sqlite3.Connection, device_id: str, name: str) -> Device:
    new_name = clean_name(name)
    with transaction(db):
        device = get_device(db, device_id)
        db.execute("UPDATE devices SET name = ? WHERE id = ?", (new_name, device.id))
        record_audit(db, "renamed", device_id=device.id, detail=f"{device.name!r} → {new_name!r}")
    return replace(device, name=new_name)


def revoke_device(db: sqlite3.Connection, device_id: str, *, now: datetime | None = None) -> Device:
    """Stop a device's token from working, for good. Revoking twice changes nothing."""
    at = stamp(now)
    with transaction(db):
        device = get_device(db, device_id)
        if device.revoked:
            return device
        db.execute("UPDATE devices SET revoked_at = ? WHERE id = ?", (at, device.id))
        record_audit(db, "revoked", device_id=device.id, detail=device.name, at=at)
    return replace(device, revoked_at=at)


# ---------------------------------------------------------------------------------------------
# The audit log


def record_audit(
    db: sqlite3.Connection,
    event: AuditEvent,
    *,
    device_id: str | None = None,
    address: str | None = None,
    detail: str = "",
    at: str | None = None,
) -> None:
    """Append one event (never a secret: callers pass names, reasons and addresses only)."""
    address = None if address is None else clean_address(address)
    row_id = db.execute(
        "INSERT INTO audit_log (at, event, device_id, address, detail) VALUES (?, ?, ?, ?, ?)",
        (at or stamp(), event, device_id, address, clean_text(detail, DETAIL_LENGTH)),
    ).lastrowid
    if row_id is not None and row_id % 100 == 0:  # prune now and then, not on every insert
        db.execute("DELETE FROM audit_log WHERE id <= ?", (row_id - AUDIT_KEEP,))


def audit(db: sqlite3.Connection, limit: int = 100) -> list[dict[str, Any]]:
    """The newest audit events first."""
    keys = ("id", "at", "event", "device_id", "address", "detail")
    rows = db.execute(
        "SELECT id, at, event, device_id, address, detail FROM audit_log ORDER BY id DESC LIMIT ?",
        (limit,),
    )
    return [dict(zip(keys, row, strict=True)) for row in rows]


# ---------------------------------------------------------------------------------------------
# Pairing codes (stored by hash; the caller holds the transaction)


@dataclass(frozen=True)
class CodeRow:
    code_hash: str
    name: str | None
    created_at: str
    expires_at: str
    used_at: str | None
    needs_confirmation: bool
    confirmed_at: str | None
    comparison: str
    claimed_at: str | None
    claimed_name: str | None
    claimed_address: str | None
    device_id: str | None


CODE_COLUMNS = (
    "code_hash, name, created_at, expires_at, used_at, needs_confirmation, confirmed_at, "
    "comparison, claimed_at, claimed_name, claimed_address, device_id"
)


def _code(row: tuple[Any, ...]) -> CodeRow:
    values = list(row)
    values[5] = bool(values[5])
    return CodeRow(*values)


def insert_code(
    db: sqlite3.Connection,
    *,
    code_hash: str,
    name: str | None,
    created_at: str,
    expires_at: str,
    needs_confirmation: bool,
    comparison: str,
) -> None:
    db.execute(
        """INSERT INTO pairing_codes (code_hash, name, created_at, expires_at,
                                      needs_confirmation, comparison) VALUES (?, ?, ?, ?, ?, ?)""",
        (
            code_hash,
            None if name is None else clean_name(name),
            created_at,
            expires_at,
            int(needs_confirmation),
            comparison,
        ),
    )


def find_code(db: sqlite3.Connection, code_hash: str) -> CodeRow | None:
    row = db.execute(
        f"SELECT {CODE_COLUMNS} FROM pairing_codes WHERE code_hash = ?",  # noqa: S608
        (code_hash,),
    ).fetchone()
    return None if row is None else _code(row)


def comparison_in_use(db: sqlite3.Connection, comparison: str, at: str) -> bool:
    """Whether a live (unused, unexpired) code already shows this comparison code."""
    return (
        db.execute(
            """SELECT 1 FROM pairing_codes
               WHERE comparison = ? AND used_at IS NULL AND expires_at > ? LIMIT 1""",
            (comparison, at),
        ).fetchone()
        is not None
    )


def purge_codes(db: sqlite3.Connection, before: str) -> None:
    """Forget codes that expired before `before` (their audit events stay)."""
    db.execute("DELETE FROM pairing_codes WHERE expires_at < ?", (before,))


def claim_code(db: sqlite3.Connection, code_hash: str, *, name: str, address: str, at: str) -> bool:
    """Bind a confirmation code to the first phone that presents it; False if already bound."""
    return bool(
        db.execute(
            """UPDATE pairing_codes SET claimed_at = ?, claimed_name = ?, claimed_address = ?
               WHERE code_hash = ? AND claimed_address IS NULL""",
            (at, clean_name(name), clean_address(address), code_hash),
        ).rowcount
    )


def mark_code_used(
    db: sqlite3.Connection, code_hash: str, *, device_id: str | None, at: str
) -> bool:
    """Spend a code; False if it was already spent (the UPDATE is the single-use guarantee)."""
    return bool(
        db.execute(
            """UPDATE pairing_codes SET used_at = ?, device_id = ?
               WHERE code_hash = ? AND used_at IS NULL""",
            (at, device_id, code_hash),
        ).rowcount
    )


def awaiting_confirmation(
    db: sqlite3.Connection, at: str, comparison: str | None = None
) -> list[CodeRow]:
    """Claimed, unconfirmed, unused, unexpired codes: what the owner is asked to approve."""
    query = f"""SELECT {CODE_COLUMNS} FROM pairing_codes
                WHERE needs_confirmation = 1 AND claimed_address IS NOT NULL
                  AND confirmed_at IS NULL AND used_at IS NULL AND expires_at > ?"""  # noqa: S608
    params: list[str] = [at]
    if comparison is not None:
        query += " AND comparison = ?"
        params.append(comparison)
    return [_code(row) for row in db.execute(query + " ORDER BY claimed_at", params)]


def confirm_code(db: sqlite3.Connection, code_hash: str, at: str) -> None:
    db.execute("UPDATE pairing_codes SET confirmed_at = ? WHERE code_hash = ?", (at, code_hash))
