"""Remote seats: another council hub, or any OpenAI-compatible server (the opt-in cloud seat).

They live in `remotes.toml` in the data folder, apart from `config.toml` because they hold bearer
tokens: the file is written atomically with owner-only permissions, and tokens never leave it
(the API shows only whether a seat has one).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from council.config import SEAT_NAME, typed_table
from council.datafolder import DataFolder
from council.errors import BadRequest
from council.tables import load_tables, save_tables

FILE = "remotes.toml"


@dataclass(frozen=True, slots=True)
class RemoteSeatConfig:
    name: str
    url: str  # the base URL; requests go to <url>/v1/chat/completions
    model: str  # the model name the remote knows
    token: str = ""
    ctx_size: int = 0  # 0: unknown, history is not trimmed for this seat
    enabled: bool = True
    # Loopback, link-local and private addresses (another hub on the LAN, a server on this
    # laptop) only when the owner says so for this seat (security/outbound.py says why).
    allow_private: bool = False

    def public(self) -> dict[str, Any]:
        """What the API shows: everything but the token."""
        data = asdict(self)
        data["has_token"] = bool(data.pop("token"))
        return data


def validate(remote: RemoteSeatConfig, taken: set[str]) -> None:
    if not SEAT_NAME.match(remote.name):
        raise BadRequest(f"seat name {remote.name!r} must be 1-64 letters, digits, '.', '_' or '-'")
    if remote.name in taken:
        raise BadRequest(f"there is already a seat called {remote.name!r}")
    parts = urlsplit(remote.url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise BadRequest(f"{remote.url!r} is not an http(s) URL")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError:
        raise BadRequest(f"{remote.url!r} has a port that is not from 0 to 65535") from None
    if parts.username or parts.password or parts.query or parts.fragment:
        raise BadRequest("put the token in 'token', not in the URL (URLs end up in logs)")
    if not remote.model:
        raise BadRequest("'model' names the model on the remote server")
    if remote.ctx_size < 0:
        raise BadRequest("'ctx_size' must be 0 (unknown) or a positive number of tokens")


def from_request(body: dict[str, Any], base: RemoteSeatConfig | None = None) -> RemoteSeatConfig:
    """A remote seat from an API request (over `base`, when it changes one), every value
    checked for its type like config.toml's: `"enabled": "false"` is refused, not true."""
    fields: dict[str, Any] = asdict(base) if base else {}
    fields.update({key: value for key, value in body.items() if key not in {"has_token", "kind"}})
    try:
        remote = typed_table(RemoteSeatConfig, fields, "the remote seat")
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    remote = replace(remote, url=remote.url.rstrip("/"))
    if base is not None and remote.url != base.url and "token" not in body:
        # The token was given for the old address: never send it to a new one unasked.
        remote = replace(remote, token="")
    return remote


def load_remotes(folder: DataFolder) -> list[RemoteSeatConfig]:
    """remotes.toml's seats, each checked as the API checks a new one."""

    def check(remote: RemoteSeatConfig, earlier: list[RemoteSeatConfig]) -> None:
        validate(remote, {r.name for r in earlier})

    return load_tables(folder.root / FILE, "remotes", RemoteSeatConfig, "remote seat", check)


def save_remotes(folder: DataFolder, remotes: list[RemoteSeatConfig]) -> None:
    header = "council remote seats. Holds bearer tokens: keep this file private."
    save_tables(folder.root / FILE, "remotes", header, remotes)
