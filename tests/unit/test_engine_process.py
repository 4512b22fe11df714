from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from council.engine.memory import SeatEstimate, check_fits, estimate
from council.engine.process import EngineProcess, EngineSpec, _Run, engine_argv, failure_reason
from council.errors import InsufficientMemory
from tests.running import run

LOAD_FAILURE_LOG = """\
0.00.004.355 E llama_model_load: error loading model: tensor 'blk.0.ffn_up.weight' data is \
not within the file bounds, model is corrupted or incomplete
0.00.004.371 E llama_model_load_from_file_impl: failed to load model
0.00.004.880 E srv  llama_server: exiting due to model loading error
"""


def test_the_reason_is_llama_servers_own_words_for_the_load_error() -> None:
    assert failure_reason(LOAD_FAILURE_LOG) == (
        "tensor 'blk.0.ffn_up.weight' data is not within the file bounds, "
        "model is corrupted or incomplete"
    )


def test_without_a_load_error_the_last_error_line_is_the_reason() -> None:
    log = "main: loading\nsrv couldn't bind HTTP server socket, hostname: 127.0.0.1, port: 1\n"
    assert "couldn't bind" not in failure_reason(log)
    log = "something\nE srv  init: failed to allocate KV cache\n"
    assert failure_reason(log) == "failed to allocate KV cache"


def test_a_clean_log_gives_no_reason() -> None:
    assert failure_reason("main: model loaded\nserver is listening\n") == ""


def test_seats_that_fit_pass_the_memory_check() -> None:
    check_fits([estimate("a", 1000, 10, 100)], available=10**9)


def test_seats_that_do_not_fit_are_named_with_their_numbers() -> None:
    seats = [estimate("small", 10**6, 100, 2048), estimate("huge", 4 * 10**9, 1024, 2**20)]
    with pytest.raises(InsufficientMemory) as error:
        check_fits(seats, available=2 * 10**9)
    message = str(error.value)
    assert "huge" in message
    assert "small" in message
    assert "only 2 GB of RAM is available" in message
    assert "KV cache 1.1 GB at ctx 1048576" in message


def test_every_slot_has_a_kv_cache_of_the_whole_context() -> None:
    two = estimate("a", 0, 512, 4096, slots=2)
    assert two.kv_cache == 2 * 512 * 4096
    assert "KV cache 4.2 MB at ctx 4096 x 2 slots" in two.describe()


def test_an_engine_gets_one_slot_per_request_each_with_the_whole_context(tmp_path: Path) -> None:
    spec = EngineSpec(
        "a",
        tmp_path / "llama-server",
        tmp_path / "a.gguf",
        tmp_path / "a.log",
        ctx_size=2048,
        threads=1,
        slots=3,
    )
    argv = engine_argv(spec, 9000)
    assert argv[argv.index("--parallel") + 1] == "3"
    assert argv[argv.index("--ctx-size") + 1] == str(3 * 2048)
    assert "--no-kv-unified" in argv


def test_the_kv_cache_grows_with_the_context() -> None:
    assert estimate("a", 0, 512, 4096).kv_cache == 512 * 4096
    assert estimate("a", 0, None, 4096) == SeatEstimate("a", 0, 0, 4096)


def test_watching_a_live_engine_keeps_one_wait_for_its_exit_however_long_it_runs(
    tmp_path: Path,
) -> None:
    spec = EngineSpec("a", tmp_path / "s", tmp_path / "a.gguf", tmp_path / "a.log", 2048, 1)

    async def watch() -> tuple[list[object], int]:
        engine = EngineProcess(spec)
        process = await asyncio.create_subprocess_exec("sleep", "30")
        run = _Run(process, 0, 0)
        try:
            for _ in range(50):  # fifty liveness ticks
                assert not await engine._exited_or_stopped(run, 0.001)
            # asyncio keeps each `process.wait()` future here until the process exits.
            waiters: list[object] = list(process._transport._exit_waiters)  # type: ignore[attr-defined]
        finally:
            process.kill()
        return waiters, await asyncio.wait_for(process.wait(), 5)

    waiters, returncode = run(watch())
    assert len(waiters) == 1
    assert returncode == -9
