"""Secrets for pairing codes and device tokens: how they are made, stored and compared.

Threat model: anyone on the same Wi-Fi can reach the hub and send it any string they like, and
anyone who later gets hold of the stick can read its database. So:

- Every secret comes from `secrets` (the OS CSPRNG). A pairing code has 128 bits and lives five
  minutes; a device token has 256 bits and lives until it is revoked. Neither can be guessed or
  enumerated over the network, whatever the attacker's request rate.
- Only the SHA-256 of a secret is stored. A high-entropy secret needs no salt or slow hash (those
  protect low-entropy passwords): the digest cannot be inverted, so a copied database yields no
  usable token.
- A secret is looked up by its digest, never by its text, so the time a lookup takes depends on
  the digest's bytes and tells an attacker nothing about how much of a guess was right.
- Device tokens carry the `council_` prefix, so a token pasted into a log, an issue or a repository
  is easy to spot by eye and by secret scanners.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

TOKEN_PREFIX = "council_"  # noqa: S105 - a label, not a secret
CODE_BYTES = 16  # 128 bits: a pairing code, short-lived and shown once as a QR code
TOKEN_BYTES = 32  # 256 bits: a device token, long-lived
MAX_SECRET_LENGTH = 256  # longer strings are never ours: refuse them before hashing


def new_secret(nbytes: int) -> str:
    """`nbytes` random bytes, URL-safe base64 without padding (fits a URL, a QR code, a header)."""
    if nbytes < CODE_BYTES:
        raise ValueError(f"a secret needs at least {CODE_BYTES} bytes, not {nbytes}")
    return base64.urlsafe_b64encode(secrets.token_bytes(nbytes)).rstrip(b"=").decode("ascii")


def new_pairing_code() -> str:
    return new_secret(CODE_BYTES)


def new_device_token() -> str:
    return TOKEN_PREFIX + new_secret(TOKEN_BYTES)


def hash_secret(secret: str) -> str:
    """The SHA-256 hex digest that is stored in place of the secret."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def secrets_match(a: str, b: str) -> bool:
    """Constant-time equality of two secrets (compares their digests, so lengths do not leak)."""
    return hmac.compare_digest(hash_secret(a).encode(), hash_secret(b).encode())


def plausible_secret(secret: str) -> bool:
    """Cheap shape check before any hashing or lookup: bounded length, printable ASCII only."""
    return 0 < len(secret) <= MAX_SECRET_LENGTH and secret.isascii() and secret.isprintable()
