"""How an engine ended, in words that say what to do next.

A signal tells more than llama-server's log can, because a killed process writes nothing:
SIGILL means instructions this CPU cannot run (a build made for another machine, or kernels a
virtual machine traps), which no restart fixes; SIGBUS on a memory-mapped model means the file
went away under it (the stick was pulled out, or the file is truncated); SIGKILL that council
did not send is, on Linux, almost always the out-of-memory killer.
"""

from __future__ import annotations

import signal

from council.units import human_size

# Signals after which starting the same binary on the same model cannot go better.
NOT_RETRIED = frozenset({signal.SIGILL})
# Windows reports the same faults as NTSTATUS exit codes, not signals.
_WINDOWS_FAULTS = {0xC000001D: -int(signal.SIGILL), 0xC0000005: -int(signal.SIGSEGV)}


def as_signal(code: int | None) -> int | None:
    """The exit code, with Windows' illegal-instruction and access-violation codes read as the
    signals they are elsewhere."""
    return _WINDOWS_FAULTS.get(code, code) if code is not None else None


def rebuild_advice(origin: str) -> str:
    """What to do about an engine this CPU cannot run, by where the engine came from."""
    if origin == "project build":
        return "`council engine build --force` rebuilds it for this machine"
    if origin == "data folder":
        return (
            "use a portable llama.cpp release in engines/ (or remove it: "
            "`council engine build` makes one for this machine)"
        )
    return (
        f"the llama-server named by {origin} was built for another CPU: use one built for "
        "this machine (`council engine build` makes one)"
    )


_MEANING = {
    signal.SIGBUS: ": the model file could not be read any more (was the stick removed, or is "
    "the file truncated?)",
    signal.SIGSEGV: " (a memory fault inside llama.cpp): the seat's log has its last words; if "
    "it happens again, `council engine build --force`",
    signal.SIGABRT: ": llama.cpp stopped on an internal check",
}


def describe_exit(
    code: int | None, *, origin: str = "project build", memory: tuple[int, int] | None = None
) -> str:
    """`memory`: (this seat's estimate, what the machine has available now), in bytes."""
    code = as_signal(code)
    if code is None:
        return "still running"
    if code >= 0:
        return f"exited with code {code}"
    try:
        sig = signal.Signals(-code)
    except ValueError:
        return f"killed by signal {-code}"
    if sig == signal.SIGILL:
        return (
            f"killed by {sig.name}: this engine uses CPU instructions this machine cannot "
            f"run; {rebuild_advice(origin)}"
        )
    if sig == signal.SIGKILL:
        return f"killed by {sig.name}, {_out_of_memory(memory)}"
    return f"killed by {sig.name}{_MEANING.get(sig, '')}"


def _out_of_memory(memory: tuple[int, int] | None) -> str:
    fits = ""
    if memory is not None:
        need, available = memory
        fits = (
            f" (this seat needs about {human_size(need)}, {human_size(available)} is available now)"
        )
    return (
        "most likely by the kernel for lack of memory"
        + fits
        + ": try a smaller model, a smaller context or fewer seats"
    )


def is_retried(code: int | None) -> bool:
    code = as_signal(code)
    return not (code is not None and code < 0 and -code in {int(s) for s in NOT_RETRIED})
