"""The first words on a worker's TLS connection, before any RPC byte: one JSON object per line
each way, small and with a deadline, so a stranger who connects gets a refusal and nothing of
rpc-server.

    {"op": "ca"}                        → {"ca": PEM}          (unverified: nothing secret)
    {"op": "pair", "code", "name"}      → {"token"} | {"pending": comparison}
    {"op": "hello", "token"}            → {"version", "commit", "memory"}
    {"op": "open", "token"}             → {"ok": true, "version", "commit"}, then raw RPC bytes
    anything else, or a bad token       → {"error": message}, and the connection closes
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from council.errors import HandshakeError

MAX_LINE = 16 * 1024  # bytes: a CA certificate is about 1 KB
DEADLINE = 10.0  # seconds for a handshake line to arrive


def fast_loop() -> asyncio.AbstractEventLoop:
    """An event loop for carrying RPC bytes: uvloop's where it is installed. RPC makes many
    small round trips per token, each crossing two relays; uvloop halves what they cost
    (benchmarks/scale_out.py: about 10% of tokens/s with asyncio's own loop, 5% with uvloop)."""
    try:
        import uvloop
    except ImportError:  # Windows, or a build without it
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def read_message(reader: asyncio.StreamReader, timeout: float = DEADLINE) -> dict[str, Any]:
    try:
        line = await asyncio.wait_for(reader.readline(), timeout)
    except TimeoutError:
        raise HandshakeError("no handshake in time") from None
    except (ValueError, asyncio.LimitOverrunError):
        raise HandshakeError("a handshake line is too long") from None
    if not line.endswith(b"\n"):
        raise HandshakeError("the connection closed during the handshake")
    try:
        message = json.loads(line)
    except ValueError:
        raise HandshakeError("the handshake is not JSON") from None
    if not isinstance(message, dict):
        raise HandshakeError("the handshake is not a JSON object")
    return message


async def write_message(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    writer.write(json.dumps(message).encode() + b"\n")
    await writer.drain()


async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes one way until the reading side ends; then end the writing side."""
    try:
        while data := await reader.read(256 * 1024):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def splice(
    a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    b: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    """Both directions at once, until either side closes."""
    one = asyncio.create_task(relay(a[0], b[1]))
    two = asyncio.create_task(relay(b[0], a[1]))
    try:
        await asyncio.wait({one, two}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (one, two):
            task.cancel()
        for writer in (a[1], b[1]):
            writer.close()
