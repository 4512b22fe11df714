"""`council peers` from the command line: through the running hub when there is one (the
peer's seats join or leave its council at once, and its copy of peers.toml is the one saved),
else on peers.toml directly, for the next start."""

from __future__ import annotations

from typing import Any

from council.client import running_client
from council.datafolder import DataFolder, running_hub
from council.peers import join, load_peers, remove, survey


def _live(folder: DataFolder) -> bool:
    record = running_hub(folder)
    return bool(record and isinstance(record.get("url"), str))


async def add_peer(folder: DataFolder, url: str, name: str | None, wait: float) -> dict[str, Any]:
    """The new peer (never its token) and the seats it offers."""
    if _live(folder):
        async with running_client(folder) as client:
            return await client.add_peer({"url": url, "name": name})
    joined = await join(folder, url, name, wait)
    return {**joined.peer.public(), "seats": joined.seats}


async def list_peers(folder: DataFolder) -> list[dict[str, Any]]:
    if _live(folder):
        async with running_client(folder) as client:
            return await client.peers()
    return await survey(folder)


async def forget_peer(folder: DataFolder, name: str) -> dict[str, Any]:
    if _live(folder):
        found = {peer.name: peer for peer in load_peers(folder)}.get(name)
        async with running_client(folder) as client:
            await client.remove_peer(name)
        return found.public() if found else {"name": name, "url": "the peer"}
    return remove(folder, name).public()
