"""Talking to a hub from the command line: find the one serving this stick, or run one briefly.

`council ask` and friends go through the hub's own HTTP API, so a question asked in the terminal
is run, streamed and stored exactly like one asked in the browser. When no hub serves the data
folder, the command starts one in-process on an ephemeral loopback port for its own duration.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from council.datafolder import DataFolder, running_hub
from council.deliberation.events import Event
from council.errors import HubNotRunning, HubUnreachable, error_for_status
from council.security.owner import read_token


class HubClient:
    def __init__(self, url: str, token: str | None = None) -> None:
        """`token`: the owner token (security/owner.py), which the hub asks for."""
        self.url = url.rstrip("/")
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(
            base_url=self.url,
            timeout=httpx.Timeout(30, read=None),
            trust_env=False,
            headers=headers,
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def conversation(self, conversation_id: str) -> dict[str, Any]:
        response = await self._request("GET", f"/api/conversations/{conversation_id}")
        result: dict[str, Any] = response.json()
        return result

    async def ask(
        self, conversation_id: str | None, question: str, options: dict[str, Any]
    ) -> AsyncIterator[Event]:
        """The round's events as they stream; leaving early stops the round on the hub. With
        no conversation, the hub makes one if it accepts the question (every event names it)."""
        body = {"question": question, **options}
        path = (
            f"/api/conversations/{conversation_id}/messages" if conversation_id else "/api/messages"
        )
        with map_transport_errors(self.url):
            async with self._client.stream("POST", path, json=body) as response:
                if response.status_code >= 400:
                    _raise_for(response.status_code, await response.aread())
                kind = ""
                async for line in response.aiter_lines():
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:") and kind:
                        yield Event(kind, json.loads(line[5:]))
                        kind = ""

    async def delete_conversation(self, conversation_id: str) -> None:
        await self._request("DELETE", f"/api/conversations/{conversation_id}")

    async def seats(self, *, disabled: bool = False) -> list[dict[str, Any]]:
        """The council's seats; `disabled`: then the local seats config.toml keeps off."""
        response = await self._request("GET", "/api/seats")
        body = response.json()
        rows: list[dict[str, Any]] = body["seats"] + (body.get("disabled", []) if disabled else [])
        return rows

    async def defaults(self) -> dict[str, Any]:
        response = await self._request("GET", "/api/council/defaults")
        result: dict[str, Any] = response.json()
        return result

    async def status(self) -> dict[str, Any]:
        """`/api/status`: what `council status` shows."""
        response = await self._request("GET", "/api/status")
        result: dict[str, Any] = response.json()
        return result

    async def health(self) -> dict[str, Any]:
        response = await self._request("GET", "/api/health")
        result: dict[str, Any] = response.json()
        return result

    async def add_seat(self, body: dict[str, Any]) -> dict[str, Any]:
        response = await self._request("POST", "/api/seats", json=body)
        result: dict[str, Any] = response.json()
        return result

    async def change_seat(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self._request("PATCH", f"/api/seats/{quote(name, safe='')}", json=body)
        result: dict[str, Any] = response.json()
        return result

    async def remove_seat(self, name: str) -> None:
        await self._request("DELETE", f"/api/seats/{quote(name, safe='')}")

    async def restart_seat(self, name: str) -> dict[str, Any]:
        path = f"/api/seats/{quote(name, safe='')}/restart"
        response = await self._request("POST", path)
        result: dict[str, Any] = response.json()
        return result

    async def peers(self) -> list[dict[str, Any]]:
        response = await self._request("GET", "/api/peers")
        rows: list[dict[str, Any]] = response.json()["peers"]
        return rows

    async def add_peer(self, body: dict[str, Any]) -> dict[str, Any]:
        response = await self._request("POST", "/api/peers", json=body)
        result: dict[str, Any] = response.json()
        return result

    async def remove_peer(self, name: str) -> None:
        await self._request("DELETE", f"/api/peers/{quote(name, safe='')}")

    async def stop_round(self, message_id: str) -> None:
        await self._request("POST", f"/api/messages/{quote(message_id, safe='')}/stop")

    async def login_link(self) -> str:
        """A one-time link that logs a browser in as the owner."""
        response = await self._request("POST", "/api/login-links")
        return str(response.json()["url"])

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with map_transport_errors(self.url):
            response = await self._client.request(method, path, **kwargs)
        if response.status_code >= 400:
            _raise_for(response.status_code, response.content)
        return response


@contextmanager
def map_transport_errors(url: str) -> Iterator[None]:
    """httpx's errors, translated once into the line a person reads (as httpx itself maps
    httpcore's): every call to the hub, the event stream included, runs inside this."""
    try:
        yield
    except httpx.ConnectError:
        raise HubUnreachable(f"cannot reach the hub at {url}: is `council up` running?") from None
    except (httpx.RemoteProtocolError, httpx.ReadError):
        raise HubUnreachable(
            f"the hub at {url} closed the connection before the answer was complete "
            "(did it stop? `council history` shows what was kept)"
        ) from None
    except httpx.TimeoutException:
        raise HubUnreachable(f"the hub at {url} did not answer in time") from None
    except httpx.HTTPError as exc:
        raise HubUnreachable(f"talking to the hub at {url} failed: {exc}") from None


def _raise_for(status: int, body: bytes) -> None:
    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = body[:200].decode(errors="replace") or f"HTTP {status}"
    raise error_for_status(status)(message)


def not_running(folder: DataFolder) -> str:
    return f"council is not running on {folder.root}: start it with `./council up`"


@asynccontextmanager
async def running_client(folder: DataFolder) -> AsyncIterator[HubClient]:
    """A client for the hub serving `folder`; `HubNotRunning` when none does (for the commands
    that are about the running hub: status, stop, restarting a seat, a login link)."""
    record = running_hub(folder)
    if not record or not isinstance(record.get("url"), str):
        raise HubNotRunning(not_running(folder))
    client = HubClient(str(record["url"]), read_token(folder))
    try:
        yield client
    finally:
        await client.close()


async def login_link(folder: DataFolder) -> str:
    """`council login`: a fresh login link from the hub serving `folder` (it must run: the
    link is for its page)."""
    async with running_client(folder) as client:
        return await client.login_link()


@asynccontextmanager
async def hub_for(
    folder: DataFolder, llama_server: Path | None = None, *, handle_signals: bool = True
) -> AsyncIterator[HubClient]:
    """A client for the hub serving `folder`, starting one for the duration if none runs
    (`handle_signals`: whether Ctrl-C stops that hub; off when the caller handles it)."""
    record = running_hub(folder)
    if record and isinstance(record.get("url"), str):
        client = HubClient(str(record["url"]), read_token(folder))
        try:
            yield client
        finally:
            await client.close()
        return
    from council.hub import Hub, UpOptions

    hub = Hub(
        UpOptions(
            data=folder.root,
            port=0,
            llama_server=llama_server,
            open_browser=False,
            terminal_log=False,
            handle_signals=handle_signals,
        ),
        say=lambda line: None,
    )
    serving = asyncio.create_task(hub.serve())
    try:
        await hub.wait_serving(serving)
        client = HubClient(hub.url, read_token(folder))
        try:
            yield client
        finally:
            await client.close()
    finally:
        hub.request_shutdown()
        await serving
