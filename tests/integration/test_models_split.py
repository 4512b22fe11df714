"""`council models split`: a model cut into shards by llama.cpp's llama-gguf-split, for browsers."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from council.datafolder import DataFolder
from council.engine.binary import EngineBinary
from council.models.catalog import read_model, scan
from council.models.demo import DemoShape, write_demo_model
from tests.hubs import HubProcess, llama_server
from tests.hubs import run_council as council
from tests.integration.test_model_files import served_models

# About 6.6 MB in 37 tensors: with --max-size 1M it becomes several shards in well under a second.
SHAPE = DemoShape(embedding_length=256, block_count=4, feed_forward_length=768)


@pytest.fixture
def engine_env(engine_binary: EngineBinary) -> dict[str, str]:
    return {**os.environ, "COUNCIL_LLAMA_SERVER": str(engine_binary.path)}


@pytest.fixture
def model(isolated_data: DataFolder) -> Path:
    return write_demo_model(isolated_data.models / "big.gguf", name="big", shape=SHAPE)


def test_a_model_is_split_into_shards_of_at_most_the_size_given_and_listed_once(
    isolated_data: DataFolder, model: Path, engine_env: dict[str, str]
) -> None:
    done = council("models", "split", "big.gguf", "--max-size", "1M", "--json", env=engine_env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    count = len(result["shards"])
    assert count > 2
    assert result["shards"] == [f"big-{no:05d}-of-{count:05d}.gguf" for no in range(1, count + 1)]
    assert all(size <= 1024 * 1024 for size in result["sizes"])
    left = sorted(p.name for p in isolated_data.models.iterdir())
    assert left == sorted(["big.gguf", *result["shards"]])  # and no hidden work folder

    listed = {entry.path: entry for entry in scan(isolated_data.models)}
    assert sorted(listed) == [f"big-00001-of-{count:05d}.gguf", "big.gguf"]
    split = listed[result["shards"][0]]
    assert split.valid, split.reason
    assert split.shards == tuple(result["shards"])
    assert split.parameters == read_model(model, isolated_data.models).parameters


def test_llama_server_loads_the_split_model_from_its_first_shard(
    isolated_data: DataFolder, model: Path, engine_binary: EngineBinary, engine_env: dict[str, str]
) -> None:
    done = council("models", "split", "big.gguf", "--max-size", "1M", "--json", env=engine_env)
    first = isolated_data.models / json.loads(done.stdout)["shards"][0]
    with llama_server(engine_binary.path, first) as base:
        answer = httpx.post(
            f"{base}/completion", json={"prompt": "hello", "n_predict": 4}, timeout=30
        )
        assert answer.status_code == 200
        assert answer.json()["tokens_predicted"] == 4


@pytest.fixture
def split_and_served(
    start_hub: Callable[..., HubProcess], model: Path, engine_env: dict[str, str]
) -> tuple[HubProcess, list[str]]:
    """big.gguf split into 1 MB shards, and a hub serving them: the hub and the shards."""
    done = council("models", "split", "big.gguf", "--max-size", "1M", "--json", env=engine_env)
    hub = start_hub()
    hub.wait_serving()
    return hub, list(json.loads(done.stdout)["shards"])


def test_a_hub_serves_every_shard_of_a_split_model_under_its_own_url(
    split_and_served: tuple[HubProcess, list[str]], isolated_data: DataFolder
) -> None:
    hub, shards = split_and_served
    listed = {entry["path"]: entry for entry in served_models(hub)}
    urls = listed[shards[0]]["urls"]
    assert len(urls) == len(shards)
    assert listed[shards[0]]["url"] == urls[0]
    for shard, url in zip(shards, urls, strict=True):
        data = (isolated_data.models / shard).read_bytes()
        assert url == f"/models/{hashlib.sha256(data).hexdigest()[:16]}/{shard}"
        assert httpx.get(f"{hub.url}{url}").content == data


def test_a_file_that_is_not_a_gguf_model_is_refused_with_the_reason(
    isolated_data: DataFolder, engine_env: dict[str, str]
) -> None:
    (isolated_data.models / "notes.gguf").write_bytes(b"PK\x03\x04 a zip, renamed" * 100_000)
    done = council("models", "split", "notes.gguf", "--max-size", "1M", env=engine_env)
    assert done.returncode != 0
    assert "notes.gguf is not a model llama.cpp can load" in done.stderr
    assert sorted(p.name for p in isolated_data.models.iterdir()) == ["notes.gguf"]


def test_a_model_already_small_enough_or_already_split_is_left_alone(
    isolated_data: DataFolder, model: Path, engine_env: dict[str, str]
) -> None:
    small = council("models", "split", "big.gguf", "--max-size", "512M", env=engine_env)
    assert small.returncode != 0
    assert "within 512M: a browser loads it as is" in small.stderr
    council("models", "split", "big.gguf", "--max-size", "1M", env=engine_env)
    first = next(isolated_data.models.glob("big-00001-of-*.gguf"))
    again = council("models", "split", first.name, "--max-size", "1M", env=engine_env)
    assert again.returncode != 0
    assert "is already split" in again.stderr


def test_without_llama_gguf_split_beside_llama_server_the_command_says_how_to_get_it(
    isolated_data: DataFolder, model: Path, engine_binary: EngineBinary, tmp_path: Path
) -> None:
    lonely = tmp_path / "engine"
    lonely.mkdir()
    (lonely / "llama-server").symlink_to(engine_binary.path)
    done = council(
        "models",
        "split",
        "big.gguf",
        "--max-size",
        "1M",
        "--llama-server",
        str(lonely / "llama-server"),
    )
    assert done.returncode != 0
    assert "no llama-gguf-split beside llama-server: run `council engine build`" in done.stderr
    assert sorted(p.name for p in isolated_data.models.iterdir()) == ["big.gguf"]


def test_a_size_without_a_unit_is_refused_before_anything_runs(
    model: Path, engine_env: dict[str, str]
) -> None:
    done = council("models", "split", "big.gguf", "--max-size", "1000", env=engine_env)
    assert done.returncode != 0
    assert "--max-size takes a number with M or G, like 512M" in done.stderr


def test_every_shard_is_also_served_under_the_first_shards_digest_as_wllama_asks_for_it(
    split_and_served: tuple[HubProcess, list[str]], isolated_data: DataFolder
) -> None:
    """wllama is given the first shard's URL and swaps the shard number in its name."""
    hub, shards = split_and_served
    first_url = {entry["path"]: entry for entry in served_models(hub)}[shards[0]]["url"]
    base = first_url.rsplit("/", 1)[0]
    for shard in shards:
        data = (isolated_data.models / shard).read_bytes()
        response = httpx.get(f"{hub.url}{base}/{shard}")
        assert response.status_code == 200, shard
        assert response.content == data
        assert response.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    second = hashlib.sha256((isolated_data.models / shards[1]).read_bytes()).hexdigest()[:16]
    for stranger in (
        f"{base}/big.gguf",
        f"{base}/big-00009-of-00009.gguf",
        f"/models/{second}/{shards[2]}",
        f"{base}/..%2F{shards[1]}",
    ):
        assert httpx.get(f"{hub.url}{stranger}").status_code == 404, stranger
