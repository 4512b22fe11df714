"""The running hub seen from another terminal: `council status`, `council stop` and
`council up --detach`.

The hub's lock file (datafolder.HubLock) says whether a hub serves a data folder, its process id
and URL; everything else comes from the hub itself (`/api/status`), which is the only one that
knows its seats' engines, rounds and devices.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

from council.client import HubClient, not_running, running_client
from council.datafolder import DataFolder, running_hub
from council.engine import orphans
from council.errors import CouncilError, DataFolderError, HubNotRunning, HubUnreachable
from council.security.owner import read_token
from council.units import human_size

STOP_TIMEOUT = 30.0  # seconds a hub gets to end its rounds and stop its engines
HUB_LOG = "council.log"


async def hub_status(folder: DataFolder) -> dict[str, Any]:
    """`/api/status` of the hub serving `folder`; HubNotRunning when none does."""
    async with running_client(folder) as client:
        return await client.status()


# --- stopping -----------------------------------------------------------------------------------


def stop_hub(
    folder: DataFolder, timeout: float = STOP_TIMEOUT, say: Callable[[str], None] = print
) -> int:
    """Ask the hub serving `folder` to stop (SIGTERM: it ends its rounds, stops its engines and
    closes the store), wait for it, and SIGKILL it after `timeout`; returns its process id."""
    record = running_hub(folder)
    if record is None:
        raise HubNotRunning(not_running(folder))
    pid = record.get("pid")
    process = _hub_process(pid)
    say(f"stopping council (pid {pid})…")
    try:
        process.terminate()
    except psutil.AccessDenied:
        raise CouncilError(
            f"cannot stop council (pid {pid}): it runs as another user on this laptop"
        ) from None
    except psutil.NoSuchProcess:
        return process.pid
    if not _ended(process, timeout):
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
        _ended(process, 10)
        engines = record.get("engines")
        recorded = [e for e in engines if isinstance(e, dict)] if isinstance(engines, list) else []
        stopped = orphans.reap(recorded)
        left = f" and {len(stopped)} engine(s) it left" if stopped else ""
        say(
            f"council (pid {pid}) did not stop within {timeout:g} s: killed it{left} "
            "(answers it was writing are marked interrupted on the next start)"
        )
        return process.pid
    say("council stopped")
    return process.pid


def _ended(process: psutil.Process, timeout: float) -> bool:
    """Whether the process ends within `timeout`. An ended process whose parent has not yet
    collected its exit status (a zombie: its parent is a shell or a test, not this command)
    holds nothing any more and counts as ended; psutil's wait() would wait for it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _hub_process(pid: object) -> psutil.Process:
    """The process the lock names, if it is a council hub: a lock file on a stick another
    account can write must not make this command signal some other program."""
    if not isinstance(pid, int):
        raise DataFolderError("council.lock does not name the hub's process: stop it by hand")
    try:
        process = psutil.Process(pid)
        command = process.cmdline()
    except psutil.NoSuchProcess:
        raise HubNotRunning(f"council (pid {pid}) has already stopped") from None
    except psutil.AccessDenied:
        raise CouncilError(
            f"cannot stop council (pid {pid}): it runs as another user on this laptop"
        ) from None
    names = [part.rsplit("/", 1)[-1] for part in command]
    if "up" not in command or not ({"council", "council.exe"} & set(names)):
        raise DataFolderError(
            f"council.lock names pid {pid}, which is not a council hub ({' '.join(command)[:80]}): "
            "nothing was stopped"
        )
    return process


# --- starting in the background -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Detached:
    pid: int
    url: str
    health: dict[str, Any]
    login: str | None  # a one-time link to the page (None with --no-owner-auth)


def start_detached(folder: DataFolder, up_args: list[str], wait: float = 600.0) -> Detached:
    """`council up --detach`: start the hub as a process of its own session (closing the
    terminal does not stop it), its lines going to logs/council.log, and return once it serves
    and its seats have settled (healthy or failed), or raise with the reason it gave for not
    starting."""
    record = running_hub(folder)
    if record is not None:
        raise DataFolderError(
            f"council is already running on {folder.root} (pid {record.get('pid', '?')}): "
            "`./council status` shows it"
        )
    folder.logs.mkdir(parents=True, exist_ok=True)
    log = folder.logs / HUB_LOG
    offset = log.stat().st_size if log.exists() else 0
    command = [sys.executable, "-m", "council", "up", "--log-only", "--no-browser"]
    with open(log, "ab") as out:
        child = subprocess.Popen(
            [*command, "--data", str(folder.root), *up_args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    return asyncio.run(_until_settled(folder, child, log, offset, time.monotonic() + wait))


async def _until_settled(
    folder: DataFolder, child: subprocess.Popen[bytes], log: Any, offset: int, deadline: float
) -> Detached:
    client: HubClient | None = None
    try:
        while True:
            code = child.poll()
            if code is not None:
                raise CouncilError(_why_it_stopped(log, offset, code))
            record = running_hub(folder)
            url = record.get("url") if record and record.get("pid") == child.pid else None
            if client is None and isinstance(url, str):
                client = HubClient(url, read_token(folder))
            if client is not None:
                try:
                    health = await client.health()
                except HubUnreachable:
                    health = {"status": "starting"}
                if health.get("status") != "starting" or time.monotonic() > deadline:
                    return Detached(child.pid, client.url, health, await _login(client))
            await asyncio.sleep(0.2)
    finally:
        if client is not None:
            await client.close()


async def _login(client: HubClient) -> str | None:
    try:
        return await client.login_link()
    except CouncilError:  # --no-owner-auth: the page has no login
        return None


def _why_it_stopped(log: Any, offset: int, code: int) -> str:
    """The one line a hub that failed to start printed (click's `Error: …`), from its log."""
    try:
        with open(log, "rb") as handle:
            handle.seek(offset)
            text = handle.read(256 * 1024).decode(errors="replace")
    except OSError:
        text = ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line.removeprefix("Error: ") for line in lines if line.startswith("Error: ")]
    if errors:
        return errors[-1]
    last = f": {lines[-1]}" if lines else ""
    return f"council stopped while starting (exit status {code}){last}; see logs/{HUB_LOG}"


# --- what `council status` prints -----------------------------------------------------------------


def render_status(status: dict[str, Any]) -> str:
    lan = f" · phones: {status['lan_url']}" if status.get("lan_url") else ""
    lines = [
        f"council {status['version']} · pid {status['pid']} · up {_duration(status['uptime'])}"
        f" · {status['url']}{lan}",
        f"data: {status['data']}",
        f"status: {status['status']}"
        + (f" (the stick: {status['stick']})" if status["stick"] else ""),
        "",
    ]
    lines += _table(
        ("SEAT", "KIND", "MODEL", "STATE", "ENGINE", "SLOTS", "TOK/S", "MEMORY"),
        [_seat_row(seat) for seat in status["seats"]],
    )
    for seat in status["seats"]:
        if seat.get("reason") and seat.get("state") not in {"healthy", "ready"}:
            lines.append(f"  {seat['name']}: {seat['reason']}")
    rounds = status["rounds"]
    lines += ["", f"rounds running: {len(rounds) or 'none'}"]
    for item in rounds:
        who = f" · device {item['device_id']}" if item.get("device_id") else ""
        lines.append(
            f"  {item['message_id'][:8]}  {item['mode']}  {', '.join(item['seats'])}  "
            f"{_duration(item['seconds'])}{who}  (conversation {item['conversation_id'][:8]})"
        )
    devices = status["devices"]
    lines.append(f"devices online: {len(devices) or 'none'}")
    for device in devices:
        busy = f", {device['open_requests']} request(s) open" if device["open_requests"] else ""
        seen = (device["last_seen_at"] or "")[:19].replace("T", " ")
        lines.append(f"  {device['name']} ({device['address'] or '?'}, seen {seen}{busy})")
    pulls = status["pulls"]
    lines.append(f"pulls: {len(pulls) or 'none'}")
    for job in pulls:
        share = f"{100 * job['done'] // job['total']}%" if job["total"] else job["state"]
        lines.append(
            f"  {job['name'] or job['file'] or job['repo']}  {share} of "
            f"{human_size(job['total'])}  ({job['state']})"
        )
    return "\n".join(lines)


def _seat_row(seat: dict[str, Any]) -> tuple[str, ...]:
    engine = "-"
    if seat.get("engine_pid"):
        engine = f"pid {seat['engine_pid']} :{seat['engine_port']}"
    slots = "-"
    if seat["kind"] == "local" and seat.get("state") != "disabled":
        busy = seat.get("slots_busy")
        slots = f"{'?' if busy is None else busy}/{seat.get('engine_slots') or seat.get('slots')}"
    speed = seat.get("tokens_per_second")
    memory = seat.get("memory_bytes")
    return (
        seat["name"],
        seat["kind"],
        str(seat.get("model") or "-"),
        str(seat.get("state") or "-"),
        engine,
        slots,
        f"{speed:.1f}" if isinstance(speed, int | float) else "-",
        human_size(memory) if isinstance(memory, int) else "-",
    )


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} days {hours % 24} h"
