"""The hub's side of workers: pairing with one (`council workers add LINK`), the file keeping
them, and asking one what it runs.

A worker's link is a pairing link like a hub's (`https://<host>:<port>/pair#code=…&fp=…`); its
fingerprint pins the worker's CA, fetched over the worker's handshake (`{"op": "ca"}`) and
compared before the code is sent. From then on the worker's TLS is checked against that CA
alone. The token lives in `workers.toml`, owner-only, never shown. A worker whose llama.cpp
build is not the hub's is refused, both builds named: RPC needs the same protocol on both ends.
"""

from __future__ import annotations

import asyncio
import hmac
import ssl
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from council.datafolder import DataFolder
from council.errors import (
    BadRequest,
    CouncilError,
    Forbidden,
    HandshakeError,
    NotFound,
)
from council.peers import PeerLink, peer_name, trust, unique_name
from council.rpc.handshake import read_message, write_message
from council.security.tls import local_hostname
from council.tables import load_tables, save_tables

FILE = "workers.toml"
CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    name: str
    host: str
    port: int
    fingerprint: str
    ca: str
    token: str

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": f"{self.host}:{self.port}",
            "fingerprint": self.fingerprint,
        }

    def trust(self) -> ssl.SSLContext:
        return trust(self.ca)


def load_workers(folder: DataFolder) -> list[WorkerConfig]:
    return load_tables(folder.root / FILE, "workers", WorkerConfig, "worker", unique_name)


def save_workers(folder: DataFolder, workers: list[WorkerConfig]) -> None:
    header = "council workers: machines lending their compute. Holds tokens: keep it private."
    save_tables(folder.root / FILE, "workers", header, workers)


def _address(link: PeerLink) -> tuple[str, int]:
    host, _, port = link.base.removeprefix("https://").rpartition(":")
    return host.strip("[]"), int(port)


async def _ask(
    host: str, port: int, message: dict[str, Any], context: ssl.SSLContext | None
) -> dict[str, Any]:
    """One handshake line out, one back; `context` None: unverified (only for the CA)."""
    if context is None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # nothing secret goes out on this one
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname=host),
            CONNECT_TIMEOUT,
        )
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        reason = (
            "its certificate is not from the pinned authority"
            if isinstance(exc, ssl.SSLCertVerificationError)
            else str(exc) or type(exc).__name__
        )
        raise CouncilError(f"cannot reach the worker at {host}:{port}: {reason}") from None
    try:
        await write_message(writer, message)
        return await read_message(reader)
    except (HandshakeError, OSError) as exc:
        raise CouncilError(f"the worker at {host}:{port} did not answer: {exc}") from None
    finally:
        writer.close()


async def hello(worker: WorkerConfig) -> dict[str, Any]:
    """What the worker runs (its llama.cpp commit) and the memory it offers."""
    answer = await _ask(
        worker.host, worker.port, {"op": "hello", "token": worker.token}, worker.trust()
    )
    if "error" in answer:
        raise Forbidden(f"worker {worker.name}: {answer['error']} (was this hub revoked there?)")
    return answer


def check_version(worker: str, theirs: object, ours: str) -> None:
    if str(theirs) != ours:
        raise CouncilError(
            f"worker {worker} runs llama.cpp {theirs}, this hub {ours}: RPC needs the same "
            "build on both (build council from the same version on both machines)"
        )


async def pair_worker(
    workers: list[WorkerConfig], url: str, name: str | None, ours: str
) -> tuple[WorkerConfig, dict[str, Any]]:
    """Pair with the worker whose link is `url`; refuse a build that is not `ours`."""
    link = PeerLink.parse(url)
    host, port = _address(link)
    for known in workers:
        if (known.host, known.port) == (host, port):
            raise BadRequest(
                f"this hub is paired with the worker at {host}:{port}, as {known.name!r}"
            )
    name = peer_name(name, link, {worker.name for worker in workers})
    answer = await _ask(host, port, {"op": "ca"}, None)
    pem = answer.get("ca")
    if not isinstance(pem, str):
        raise CouncilError(f"{host}:{port} is not a council worker")
    try:
        found = x509.load_pem_x509_certificate(pem.encode()).fingerprint(hashes.SHA256()).hex()
    except ValueError:
        raise CouncilError(f"{host}:{port} sent something that is not a certificate") from None
    if not hmac.compare_digest(found, link.fingerprint):
        raise Forbidden(
            f"the worker at {host}:{port} shows a certificate authority with fingerprint {found}, "
            f"not the link's {link.fingerprint}: nothing was sent"
        )
    paired = await _ask(
        host,
        port,
        {"op": "pair", "code": link.code, "name": f"council hub on {local_hostname()}"},
        trust(pem),
    )
    token = paired.get("token")
    if not isinstance(token, str):
        raise Forbidden(
            f"the worker at {host}:{port} refused the pairing code (used, expired or mistyped): "
            "mint a new one there with `./council pair`"
        )
    worker = WorkerConfig(name, host, port, link.fingerprint, pem, token)
    facts = await hello(worker)
    check_version(name, facts.get("commit"), ours)
    return worker, facts


def remove_worker(folder: DataFolder, name: str) -> WorkerConfig:
    workers = load_workers(folder)
    found = next((w for w in workers if w.name == name), None)
    if found is None:
        raise NotFound(
            f"no worker {name!r} (the workers: {', '.join(w.name for w in workers) or 'none'})"
        )
    save_workers(folder, [w for w in workers if w.name != name])
    return found
