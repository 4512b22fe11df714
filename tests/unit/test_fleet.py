"""How the fleet plans engines: seats of one model share one, the rest say why they do not,
and the memory estimate counts a shared engine's weights once."""

from __future__ import annotations

from pathlib import Path

from council.config import SeatConfig
from council.datafolder import DataFolder
from council.engine.binary import EngineBinary
from council.engine.fleet import Fleet, estimates, plan_seats
from council.models.demo import write_demo_model
from tests.running import run

BINARY = EngineBinary(Path("/nonexistent/llama-server"), "test")


def _fleet(folder: DataFolder, *seats: SeatConfig, cores: int = 4) -> Fleet:
    return Fleet(folder, BINARY, plan_seats(folder, seats, cpu_count=cores))


def test_seats_of_one_model_run_as_slots_of_one_engine_with_all_the_cores(
    isolated_data: DataFolder,
) -> None:
    write_demo_model(isolated_data.models / "m.gguf")
    fleet = _fleet(
        isolated_data, SeatConfig("a", "m.gguf", slots=1), SeatConfig("b", "m.gguf", slots=2)
    )
    (engine,) = fleet.engines.values()
    assert engine.spec.slots == 3
    assert engine.spec.threads == 4
    assert {row["engine"] for row in fleet.seats()} == {"a"}
    assert fleet.notes == []


def test_a_shared_engine_counts_its_weights_once_and_a_kv_cache_per_slot(
    isolated_data: DataFolder,
) -> None:
    write_demo_model(isolated_data.models / "m.gguf")
    one = plan_seats(isolated_data, [SeatConfig("a", "m.gguf", slots=1)])
    three = plan_seats(isolated_data, [SeatConfig(n, "m.gguf", slots=1) for n in "abc"])
    (alone,), (shared,) = estimates(one), estimates(three)
    assert shared.weights == alone.weights
    assert shared.kv_cache == 3 * alone.kv_cache
    assert shared.seat == "a, b, c"


def test_seats_whose_settings_differ_get_engines_of_their_own_and_are_told_why(
    isolated_data: DataFolder,
) -> None:
    write_demo_model(isolated_data.models / "m.gguf")
    fleet = _fleet(
        isolated_data,
        SeatConfig("a", "m.gguf", ctx_size=512),
        SeatConfig("b", "m.gguf", ctx_size=1024),
        SeatConfig("c", "m.gguf", ctx_size=1024),
    )
    assert len(fleet.engines) == 2
    assert all(engine.spec.threads == 2 for engine in fleet.engines.values())  # 4 cores, 2 engines
    (note,) = fleet.notes
    assert note == (
        "seats of models/m.gguf run in 2 engines (a | b, c): their ctx_size differ; "
        "make them equal to share one engine"
    )


def test_a_removed_seats_slots_take_the_next_seat_of_that_model_without_a_new_engine(
    isolated_data: DataFolder,
) -> None:
    write_demo_model(isolated_data.models / "m.gguf")
    write_demo_model(isolated_data.models / "other.gguf", seed=2)
    fleet = _fleet(isolated_data, SeatConfig("a", "m.gguf"), SeatConfig("b", "m.gguf"))
    run(fleet.remove("a"))  # never started: nothing to stop, the engine stays for b
    assert list(fleet.engines) == ["a"]
    (joining,) = plan_seats(isolated_data, [SeatConfig("c", "m.gguf")])
    fleet.add(joining)
    assert list(fleet.engines) == ["a"]
    # A new seat called "a" of another model gets an engine of its own, under another name.
    (renamed,) = plan_seats(isolated_data, [SeatConfig("a", "other.gguf")])
    fleet.add(renamed)
    assert list(fleet.engines) == ["a", "a~2"]
    assert fleet.row("a")["engine"] == "a~2"
