"""A seat's engine that dies by a signal gets a reason that says what to do."""

from __future__ import annotations

import signal

from council.engine.crashes import describe_exit, is_retried


def test_sigill_says_the_cpu_cannot_run_the_build_and_how_to_rebuild() -> None:
    reason = describe_exit(-signal.SIGILL)
    assert reason.startswith("killed by SIGILL: this engine uses CPU instructions")
    assert "`council engine build --force`" in reason
    assert "portable" in describe_exit(-signal.SIGILL, origin="data folder")
    named = describe_exit(-signal.SIGILL, origin="--llama-server")
    assert "the llama-server named by --llama-server was built for another CPU" in named


def test_sigill_is_never_retried_but_other_crashes_are() -> None:
    assert not is_retried(-signal.SIGILL)
    assert not is_retried(0xC000001D)  # Windows' STATUS_ILLEGAL_INSTRUCTION
    assert is_retried(-signal.SIGSEGV)
    assert is_retried(1)
    assert is_retried(None)


def test_sigkill_names_memory_with_the_seats_estimate() -> None:
    reason = describe_exit(-signal.SIGKILL, memory=(3_200_000_000, 1_100_000_000))
    assert "for lack of memory" in reason
    assert "needs about 3.2 GB" in reason
    assert "1.1 GB is available" in reason


def test_sigbus_points_at_the_stick_and_sigsegv_at_the_log() -> None:
    assert "was the stick removed" in describe_exit(-signal.SIGBUS)
    assert "log" in describe_exit(-signal.SIGSEGV)
    assert describe_exit(3) == "exited with code 3"
