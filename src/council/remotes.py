"""Remote seats: another council hub, or any OpenAI-compatible server (the opt-in cloud seat).

They live in `remotes.toml` in the data folder, apart from `config.toml` because they hold bearer
tokens: the file is written atomically with owner-only permissions, and tokens never leave it
(the API shows only whether a seat has one).
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import tomli_w

from council.atomicfile import atomic_write
from council.config import SEAT_NAME
from council.datafolder import DataFolder
from council.errors import BadRequest, ConfigError

FILE = "remotes.toml"


@dataclass(frozen=True, slots=True)
class RemoteSeatConfig:
    name: str
    url: str  # the base URL; requests go to <url>/v1/chat/completions
    model: str  # the model name the remote knows
    token: str = ""
    ctx_size: int = 0  # 0: unknown, history is not trimmed for this seat
    enabled: bool = True

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
    if parts.username or parts.password or parts.query or parts.fragment:
        raise BadRequest("put the token in 'token', not in the URL (URLs end up in logs)")
    if not remote.model:
        raise BadRequest("'model' names the model on the remote server")
    if remote.ctx_size < 0:
        raise BadRequest("'ctx_size' must be 0 (unknown) or a positive number of tokens")


def from_request(body: dict[str, Any], base: RemoteSeatConfig | None = None) -> RemoteSeatConfig:
    fields: dict[str, Any] = asdict(base) if base else {"token": "", "ctx_size": 0, "enabled": True}
    for key in ("name", "url", "model", "token", "ctx_size", "enabled"):
        if key in body:
            fields[key] = body[key]
    try:
        remote = RemoteSeatConfig(
            name=str(fields["name"]), url=str(fields["url"]).rstrip("/"),
            model=str(fields["model"]), token=str(fields["token"]),
            ctx_size=int(fields["ctx_size"]), enabled=bool(fields["enabled"]),
        )  # fmt: skip
    except KeyError as exc:
        raise BadRequest(f"a remote seat needs {exc.args[0]!r}") from None
    except (TypeError, ValueError):
        raise BadRequest("'ctx_size' must be a whole number") from None
    return remote


def load_remotes(folder: DataFolder) -> list[RemoteSeatConfig]:
    path = folder.root / FILE
    if not path.exists():
        return []
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        return [RemoteSeatConfig(**item) for item in raw.get("remotes", [])]
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, TypeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


def save_remotes(folder: DataFolder, remotes: list[RemoteSeatConfig]) -> None:
    path = folder.root / FILE
    text = "# council remote seats. Holds bearer tokens: keep this file private.\n"
    text += tomli_w.dumps({"remotes": [asdict(remote) for remote in remotes]})
    atomic_write(path, text, mode=0o600)
