from __future__ import annotations

import base64
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from council.errors import BadRequest, NotFound, PairingFailed
from council.security import pairing
from council.security.pairing import AttemptLimiter
from council.security.tokens import (
    TOKEN_PREFIX,
    hash_secret,
    new_device_token,
    new_pairing_code,
    new_secret,
    secrets_match,
)
from council.store import devices
from council.store.db import connect
from council.timestamps import stamp

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
PHONE = "192.168.1.23"
ATTACKER = "192.168.1.66"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "council.db"


@pytest.fixture
def db(db_path: Path) -> sqlite3.Connection:
    return connect(db_path)


def entropy_bits(secret: str) -> int:
    return len(base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))) * 8


def pair(db: sqlite3.Connection, name: str = "Pixel") -> pairing.Exchange:
    minted = pairing.mint_code(db, name=None, now=T0)
    return pairing.exchange(db, minted.code, name, PHONE, now=T0 + timedelta(seconds=5))


def database_bytes(db: sqlite3.Connection, path: Path) -> bytes:
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_tokens_have_256_bits_and_codes_128_bits_and_tokens_are_recognisable() -> None:
    token, code = new_device_token(), new_pairing_code()
    assert token.startswith(TOKEN_PREFIX)
    assert entropy_bits(token.removeprefix(TOKEN_PREFIX)) >= 256
    assert entropy_bits(code) >= 128
    assert len({new_device_token() for _ in range(50)}) == 50
    with pytest.raises(ValueError, match="at least"):
        new_secret(8)


def test_secrets_are_hashed_with_sha256_and_compared_whole() -> None:
    assert hash_secret("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert secrets_match("council_x", "council_x")
    assert not secrets_match("council_x", "council_y")
    assert not secrets_match("council_x", "council_x ")


def test_only_hashes_of_codes_and_tokens_reach_the_database(
    db: sqlite3.Connection, db_path: Path
) -> None:
    minted = pairing.mint_code(db, name="Pixel", now=T0)
    result = pairing.exchange(db, minted.code, "Pixel", PHONE, now=T0)
    assert result.token is not None
    stored = database_bytes(db, db_path)
    assert minted.code.encode() not in stored
    assert result.token.encode() not in stored
    assert hash_secret(result.token).encode() in stored
    assert minted.code not in repr(minted)
    assert result.token not in repr(result)


def test_a_code_pairs_once_and_a_second_use_fails(db: sqlite3.Connection) -> None:
    minted = pairing.mint_code(db, name=None, now=T0)
    result = pairing.exchange(db, minted.code, "Pixel 8", PHONE, now=T0 + timedelta(minutes=1))
    assert result.paired
    assert result.device_id
    assert result.token
    assert result.name == "Pixel 8"
    assert result.comparison == minted.comparison
    device = pairing.authenticate(db, result.token, PHONE, now=T0 + timedelta(minutes=2))
    assert device is not None
    assert device.id == result.device_id
    with pytest.raises(PairingFailed, match=r"^invalid or expired pairing code$"):
        pairing.exchange(db, minted.code, "Thief", ATTACKER, now=T0 + timedelta(minutes=1))
    assert [d.name for d in devices.list_devices(db)] == ["Pixel 8"]


def test_a_name_given_when_minting_wins_over_the_phones_own(db: sqlite3.Connection) -> None:
    minted = pairing.mint_code(db, name="Anna's phone", now=T0)
    assert pairing.exchange(db, minted.code, "Pixel", PHONE, now=T0).name == "Anna's phone"
    unnamed = pairing.mint_code(db, name="", now=T0)
    assert pairing.exchange(db, unnamed.code, "Pixel", PHONE, now=T0).name == "Pixel"


def test_an_expired_code_fails(db: sqlite3.Connection) -> None:
    minted = pairing.mint_code(db, name=None, ttl=timedelta(minutes=5), now=T0)
    with pytest.raises(PairingFailed, match=r"^invalid or expired pairing code$"):
        pairing.exchange(db, minted.code, "Pixel", PHONE, now=T0 + timedelta(minutes=5))


def test_an_unknown_or_malformed_code_fails_with_the_same_message(
    db: sqlite3.Connection,
) -> None:
    pairing.mint_code(db, name=None, now=T0)
    messages = set()
    for code in (new_pairing_code(), "", "x" * 10_000, "\x1b[2Jcode"):
        with pytest.raises(PairingFailed) as failure:
            pairing.exchange(db, code, "Pixel", ATTACKER, now=T0)
        messages.add(str(failure.value))
    assert messages == {"invalid or expired pairing code"}


def test_a_confirmation_code_waits_for_the_owner_then_pairs(db: sqlite3.Connection) -> None:
    minted = pairing.mint_code(db, name=None, confirm=True, now=T0)
    first = pairing.exchange(db, minted.code, "Pixel", PHONE, now=T0 + timedelta(seconds=10))
    assert first.status == "pending"
    assert first.token is None
    assert first.device_id is None
    assert "token" not in first.to_dict()
    [waiting] = pairing.pending(db, now=T0 + timedelta(seconds=11))
    assert (waiting.name, waiting.address) == ("Pixel", PHONE)
    assert waiting.comparison == first.comparison == minted.comparison  # both sides show it

    again = pairing.exchange(db, minted.code, "Pixel", PHONE, now=T0 + timedelta(seconds=12))
    assert again.status == "pending"  # polling does not pair before the owner approves
    assert pairing.confirm(db, minted.comparison, now=T0 + timedelta(seconds=20)) == "Pixel"
    assert pairing.pending(db, now=T0 + timedelta(seconds=21)) == []

    done = pairing.exchange(db, minted.code, "Pixel", PHONE, now=T0 + timedelta(seconds=30))
    assert done.paired
    assert done.token
    assert pairing.authenticate(db, done.token, PHONE, now=T0 + timedelta(seconds=31))
    with pytest.raises(PairingFailed):
        pairing.exchange(db, minted.code, "Pixel", PHONE, now=T0 + timedelta(seconds=32))


def test_a_confirmation_code_is_bound_to_the_first_phone_that_presents_it(
    db: sqlite3.Connection,
) -> None:
    minted = pairing.mint_code(db, name=None, confirm=True, now=T0)
    pairing.exchange(db, minted.code, "Pixel", PHONE, now=T0)
    with pytest.raises(PairingFailed):
        pairing.exchange(db, minted.code, "Pixel", ATTACKER, now=T0)
    pairing.confirm(db, minted.comparison, now=T0)
    with pytest.raises(PairingFailed):  # approval is for the claimant only
        pairing.exchange(db, minted.code, "Pixel", ATTACKER, now=T0)
    assert pairing.exchange(db, minted.code, "Pixel", PHONE, now=T0).paired


def test_the_owner_cannot_confirm_an_unclaimed_or_unknown_pairing(
    db: sqlite3.Connection,
) -> None:
    minted = pairing.mint_code(db, name=None, confirm=True, now=T0)
    with pytest.raises(NotFound):
        pairing.confirm(db, minted.comparison, now=T0)  # no phone has presented it yet
    pairing.exchange(db, minted.code, "Pixel", PHONE, now=T0)
    with pytest.raises(NotFound):
        pairing.confirm(db, "not-it", now=T0)
    with pytest.raises(NotFound):
        pairing.confirm(db, minted.comparison, now=T0 + timedelta(minutes=6))  # expired


def test_a_rejected_claim_can_never_pair(db: sqlite3.Connection) -> None:
    minted = pairing.mint_code(db, name=None, confirm=True, now=T0)
    pairing.exchange(db, minted.code, "Evil", ATTACKER, now=T0)
    assert pairing.reject(db, minted.comparison, now=T0) == "Evil"
    with pytest.raises(PairingFailed):
        pairing.exchange(db, minted.code, "Evil", ATTACKER, now=T0)
    assert devices.list_devices(db) == []


def test_live_codes_show_distinct_comparison_codes(db: sqlite3.Connection) -> None:
    codes = [pairing.mint_code(db, name=None, now=T0) for _ in range(20)]
    assert len({c.comparison for c in codes}) == 20
    assert all(len(c.comparison) == 6 for c in codes)
    assert all(c.comparison.isdigit() for c in codes)


def test_a_hostile_device_name_is_cleaned_before_it_is_stored(db: sqlite3.Connection) -> None:
    result = pair(db, name="\x1b[31mEvil\u202e\nphone" + "x" * 500)
    [device] = devices.list_devices(db)
    assert device.name == result.name
    assert "\x1b" not in device.name
    assert "\n" not in device.name
    assert "\u202e" not in device.name
    assert device.name.startswith("[31mEvil phone")
    assert len(device.name) <= devices.NAME_LENGTH
    assert pair(db, name="  \t ").name == devices.DEFAULT_DEVICE_NAME


def test_a_revoked_device_no_longer_authenticates(db: sqlite3.Connection) -> None:
    result = pair(db)
    assert result.token
    assert result.device_id
    assert pairing.authenticate(db, result.token, PHONE) is not None
    revoked = devices.revoke_device(db, result.device_id[:6], now=T0 + timedelta(hours=1))
    assert revoked.revoked_at is not None
    assert pairing.authenticate(db, result.token, PHONE) is None
    assert devices.revoke_device(db, result.device_id).revoked_at == revoked.revoked_at


def test_wrong_or_malformed_tokens_do_not_authenticate(db: sqlite3.Connection) -> None:
    result = pair(db)
    assert result.token
    wrong = [new_device_token(), result.token[:-1], result.token + "x", "council_" + "a" * 5000]
    for token in ["", *wrong, result.token.removeprefix(TOKEN_PREFIX)]:
        assert pairing.authenticate(db, token, PHONE) is None


def test_last_seen_is_written_at_most_every_thirty_seconds(db: sqlite3.Connection) -> None:
    result = pair(db)
    assert result.token
    first = pairing.authenticate(db, result.token, "10.0.0.1", now=T0 + timedelta(minutes=1))
    assert first is not None
    assert first.last_address == "10.0.0.1"
    changes = db.total_changes
    soon = pairing.authenticate(db, result.token, "10.0.0.2", now=T0 + timedelta(seconds=80))
    assert soon is not None
    assert soon.last_seen_at == first.last_seen_at
    assert soon.last_address == "10.0.0.1"
    assert db.total_changes == changes  # no write inside the interval
    later = pairing.authenticate(db, result.token, "10.0.0.2", now=T0 + timedelta(seconds=91))
    assert later is not None
    assert later.last_address == "10.0.0.2"
    assert later.last_seen_at == stamp(T0 + timedelta(seconds=91))
    [stored] = devices.list_devices(db)
    assert stored == later


def test_devices_are_listed_renamed_and_resolved_by_prefix(db: sqlite3.Connection) -> None:
    result = pair(db)
    assert result.device_id
    renamed = devices.rename_device(db, result.device_id[:4], "Kitchen\ttablet")
    assert renamed.name == "Kitchen tablet"
    assert devices.list_devices(db)[0].to_dict()["name"] == "Kitchen tablet"
    assert devices.list_devices(db, include_revoked=False) == [renamed]


def test_renaming_or_revoking_an_unknown_device_raises_not_found(
    db: sqlite3.Connection,
) -> None:
    result = pair(db)
    assert result.device_id
    for device_id in ("ffffffffffffffff", "zzzz"):
        with pytest.raises(NotFound):
            devices.rename_device(db, device_id, "x")
        with pytest.raises(NotFound):
            devices.revoke_device(db, device_id)
    with pytest.raises(BadRequest, match="too short: give at least 4 characters"):
        devices.revoke_device(db, result.device_id[:3])


def test_the_audit_log_records_pairings_failures_and_revocations_without_secrets(
    db: sqlite3.Connection,
) -> None:
    minted = pairing.mint_code(db, name="Pixel", now=T0)
    result = pairing.exchange(db, minted.code, "Pixel", PHONE, now=T0)
    assert result.token
    assert result.device_id
    with pytest.raises(PairingFailed):
        pairing.exchange(db, minted.code, "Pixel", ATTACKER, now=T0)
    devices.revoke_device(db, result.device_id)
    entries = devices.audit(db)
    assert [e["event"] for e in entries] == ["revoked", "pairing_failed", "paired", "code_minted"]
    failed = entries[1]
    assert failed["address"] == ATTACKER
    assert failed["detail"] == "code already used"
    assert failed["device_id"] == result.device_id  # the leaked code's device is worth a look
    assert entries[2]["device_id"] == result.device_id
    assert entries[2]["address"] == PHONE
    dump = repr(entries)
    assert minted.code not in dump
    assert result.token not in dump
    assert hash_secret(minted.code) not in dump
    assert hash_secret(result.token) not in dump
    assert devices.audit(db, limit=1) == entries[:1]


def test_the_limiter_locks_out_after_five_failures_with_growing_waits(
    db: sqlite3.Connection,
) -> None:
    limiter = AttemptLimiter()
    assert limiter.check(ATTACKER, 0.0) is None
    for second in range(4):
        assert limiter.failure(ATTACKER, float(second)) is None
    assert limiter.failure(ATTACKER, 4.0, db=db) == 60.0
    assert limiter.check(ATTACKER, 4.0) == 60.0
    assert limiter.check(ATTACKER, 34.0) == 30.0
    assert limiter.check(PHONE, 34.0) is None  # other addresses are unaffected
    assert limiter.check(ATTACKER, 64.0) is None

    lockouts = []
    start = 64.0
    for _ in range(8):
        for i in range(5):
            result = limiter.failure(ATTACKER, start + i)
        assert result is not None
        lockouts.append(result)
        start += 4 + result
    assert lockouts == [120.0, 240.0, 480.0, 960.0, 1920.0, 3600.0, 3600.0, 3600.0]
    [locked] = devices.audit(db)
    assert (locked["event"], locked["address"]) == ("locked_out", ATTACKER)


def test_failures_spread_beyond_the_window_do_not_lock_out() -> None:
    limiter = AttemptLimiter()
    assert all(limiter.failure(ATTACKER, t * 15.0) is None for t in range(20))


def test_the_limiter_forgets_an_address_after_a_success() -> None:
    limiter = AttemptLimiter()
    for second in range(5):
        limiter.failure(ATTACKER, float(second))
    limiter.success(ATTACKER)
    assert limiter.check(ATTACKER, 5.0) is None
    assert all(limiter.failure(ATTACKER, 5.0 + s) is None for s in range(4))
    assert limiter.failure(ATTACKER, 9.0) == 60.0  # back to the first, shortest lockout


def test_the_limiter_memory_is_bounded() -> None:
    limiter = AttemptLimiter(max_addresses=100)
    for n in range(1000):
        limiter.failure(f"10.0.{n // 256}.{n % 256}", 0.0)
    assert len(limiter) == 100
    assert "10.0.3.231" in limiter  # the newest are kept
    assert "10.0.0.0" not in limiter


def test_the_limiter_counts_ipv6_per_64_and_unwraps_mapped_ipv4() -> None:
    limiter = AttemptLimiter()
    for n in range(5):
        limiter.failure(f"2001:db8::{n:x}", 0.0)  # one host, five addresses in its /64
    assert limiter.check("2001:db8::ffff:1", 0.0) == 60.0
    assert limiter.check("2001:db8:0:1::1", 0.0) is None
    assert AttemptLimiter.key("::ffff:192.168.1.23") == PHONE
