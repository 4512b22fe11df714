"""What a seat with workers asks of this machine and of each worker, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from council.config import SeatConfig
from council.datafolder import DataFolder
from council.engine.binary import EngineBinary
from council.engine.fleet import Fleet, estimates, plan_seats, worker_needs
from council.engine.memory import offloaded_fraction
from council.errors import InsufficientMemory, SeatError
from council.models.demo import write_demo_model
from council.rpc.tunnel import check_room

BINARY = EngineBinary(Path("/nonexistent/llama-server"), "test")


@pytest.mark.parametrize(
    ("args", "layers", "share"),
    [
        ((), 24, 1.0),  # llama.cpp puts every layer on its devices unless told otherwise
        (("--n-gpu-layers", "6"), 24, 0.25),
        (("-ngl", "48"), 24, 1.0),
        (("--n-gpu-layers=12",), 24, 0.5),
        (("--n-gpu-layers", "0"), 24, 0.0),
        (("--n-gpu-layers", "auto"), 24, 1.0),
        (("--n-gpu-layers", "-1"), 24, 1.0),
        (("--n-gpu-layers", "3"), None, 1.0),
    ],
)
def test_the_offloaded_share_is_n_gpu_layers_of_the_models_layers(
    args: tuple[str, ...], layers: int | None, share: float
) -> None:
    assert offloaded_fraction(args, layers) == share


def test_a_seat_with_workers_counts_only_the_layers_it_keeps_here(
    isolated_data: DataFolder,
) -> None:
    write_demo_model(isolated_data.models / "m.gguf")  # two layers
    alone = SeatConfig("alone", "m.gguf", ctx_size=4096)
    split = SeatConfig(
        "split", "m.gguf", ctx_size=4096, workers=("w1", "w2"), extra_args=("-ngl", "1")
    )
    [whole] = estimates(plan_seats(isolated_data, [alone]))
    [here] = estimates(plan_seats(isolated_data, [split]))
    assert here.weights == whole.weights // 2
    assert here.kv_cache == whole.kv_cache // 2
    needs = worker_needs(plan_seats(isolated_data, [alone, split]))
    each = (whole.weights + whole.kv_cache) // 2 // 2
    assert needs == {"w1": [("split", each)], "w2": [("split", each)]}


def test_seats_with_other_workers_run_in_engines_of_their_own_with_rpc_to_each_tunnel(
    isolated_data: DataFolder,
) -> None:
    write_demo_model(isolated_data.models / "m.gguf")
    seats = [SeatConfig("here", "m.gguf"), SeatConfig("there", "m.gguf", workers=("w1",))]
    fleet = Fleet(
        isolated_data, BINARY, plan_seats(isolated_data, seats), rpc={"w1": "127.0.0.1:4"}
    )
    args = {name: engine.spec.extra_args for name, engine in fleet.engines.items()}
    assert "--rpc" not in args["here"]
    assert args["there"][args["there"].index("--rpc") + 1] == "127.0.0.1:4"
    with pytest.raises(SeatError, match="names worker\\(s\\) w1 that this hub has no tunnel to"):
        Fleet(isolated_data, BINARY, plan_seats(isolated_data, seats[1:]))


def test_a_worker_offering_less_than_its_share_is_refused_with_each_seats_share() -> None:
    check_room("w1", 10_000_000, [("a", 4_000_000), ("b", 6_000_000)])  # exactly fits
    with pytest.raises(InsufficientMemory) as refused:
        check_room("w1", 10_000_000, [("a", 4_000_000), ("b", 7_000_000)])
    assert str(refused.value).startswith(
        "worker w1 offers 10 MB but its share of the seats needs 11 MB (a 4 MB; b 7 MB)"
    )
