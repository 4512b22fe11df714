"""Phone access from the terminal: a pairing code as a QR code, and the paired devices.

Both work on the data folder directly, whether or not the hub is running: the code is stored
(as a hash) in the stick's database, and the hub's LAN listener exchanges it when the phone opens
the URL. The URL carries the code and the CA's fingerprint in its fragment, which browsers never
send to a server, so neither reaches a log.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from council.datafolder import DataFolder, running_hub
from council.security import pairing
from council.security.tls import lan_addresses, load_or_create_ca, local_hostname
from council.settings import DEFAULT_LAN_PORT

NOT_SERVING_PHONES = (
    "the hub is not serving phones (start it with `./council up --lan`): "
    "this link works once it does"
)


@dataclass(frozen=True, slots=True)
class PairingInvite:
    url: str
    code: str
    fingerprint: str
    expires_at: str
    comparison: str | None
    # Said to the person beside the code (never in to_dict): why the link may not work yet.
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "code": self.code,
            "fingerprint": self.fingerprint,
            "expires_at": self.expires_at,
        }


def serving_phones(folder: DataFolder) -> str | None:
    """The LAN URL of the hub serving this data folder to phones; None when no hub runs, or
    one runs without --lan."""
    record = running_hub(folder) or {}
    lan_url = record.get("lan_url")
    return lan_url if isinstance(lan_url, str) else None


def lan_base_url(folder: DataFolder) -> str:
    """Where phones reach the hub: the running hub's LAN address, else this laptop's first."""
    served = serving_phones(folder)
    if served is not None:
        return served
    addresses = lan_addresses()
    host = addresses[0] if addresses else local_hostname()
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{DEFAULT_LAN_PORT}"


def invite(
    db: sqlite3.Connection,
    folder: DataFolder,
    *,
    name: str | None,
    ttl: int,
    confirm: bool,
    base_url: str | None = None,
) -> PairingInvite:
    """A fresh pairing code and the URL a phone opens; `base_url` (the hub's own LAN URL, when
    the caller knows it) wins over `lan_base_url`. The code is made even when no hub serves
    phones (it stays valid for its TTL, and a hub started with --lan in time takes it); the
    invite's `warning` says so."""
    served = base_url or serving_phones(folder)
    ca = load_or_create_ca(folder.tls)
    minted = pairing.mint_code(db, name=name, ttl=timedelta(seconds=ttl), confirm=confirm)
    fingerprint = ca.fingerprint.replace(":", "").lower()
    url = f"{served or lan_base_url(folder)}/pair#code={minted.code}&fp={fingerprint}"
    comparison = minted.comparison if confirm else None
    warning = None if served else NOT_SERVING_PHONES
    return PairingInvite(url, minted.code, fingerprint, minted.expires_at, comparison, warning)


def qr_text(url: str) -> str:
    import io

    import segno

    out = io.StringIO()
    segno.make(url, error="m").terminal(out=out, compact=True)
    return out.getvalue()


def await_confirmation(
    db: sqlite3.Connection,
    comparison: str,
    ask: Callable[[pairing.PendingPairing], bool],
    *,
    deadline: float,
    poll: float = 0.5,
) -> str | None:
    """Wait for a phone to claim the code, then let the person approve it; None on expiry."""
    while time.monotonic() < deadline:
        for claim in pairing.pending(db):
            if claim.comparison == comparison:
                if ask(claim):
                    return pairing.confirm(db, comparison)
                pairing.reject(db, comparison)
                return None
        time.sleep(poll)
    return None
