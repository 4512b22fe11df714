"""The laptop's owner on the localhost listener, told apart from every other account there.

Any process on the laptop reaches 127.0.0.1:8710, another user's included, so the listener asks
for proof, the way Jupyter does:

- **The owner token** (`council_owner_…`, 256 bits) lives in `owner.token` in the data folder,
  readable by its owner only. The CLI reads it from there; scripts and OpenAI clients on the
  laptop send it as their API key (`Authorization: Bearer`). It stays the same from run to run;
  deleting the file makes a new one at the next `council up`.
- **The page** gets in through a one-time login link that `council up` prints and opens
  (`/login#code=…`: the code sits in the fragment, which browsers never send to a server, so
  it reaches no log). The login page exchanges it for a session cookie (`HttpOnly`,
  `SameSite=Strict`); a code works once, for 15 minutes; `council login` mints another. Sessions
  live in the hub's memory and end with it.

Only digests are kept in memory and compared in constant time. A filesystem that cannot keep
owner-only files (FAT and exFAT sticks, where the mount decides who reads what) is reported by
`load_or_create`, and `council up` says so.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import stat
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from council.atomicfile import atomic_write
from council.datafolder import DataFolder
from council.errors import DataFolderError

FILE = "owner.token"
PREFIX = "council_owner_"
_TOKEN = re.compile(rf"{PREFIX}[A-Za-z0-9_-]{{43}}")
LOGIN_TTL = 900.0  # seconds a login link works
MAX_CODES = 16  # login links waiting at once (each `council login` makes one)
MAX_SESSIONS = 64  # logged-in browsers at once; the oldest is logged out first


def token_path(folder: DataFolder) -> Path:
    return folder.root / FILE


def read_token(folder: DataFolder) -> str | None:
    """The owner token, for the CLI; None when there is none (or it is not one)."""
    try:
        text = token_path(folder).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if _TOKEN.fullmatch(text) else None


def load_or_create(folder: DataFolder) -> tuple[str, bool]:
    """The owner token, made on first use; and whether its file is readable by its owner only
    (False on a filesystem without Unix permissions)."""
    path = token_path(folder)
    token = read_token(folder)
    if token is None:
        token = PREFIX + secrets.token_urlsafe(32)
        try:
            atomic_write(path, token + "\n", 0o600)  # created owner-only, never readable by others
        except OSError as exc:
            raise DataFolderError(f"cannot write the owner token {path}: {exc}") from None
    try:
        os.chmod(path, 0o600)
        private = stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
    except OSError:
        private = False
    return token, private


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


class OwnerAccess:
    """Who is the owner: the token's holder, or a browser logged in with a login link."""

    def __init__(self, token: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._token = _digest(token)
        self._clock = clock
        self._codes: OrderedDict[bytes, float] = OrderedDict()  # digest -> expiry
        self._sessions: OrderedDict[bytes, None] = OrderedDict()

    def holds_token(self, token: str) -> bool:
        return hmac.compare_digest(_digest(token), self._token)

    def login_code(self) -> str:
        """A new one-time code for a login link."""
        now = self._clock()
        for digest, expiry in list(self._codes.items()):
            if expiry <= now:
                del self._codes[digest]
        while len(self._codes) >= MAX_CODES:
            self._codes.popitem(last=False)
        code = secrets.token_urlsafe(24)
        self._codes[_digest(code)] = now + LOGIN_TTL
        return code

    def log_in(self, code: str) -> str | None:
        """A session for a code that is live (it is used up), else None."""
        expiry = self._codes.pop(_digest(code), None)
        if expiry is None or expiry <= self._clock():
            return None
        session = secrets.token_urlsafe(32)
        self._sessions[_digest(session)] = None
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return session

    def has_session(self, session: str) -> bool:
        return _digest(session) in self._sessions


def cookie_name(port: int) -> str:
    """Per port: cookies ignore ports, so two hubs on one laptop must not share a name."""
    return f"council_owner_{port}"
