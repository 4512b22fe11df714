"""Other council hubs this one may call on ("peers"): pairing with one, and the file keeping them.

A peer is another hub on the LAN. Joining it is pairing with it exactly as a phone does, from
the link its `council pair` prints (`https://<host>:<port>/pair#code=…&fp=…`): the link's
fingerprint pins the peer's certificate authority, which is fetched from its `/ca.pem` and
compared before anything secret is sent; the one-time code is then traded for a device token
over TLS verified against that CA alone (not the system's roots: a public CA vouching for a LAN
address says nothing). To the peer, this hub is one more paired device, a guest: it may ask the
peer's seats through `/v1` and reaches nothing of the peer owner's (server/roles.py), and the
peer never sees this hub's seats, conversations or tokens.

The token and the pinned CA live in `peers.toml`, written atomically and owner-only, as remote
seats' tokens are; the token is never printed, logged or shown by the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import re
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from council.datafolder import DataFolder
from council.errors import BadRequest, CouncilError, Forbidden, NotFound
from council.security.tls import local_hostname
from council.tables import load_tables, save_tables

FILE = "peers.toml"
COUNCIL_MODEL = "council"  # what a hub's /v1/models calls the council itself (openai_api.py)
# A peer's name prefixes its seats' names (`kitchen/qwen`), so it holds no '/' of its own.
PEER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
MAX_CA = 64 * 1024  # bytes of /ca.pem read: a certificate is about 1 KB
TIMEOUT = httpx.Timeout(10.0)


@dataclass(frozen=True, slots=True)
class PeerConfig:
    name: str
    url: str  # the peer's LAN listener, https://host:port
    fingerprint: str  # SHA-256 of its CA certificate (DER), lowercase hex, from the link
    ca: str  # that CA certificate, PEM: the only authority its TLS is checked against
    token: str  # this hub's device token on the peer
    enabled: bool = True

    def public(self) -> dict[str, Any]:
        """What may be shown: everything but the token and the certificate."""
        return {
            "name": self.name,
            "url": self.url,
            "fingerprint": self.fingerprint,
            "enabled": self.enabled,
        }

    def trust(self) -> ssl.SSLContext:
        return trust(self.ca)

    def client(self, timeout: httpx.Timeout = TIMEOUT) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url,
            verify=self.trust(),
            trust_env=False,  # no proxy from the environment sees a peer's token
            timeout=timeout,
            headers={"authorization": f"Bearer {self.token}"},
        )


@dataclass(frozen=True, slots=True)
class PeerLink:
    base: str  # https://host:port
    code: str
    fingerprint: str

    @classmethod
    def parse(cls, url: str) -> PeerLink:
        """The link another hub's `council pair` prints, or a clear refusal."""
        parts = urlsplit(url.strip())
        fields = {key: values[0] for key, values in parse_qs(parts.fragment).items()}
        if parts.scheme != "https" or not parts.hostname:
            raise BadRequest(
                "give the https:// link another hub's `./council pair` prints "
                "(https://<host>:<port>/pair#code=…&fp=…)"
            )
        if parts.path.rstrip("/") != "/pair" or "code" not in fields or "fp" not in fields:
            raise BadRequest(
                "that is not a pairing link: it ends in /pair#code=…&fp=… (run `./council pair` "
                "on the other hub)"
            )
        fingerprint = fields["fp"].replace(":", "").lower()
        if not re.fullmatch(r"[0-9a-f]{64}", fingerprint):
            raise BadRequest("the link's fp is not a SHA-256 fingerprint: copy the whole link")
        try:
            port = parts.port or 443
        except ValueError:
            raise BadRequest("the link's port is not a number from 0 to 65535") from None
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        return cls(f"https://{host}:{port}", fields["code"], fingerprint)


def trust(ca_pem: str) -> ssl.SSLContext:
    """TLS that believes this one CA and nothing else, names and addresses still checked."""
    context = ssl.create_default_context(cadata=ca_pem)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def unique_name(item: Any, earlier: list[Any]) -> None:
    """A peer's or a worker's name: valid, and not one an earlier entry has."""
    if not PEER_NAME.match(item.name) or item.name in {each.name for each in earlier}:
        raise ValueError("the name is not valid or is repeated")


def load_peers(folder: DataFolder) -> list[PeerConfig]:
    return load_tables(folder.root / FILE, "peers", PeerConfig, "peer", unique_name)


def save_peers(folder: DataFolder, peers: list[PeerConfig]) -> None:
    header = "council peers: other hubs this one pairs with. Holds tokens: keep it private."
    save_tables(folder.root / FILE, "peers", header, peers)


def peer_name(name: str | None, link: PeerLink, taken: set[str]) -> str:
    """The name asked for, or one made from the peer's host (`kitchen-local`)."""
    if name is not None:
        if not PEER_NAME.match(name):
            raise BadRequest(
                f"peer name {name!r} must be 1-32 letters, digits, '_' or '-' (it prefixes "
                "its seats' names, as in kitchen/qwen)"
            )
        if name in taken:
            raise BadRequest(f"there is already a peer called {name!r}")
        return name
    host = urlsplit(link.base).hostname or "peer"
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", host).strip("-")[:28] or "peer"
    candidates = (stem if n == 1 else f"{stem}-{n}" for n in range(1, 100))
    return next(candidate for candidate in candidates if candidate not in taken)


@dataclass(frozen=True, slots=True)
class Joined:
    peer: PeerConfig
    seats: list[str]  # the peer's seats, as its /v1/models names them


async def pair_with(
    peers: list[PeerConfig], url: str, name: str | None = None, wait: float = 300.0
) -> Joined:
    """Pair with the hub whose `council pair` link is `url` (`peers`: the ones this hub has
    already, which it must not repeat); nothing is written: the caller keeps the result."""
    link = PeerLink.parse(url)
    for known in peers:
        if known.url == link.base:
            raise BadRequest(f"this hub is paired with {link.base} already, as {known.name!r}")
    name = peer_name(name, link, {peer.name for peer in peers})
    ca = await fetch_ca(link)
    token = await exchange(link, ca, f"council hub on {local_hostname()}", wait)
    peer = PeerConfig(name, link.base, link.fingerprint, ca, token)
    return Joined(peer, await peer_seats(peer))  # the token works, or nothing is kept


async def join(
    folder: DataFolder, url: str, name: str | None = None, wait: float = 300.0
) -> Joined:
    """`pair_with`, and the new peer kept in peers.toml (when no hub runs to keep it)."""
    peers = load_peers(folder)
    joined = await pair_with(peers, url, name, wait)
    save_peers(folder, [*peers, joined.peer])
    return joined


async def fetch_ca(link: PeerLink) -> str:
    """The peer's CA certificate, if its SHA-256 is the link's: the request carries nothing
    secret, so it may go out unverified; what it brings back is checked before it is used."""
    async with httpx.AsyncClient(verify=False, trust_env=False, timeout=TIMEOUT) as client:  # noqa: S501
        try:
            async with client.stream("GET", f"{link.base}/ca.pem") as response:
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_CA:
                        raise CouncilError(f"{link.base}/ca.pem is too large for a certificate")
        except httpx.HTTPError as exc:
            raise CouncilError(f"cannot reach the hub at {link.base}: {_why(exc)}") from None
    if response.status_code != 200:
        raise CouncilError(
            f"{link.base} did not give its certificate authority (HTTP {response.status_code}): "
            "is it a council hub serving phones (`./council up --lan`)?"
        )
    try:
        certificate = x509.load_pem_x509_certificate(body)
    except ValueError:
        raise CouncilError(f"{link.base}/ca.pem is not a certificate") from None
    found = certificate.fingerprint(hashes.SHA256()).hex()
    if not hmac.compare_digest(found, link.fingerprint):
        raise Forbidden(
            f"the hub at {link.base} shows a certificate authority with fingerprint {found}, "
            f"not the link's {link.fingerprint}: nothing was sent (is another machine "
            "answering at that address?)"
        )
    return body.decode()


async def exchange(link: PeerLink, ca: str, device_name: str, wait: float) -> str:
    """Trade the link's code for a device token; while the peer's owner has to approve the
    pairing (`council pair --confirm` there), ask again until they do or the wait ends."""
    deadline = time.monotonic() + wait
    body = {"code": link.code, "name": device_name}
    async with httpx.AsyncClient(verify=trust(ca), trust_env=False, timeout=TIMEOUT) as client:
        while True:
            try:
                response = await client.post(f"{link.base}/pair/exchange", json=body)
            except httpx.HTTPError as exc:
                raise CouncilError(f"pairing with {link.base} failed: {_why(exc)}") from None
            answer = _json(response)
            if response.status_code == 200 and isinstance(answer.get("token"), str):
                return str(answer["token"])
            if response.status_code == 202 and time.monotonic() < deadline:
                await asyncio.sleep(1.0)  # the owner there approves; the code stays claimed
                continue
            if response.status_code == 202:
                raise Forbidden(f"the owner of {link.base} did not approve the pairing in time")
            if response.status_code == 429:
                raise CouncilError(f"{link.base} refuses pairing attempts for now: wait and retry")
            raise Forbidden(
                f"{link.base} refused the pairing code (used, expired or mistyped): mint a new "
                "one there with `./council pair`"
            )


async def peer_seats(peer: PeerConfig, client: httpx.AsyncClient | None = None) -> list[str]:
    """The seats the peer offers this hub: its `/v1/models` less the council itself (`client`:
    one made by `peer.client()` and kept; without one, a client for this call)."""
    async with contextlib.AsyncExitStack() as stack:
        if client is None:
            client = await stack.enter_async_context(peer.client())
        try:
            response = await client.get(f"{peer.url}/v1/models", timeout=5.0)
        except httpx.HTTPError as exc:
            reason = _why(exc)
            raise CouncilError(f"cannot reach peer {peer.name} at {peer.url}: {reason}") from None
    if response.status_code == 401:
        raise Forbidden(
            f"peer {peer.name} no longer accepts this hub's token (was it revoked there?)"
        )
    if response.status_code != 200:
        raise CouncilError(f"peer {peer.name} answered HTTP {response.status_code} for its seats")
    rows = _json(response).get("data")
    names = (
        [row.get("id") for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []
    )
    return [
        str(name)
        for name in names
        if isinstance(name, str) and name != COUNCIL_MODEL and not name.startswith("council:")
    ]


async def survey(folder: DataFolder) -> list[dict[str, Any]]:
    """Every peer with its seats, or the reason it cannot be reached now."""

    async def one(peer: PeerConfig) -> dict[str, Any]:
        row: dict[str, Any] = {**peer.public(), "seats": [], "state": "reachable", "reason": None}
        try:
            row["seats"] = await peer_seats(peer)
        except CouncilError as exc:
            row |= {"state": "unreachable", "reason": str(exc)}
        return row

    return list(await asyncio.gather(*(one(peer) for peer in load_peers(folder))))


def remove(folder: DataFolder, name: str) -> PeerConfig:
    peers = load_peers(folder)
    found = next((peer for peer in peers if peer.name == name), None)
    if found is None:
        names = ", ".join(peer.name for peer in peers) or "none"
        raise NotFound(f"no peer {name!r} (the peers: {names})")
    save_peers(folder, [peer for peer in peers if peer.name != name])
    return found


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _why(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError) and "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return "its certificate is not from the authority the link pins"
    return str(exc) or type(exc).__name__
