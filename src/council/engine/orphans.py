"""Engines a dead hub left behind: recorded by PID and start time, stopped by the next hub.

On Linux the kernel already kills engines when council dies (PR_SET_PDEATHSIG); elsewhere a
`kill -9` of council can leave them running, holding RAM and a loopback port. A PID alone could
have been reused by an unrelated program, so an engine is only stopped when its PID, its start
time and its name all match what was recorded.

An engine that already died but was never reaped (a zombie: its parent was killed and the
process that inherited it, often a container's PID 1, does not wait for children) is gone: it
holds no memory or port, cannot be stopped, and is neither reported nor waited on.
"""

from __future__ import annotations

import contextlib

import psutil

ENGINE_NAME = "llama-server"


def describe(pid: int) -> dict[str, object] | None:
    try:
        return {"pid": pid, "created": psutil.Process(pid).create_time()}
    except psutil.Error:
        return None


def reap(recorded: list[dict[str, object]], timeout: float = 5.0) -> list[int]:
    """Stop every recorded engine that is still the same process; return their PIDs."""
    found = []
    for item in recorded:
        pid, created = item.get("pid"), item.get("created")
        if not isinstance(pid, int) or not isinstance(created, float):
            continue
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            if _is_recorded_engine(process, created):
                process.terminate()
                found.append(process)
    _, alive = psutil.wait_procs(found, timeout=timeout)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    return [process.pid for process in found]


def _is_recorded_engine(process: psutil.Process, created: float) -> bool:
    if process.status() == psutil.STATUS_ZOMBIE:
        return False
    return process.create_time() == created and ENGINE_NAME in process.name()
