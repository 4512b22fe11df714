"""Pairing a phone with the hub: one-time codes exchanged for device tokens (no HTTP here).

The owner mints a code on the laptop, which shows it as a QR code; the phone, on the same
Wi-Fi, sends it back with a name and receives a device token for `Authorization: Bearer`.
Decisions, with an attacker on the same Wi-Fi in mind:

- **Unguessable and short-lived.** A code has 128 bits and expires after five minutes; it is
  stored only as its SHA-256 and looked up by that digest, so neither the database nor the
  lookup's timing says anything about a guess. The code and the token are returned once, to the
  caller, and never written down or logged (their dataclass fields stay out of `repr`).
- **Single use.** Spending a code is one conditional UPDATE inside a `BEGIN IMMEDIATE`
  transaction, so two racing requests with the same code cannot both get a token.
- **One answer for every failure.** Unknown, expired, already used and claimed-by-someone-else all
  raise `PairingFailed("invalid or expired pairing code")`, so a probe learns nothing about which
  codes exist. The precise reason goes only to the audit log, which the owner reads.
- **Optional confirmation** (`confirm=True`), for when the QR code may have been seen by someone
  else (a camera, a screen share). The first phone to present the code *claims* it: the code is
  bound to that phone's address, its name and address appear in `pending()`, and the exchange
  answers `pending` with the comparison code. The owner approves with `confirm(db, comparison)`
  only when the phone shows the same digits as the laptop; the phone's next poll with the same
  code then gets the token. Anyone else presenting that code, before or after approval, fails. If
  an attacker claims first, the owner's own phone fails and shows no digits, so the owner does not
  approve and can `reject()` the claim. `confirm` and `reject` belong to the owner's side only (the
  terminal, or the hub's local UI): never expose them to the network, where six digits could be
  guessed.
- **Failures are rate limited** per address by `AttemptLimiter`, which the HTTP layer consults
  before calling `exchange` (answering 429 with `Retry-After`). With 128-bit codes guessing is
  hopeless anyway; the limiter keeps floods from filling the audit log and wearing the stick.
- **Names are the phone's word.** They are cleaned of control characters and shortened before they
  reach the database, a terminal or the audit log; a name the owner gives at minting wins.

What this layer cannot do: if the hub is served over plain HTTP, someone sniffing the Wi-Fi sees
the code and the token in transit. That is the transport's job (TLS), not pairing's.
"""

from __future__ import annotations

import ipaddress
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from council.errors import NotFound, PairingFailed, TooManyRequests
from council.security.tokens import (
    TOKEN_PREFIX,
    hash_secret,
    new_device_token,
    new_pairing_code,
    plausible_secret,
)
from council.settings import PAIRING_TTL, PAIRING_TTL_DEFAULT
from council.store import devices as store
from council.store.conversations import transaction
from council.timestamps import stamp

DEFAULT_TTL = timedelta(seconds=PAIRING_TTL_DEFAULT)
MAX_TTL = timedelta(seconds=PAIRING_TTL.high)
COMPARISON_DIGITS = 6
PURGE_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class MintedCode:
    """A fresh code. `code` is shown once (as a QR code) and is not stored or repr'd."""

    code: str = field(repr=False)
    name: str | None
    created_at: str
    expires_at: str
    comparison: str
    needs_confirmation: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Exchange:
    """What a phone gets back: `paired` with its token (shown once), or `pending` approval."""

    status: Literal["paired", "pending"]
    name: str
    comparison: str
    expires_at: str
    device_id: str | None = None
    token: str | None = field(default=None, repr=False)

    @property
    def paired(self) -> bool:
        return self.status == "paired"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return data if self.paired else {k: v for k, v in data.items() if k != "token"}


@dataclass(frozen=True)
class PendingPairing:
    """A phone waiting for the owner's approval, as a terminal prompt or the UI shows it."""

    name: str
    address: str
    comparison: str
    claimed_at: str
    expires_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def authenticate(
    db: sqlite3.Connection, token: str, address: str, *, now: datetime | None = None
) -> store.Device | None:
    """The live device a bearer token belongs to, or None (unknown, malformed or revoked)."""
    digest = token_digest(token)
    return None if digest is None else store.device_by_token_hash(db, digest, address, now=now)


def token_digest(token: str) -> str | None:
    """What a device token is stored as, or None for one that cannot be a token."""
    if not plausible_secret(token) or not token.startswith(TOKEN_PREFIX):
        return None
    return hash_secret(token)


def _moment(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else now


def _new_comparison(db: sqlite3.Connection, at: str) -> str:
    """Six digits no other live code shows, so `confirm` can never approve the wrong phone."""
    for _ in range(100):
        comparison = f"{secrets.randbelow(10**COMPARISON_DIGITS):0{COMPARISON_DIGITS}d}"
        if not store.comparison_in_use(db, comparison, at):
            return comparison
    raise TooManyRequests("too many pairing codes are live at once; wait a few minutes")


def mint_code(
    db: sqlite3.Connection,
    *,
    name: str | None = None,
    ttl: timedelta = DEFAULT_TTL,
    confirm: bool = False,
    now: datetime | None = None,
) -> MintedCode:
    """A new one-time pairing code; `name` (optional) names the device it will pair."""
    if not timedelta(0) < ttl <= MAX_TTL:
        raise ValueError(f"a pairing code lives between 0 and {MAX_TTL}, not {ttl}")
    moment = _moment(now)
    at, expires_at = stamp(moment), stamp(moment + ttl)
    code = new_pairing_code()
    clean = store.clean_text(name or "", store.NAME_LENGTH) or None  # "" leaves it to the phone
    with transaction(db):
        store.purge_codes(db, stamp(moment - PURGE_AFTER))
        comparison = _new_comparison(db, at)
        store.insert_code(
            db,
            code_hash=hash_secret(code),
            name=clean,
            created_at=at,
            expires_at=expires_at,
            needs_confirmation=confirm,
            comparison=comparison,
        )
        detail = f"for {clean or 'an unnamed device'}, expires {expires_at}"
        store.record_audit(
            db, "code_minted", detail=detail + (", needs confirmation" if confirm else ""), at=at
        )
    return MintedCode(code, clean, at, expires_at, comparison, confirm)


def _refusal(row: store.CodeRow | None, address: str, at: str) -> str | None:
    """Why this code cannot be used now, for the audit log only (the phone never sees it)."""
    if row is None:
        return "unknown code"
    if row.used_at is not None:
        return "code already used"
    if row.expires_at <= at:
        return "code expired"
    if row.claimed_address is not None and row.claimed_address != address:
        return f"code already claimed by {row.claimed_address}"
    return None


def exchange(
    db: sqlite3.Connection,
    code: str,
    device_name: str,
    address: str,
    *,
    now: datetime | None = None,
) -> Exchange:
    """Trade a pairing code for a device token, or for `pending` while the owner confirms.

    Raises `PairingFailed` (always the same message) for any code that cannot be used, after
    recording the real reason as `pairing_failed` in the audit log.
    """
    moment = _moment(now)
    at, address = stamp(moment), store.clean_address(address)
    result: Exchange | None = None
    with transaction(db):
        well_formed = plausible_secret(code)  # never hash megabytes from the network
        row = store.find_code(db, hash_secret(code)) if well_formed else None
        reason = _refusal(row, address, at) if well_formed else "malformed code"
        if reason is not None or row is None:
            spent_by = None if row is None else row.device_id
            store.record_audit(
                db,
                "pairing_failed",
                device_id=spent_by,
                address=address,
                detail=reason or "",
                at=at,
            )
        elif row.needs_confirmation and row.confirmed_at is None:
            if row.claimed_address is None:
                store.claim_code(db, row.code_hash, name=device_name, address=address, at=at)
            name = row.name or store.clean_name(row.claimed_name or device_name)
            result = Exchange("pending", name, row.comparison, row.expires_at)
        else:
            name = row.name or store.clean_name(row.claimed_name or device_name)
            token = new_device_token()
            device = store.insert_device(
                db, name=name, token_hash=hash_secret(token), address=address, at=at
            )
            if not store.mark_code_used(db, row.code_hash, device_id=device.id, at=at):
                raise RuntimeError("pairing code spent twice inside one transaction")
            detail = name + (" (confirmed)" if row.needs_confirmation else "")
            store.record_audit(
                db, "paired", device_id=device.id, address=address, detail=detail, at=at
            )
            result = Exchange("paired", name, row.comparison, row.expires_at, device.id, token)
    if result is None:
        raise PairingFailed
    return result


def pending(db: sqlite3.Connection, *, now: datetime | None = None) -> list[PendingPairing]:
    """Phones that presented a confirmation code and wait for the owner's approval."""
    return [
        PendingPairing(
            row.name or store.clean_name(row.claimed_name),
            row.claimed_address or "unknown",
            row.comparison,
            row.claimed_at or row.created_at,
            row.expires_at,
        )
        for row in store.awaiting_confirmation(db, stamp(_moment(now)))
    ]


def _awaiting(db: sqlite3.Connection, comparison: str, at: str) -> store.CodeRow:
    rows = store.awaiting_confirmation(db, at, comparison.strip())
    if len(rows) != 1:
        raise NotFound(f"no phone is waiting for approval with code {comparison.strip()!r}")
    return rows[0]


def confirm(db: sqlite3.Connection, comparison: str, *, now: datetime | None = None) -> str:
    """The owner approves the waiting phone that shows `comparison`; returns its name.

    Raises `NotFound` if no claimed, unexpired code shows that comparison code.
    """
    at = stamp(_moment(now))
    with transaction(db):
        row = _awaiting(db, comparison, at)
        name = row.name or store.clean_name(row.claimed_name)
        store.confirm_code(db, row.code_hash, at)
        store.record_audit(db, "confirmed", address=row.claimed_address, detail=name, at=at)
    return name


def reject(db: sqlite3.Connection, comparison: str, *, now: datetime | None = None) -> str:
    """The owner refuses the waiting phone that shows `comparison`: its code is spent unused."""
    at = stamp(_moment(now))
    with transaction(db):
        row = _awaiting(db, comparison, at)
        name = row.name or store.clean_name(row.claimed_name)
        store.mark_code_used(db, row.code_hash, device_id=None, at=at)
        detail = f"{name}: rejected by the owner"
        store.record_audit(db, "pairing_failed", address=row.claimed_address, detail=detail, at=at)
    return name


# ---------------------------------------------------------------------------------------------
# Rate limiting


@dataclass
class _Attempts:
    failures: list[float] = field(default_factory=list)
    strikes: int = 0  # lockouts so far: each one lasts twice as long as the one before
    locked_until: float = 0.0


class AttemptLimiter:
    """Failed attempts per address, in memory: too many in a window lock the address out.

    `max_failures` failures within `window` seconds lock the address out for `first_lockout`
    seconds, doubling with each further lockout up to `max_lockout`; after `max_lockout` seconds
    of calm the count starts over, and a success forgets the address at once.

    Usage by the HTTP layer (times are `time.monotonic()` seconds unless given)::

        if (wait := limiter.check(address)) is not None:
            return 429 with Retry-After: ceil(wait)
        try: result = exchange(db, code, name, address)
        except PairingFailed: limiter.failure(address, db=db); return 400
        limiter.success(address)

    `failure` returns the length of the lockout it started (else None) and, when given `db`,
    records it as a `locked_out` audit event itself.

    Memory is bounded: at most `max_addresses` entries, the least recently failing evicted first.
    IPv6 addresses count per /64 (one host can hold a whole /64, so per-address counting would
    be no limit at all); the price is that hosts sharing a /64 share a budget.
    """

    def __init__(
        self,
        *,
        max_failures: int = 5,
        window: float = 60.0,
        first_lockout: float = 60.0,
        max_lockout: float = 3600.0,
        max_addresses: int = 10_000,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.first_lockout = first_lockout
        self.max_lockout = max_lockout
        self.max_addresses = max_addresses
        self._entries: OrderedDict[str, _Attempts] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, address: object) -> bool:
        return isinstance(address, str) and self.key(address) in self._entries

    @staticmethod
    def key(address: str) -> str:
        """The bucket an address counts in: IPv4 as is, IPv6 by its /64."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return address[: store.ADDRESS_LENGTH]
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.ipv4_mapped is not None:
                return str(ip.ipv4_mapped)
            return str(ipaddress.IPv6Network((ip, 64), strict=False))
        return str(ip)

    @staticmethod
    def _now(now: float | None) -> float:
        return time.monotonic() if now is None else now

    def check(self, address: str, now: float | None = None) -> float | None:
        """Seconds this address must still wait, or None when it may try."""
        moment = self._now(now)
        with self._lock:
            entry = self._entries.get(self.key(address))
            if entry is None or entry.locked_until <= moment:
                return None
            return entry.locked_until - moment

    def failure(
        self, address: str, now: float | None = None, *, db: sqlite3.Connection | None = None
    ) -> float | None:
        """Count one failure; returns the seconds of the lockout it started, if it started one."""
        moment, key = self._now(now), self.key(address)
        with self._lock:
            entry = self._entries.pop(key, None) or _Attempts()
            self._entries[key] = entry  # most recent at the end
            while len(self._entries) > self.max_addresses:
                self._entries.popitem(last=False)
            if entry.locked_until > moment:
                return None  # already locked out: the caller should have asked `check`
            if entry.strikes and moment - entry.locked_until > self.max_lockout:
                entry.strikes = 0  # long calm since the last lockout: start over
            entry.failures = [t for t in entry.failures if moment - t < self.window]
            entry.failures.append(moment)
            if len(entry.failures) < self.max_failures:
                return None
            lockout = min(self.first_lockout * 2.0**entry.strikes, self.max_lockout)
            entry.strikes += 1
            entry.failures.clear()
            entry.locked_until = moment + lockout
        if db is not None:
            store.record_audit(db, "locked_out", address=address, detail=self.detail(lockout))
        return lockout

    def detail(self, lockout: float) -> str:
        """The audit log's words for a lockout."""
        return f"{self.max_failures} failures: locked out for {lockout:.0f} s"

    def success(self, address: str) -> None:
        with self._lock:
            self._entries.pop(self.key(address), None)
