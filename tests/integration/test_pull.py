"""`council models pull` against a loopback stand-in for the Hub (tests/fake_hf.py): a real
GGUF pulled, verified, listed and seated; killed, cut, corrupted, refused and rate-limited
pulls, each ending whole or as one clear line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from council.datafolder import DataFolder
from council.models.demo import write_demo_model
from council.models.starter import starter_model
from council.pull.download import CHECKPOINT
from tests.fake_hf import FakeHub, pull_killed_past_a_checkpoint, running_hub
from tests.hubs import HubProcess, ask_round, new_conversation
from tests.hubs import run_council as council

REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
STARTER = "SmolLM2-135M-Instruct.Q4_1.gguf"
TOKEN = "hf_testtoken0123456789abcdefXYZ"


@pytest.fixture
def fake_hub() -> Iterator[FakeHub]:
    with running_hub(token=TOKEN) as hub:
        yield hub


@pytest.fixture
def starter() -> Path:
    return starter_model()


def hub_env(hub: FakeHub, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "HF_TOKEN"}
    return {**env, "HF_ENDPOINT": hub.url, **extra}


def pull(hub: FakeHub, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return council("models", "pull", *args, env=hub_env(hub, **env), timeout=180)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def ggufs(folder: DataFolder) -> list[Path]:
    return sorted(folder.models.rglob("*.gguf"))


def test_a_pulled_starter_is_verified_listed_with_its_source_and_seated_live(
    fake_hub: FakeHub, starter: Path, start_hub: Callable[..., HubProcess]
) -> None:
    fake_hub.add(REPO, {STARTER: starter})
    hub = start_hub()
    hub.wait_ok()

    result = pull(fake_hub, REPO)
    assert result.returncode == 0, result.stderr
    assert f"> {STARTER}" in result.stdout  # the table it chose from
    assert "fits" in result.stdout
    assert f"pulled SmolLM2-135M-Instruct-GGUF/{STARTER}" in result.stdout
    placed = hub.data / "models" / "SmolLM2-135M-Instruct-GGUF" / STARTER
    assert placed.read_bytes() == starter.read_bytes()
    assert not list((hub.data / "downloads").iterdir())

    listed = json.loads(council("models", "list", "--json", "--data", str(hub.data)).stdout)
    row = next(m for m in listed if m["path"].endswith(STARTER))
    assert row["source"] == f"{REPO}@0123456"
    shown = council("models", "show", STARTER, "--data", str(hub.data)).stdout
    assert fake_hub.repos[REPO].files[STARTER].sha256 in shown
    assert f"source       {fake_hub.url}/{REPO} ({STARTER})" in shown

    model = f"SmolLM2-135M-Instruct-GGUF/{STARTER}"
    added = httpx.post(f"{hub.url}/api/seats", json={"kind": "local", "model": model})
    assert added.status_code == 201, added.text
    name = added.json()["name"]
    hub.wait_for(lambda h: h["status"] == "ok" and len(h["seats"]) == 4, timeout=120)
    conversation = new_conversation(hub)
    events = ask_round(hub, conversation, "Say hello.", max_tokens=8, seats=[name, "demo-1"])
    answers = [d for kind, d in events if kind == "seat_done" and d.get("seat") == name]
    assert answers, events
    assert events[-1][1]["status"] == "done"

    again = pull(fake_hub, REPO, "--data", str(hub.data))
    assert "already on the stick" in again.stdout


def test_a_pull_killed_half_way_resumes_with_a_range_request_and_ends_byte_identical(
    fake_hub: FakeHub, starter: Path, isolated_data: DataFolder
) -> None:
    fake_hub.add(REPO, {STARTER: starter})
    fake_hub.faults.throttle = 25_000_000  # bytes/s: about 4 s for the whole file
    command = [sys.executable, "-m", "council", "models", "pull", REPO]
    pull_killed_past_a_checkpoint(command, hub_env(fake_hub), isolated_data.downloads)
    assert ggufs(isolated_data) == []  # nothing half-written is listed
    assert list(isolated_data.downloads.glob("*.json"))  # the state file stays for the resume

    fake_hub.faults.throttle = None
    result = pull(fake_hub, REPO)
    assert result.returncode == 0, result.stderr
    ranges = fake_hub.ranges(STARTER)
    assert ranges[0] is None
    assert ranges[-1] is not None
    resumed_at = int(ranges[-1].removeprefix("bytes=").rstrip("-"))
    assert resumed_at >= CHECKPOINT
    assert "resumed at" in result.stdout
    (placed,) = ggufs(isolated_data)
    assert placed.read_bytes() == starter.read_bytes()


def demo(path: Path, quantization: str = "F16", seed: int = 0) -> Path:
    return write_demo_model(path, seed=seed, quantization=quantization)


def test_a_connection_cut_mid_body_is_resumed_in_the_same_run(
    fake_hub: FakeHub, tmp_path: Path, isolated_data: DataFolder
) -> None:
    model = demo(tmp_path / "tiny-F16.gguf")
    size = model.stat().st_size
    fake_hub.add("demo/tiny-GGUF", {"tiny-F16.gguf": model})
    fake_hub.faults.cut_after["tiny-F16.gguf"] = size // 2

    result = pull(fake_hub, "demo/tiny-GGUF")
    assert result.returncode == 0, result.stderr
    ranges = fake_hub.ranges("tiny-F16.gguf")
    assert ranges[0] is None
    assert ranges[-1] is not None
    assert 0 < int(ranges[-1].removeprefix("bytes=").rstrip("-")) <= size // 2
    assert (isolated_data.models / "tiny-GGUF" / "tiny-F16.gguf").read_bytes() == model.read_bytes()


def test_the_right_length_of_wrong_bytes_is_refused_and_nothing_is_kept(
    fake_hub: FakeHub, tmp_path: Path, isolated_data: DataFolder
) -> None:
    fake_hub.add("demo/tiny-GGUF", {"tiny-F16.gguf": demo(tmp_path / "tiny-F16.gguf")})
    fake_hub.faults.corrupt.add("tiny-F16.gguf")

    line = one_line(pull(fake_hub, "demo/tiny-GGUF"))
    assert "the repository says" in line
    assert "deleted" in line
    assert ggufs(isolated_data) == []
    assert list(isolated_data.downloads.iterdir()) == []


def test_a_server_that_ignores_range_gets_the_file_again_from_the_start(
    fake_hub: FakeHub, tmp_path: Path, isolated_data: DataFolder
) -> None:
    model = demo(tmp_path / "tiny-F16.gguf")
    fake_hub.add("demo/tiny-GGUF", {"tiny-F16.gguf": model})
    fake_hub.faults.cut_after["tiny-F16.gguf"] = model.stat().st_size // 3
    fake_hub.faults.ignore_range = True

    assert pull(fake_hub, "demo/tiny-GGUF").returncode == 0
    assert (isolated_data.models / "tiny-GGUF" / "tiny-F16.gguf").read_bytes() == model.read_bytes()


def test_a_short_retry_after_is_waited_out_and_a_long_one_is_one_line(
    fake_hub: FakeHub, tmp_path: Path, isolated_data: DataFolder
) -> None:
    fake_hub.add("demo/tiny-GGUF", {"tiny-F16.gguf": demo(tmp_path / "tiny-F16.gguf")})
    fake_hub.faults.status["tiny-F16.gguf"] = [(429, 3600)]
    line = one_line(pull(fake_hub, "demo/tiny-GGUF"))
    assert "rate-limiting" in line
    assert "3600 s" in line

    fake_hub.faults.status["tiny-F16.gguf"] = [(429, 1), (503, None)]
    tries_before = len(fake_hub.ranges("tiny-F16.gguf"))
    assert pull(fake_hub, "demo/tiny-GGUF").returncode == 0
    assert len(fake_hub.ranges("tiny-F16.gguf")) - tries_before == 3  # 429, 503, then the file
    assert fake_hub.faults.status["tiny-F16.gguf"] == []
    assert len(ggufs(isolated_data)) == 1


def test_missing_repos_files_and_revisions_are_one_line_each(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    fake_hub.add("demo/tiny-GGUF", {"tiny-F16.gguf": demo(tmp_path / "tiny-F16.gguf")})
    assert "no repository demo/absent" in one_line(pull(fake_hub, "demo/absent"))
    assert "has no GGUF file 'other.gguf'" in one_line(
        pull(fake_hub, "demo/tiny-GGUF", "--file", "other.gguf")
    )
    assert "has no revision 'v9'" in one_line(pull(fake_hub, "demo/tiny-GGUF", "--revision", "v9"))
    assert "has no Q4_K_M file; it has F16" in one_line(pull(fake_hub, "demo/tiny-GGUF:Q4_K_M"))
    fake_hub.faults.status["tiny-F16.gguf"] = [(404, None)]
    assert "has no file tiny-F16.gguf" in one_line(pull(fake_hub, "demo/tiny-GGUF"))
    assert "not a Hugging Face repository" in one_line(pull(fake_hub, "../etc"))
    unreachable = council(
        "models",
        "pull",
        "demo/tiny-GGUF",
        env={**hub_env(fake_hub), "HF_ENDPOINT": "http://127.0.0.1:9"},
    )
    assert "cannot reach http://127.0.0.1:9" in one_line(unreachable)


def test_a_gated_repo_needs_the_token_and_the_token_is_never_kept(
    fake_hub: FakeHub, tmp_path: Path, isolated_data: DataFolder
) -> None:
    fake_hub.add("meta/gated-GGUF", {"g-F16.gguf": demo(tmp_path / "g-F16.gguf")}, gated=True)
    line = one_line(pull(fake_hub, "meta/gated-GGUF"))
    assert "gated" in line
    assert "HF_TOKEN" in line

    result = pull(fake_hub, "meta/gated-GGUF", HF_TOKEN=TOKEN)
    assert result.returncode == 0, result.stderr
    assert TOKEN not in result.stdout + result.stderr
    for path in isolated_data.root.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    resolves = [item for item in fake_hub.log if "/resolve/" in item.path]
    assert resolves
    assert resolves[-1].authorization


def test_the_token_goes_to_the_endpoint_but_not_to_the_cdn_a_download_is_sent_to(
    fake_hub: FakeHub, tmp_path: Path, isolated_data: DataFolder
) -> None:
    fake_hub.add("meta/gated-GGUF", {"g-F16.gguf": demo(tmp_path / "g-F16.gguf")}, gated=True)
    with running_hub(host="127.0.0.2") as cdn:  # another host, as the Hub's CDN is
        cdn.repos = fake_hub.repos
        fake_hub.cdn = cdn.url
        result = pull(fake_hub, "meta/gated-GGUF", HF_TOKEN=TOKEN)
    assert result.returncode == 0, result.stderr
    resolves = [item for item in fake_hub.log if "/resolve/" in item.path]
    bodies = [item for item in cdn.log if item.path.startswith("/cdn/")]
    assert resolves
    assert all(item.authorization for item in resolves)
    assert bodies
    assert not any(item.authorization for item in bodies)
    assert len(ggufs(isolated_data)) == 1


def test_with_a_memory_budget_the_largest_quantization_that_fits_is_pulled(
    fake_hub: FakeHub, tmp_path: Path, isolated_data: DataFolder
) -> None:
    files = {
        f"tiny-{quant}.gguf": demo(tmp_path / f"tiny-{quant}.gguf", quant)
        for quant in ("Q4_0", "Q8_0", "F16")
    }
    fake_hub.add("demo/tiny-GGUF", files)
    sizes = {name: path.stat().st_size for name, path in files.items()}
    assert sizes["tiny-Q4_0.gguf"] < sizes["tiny-Q8_0.gguf"] < sizes["tiny-F16.gguf"]

    too_small = one_line(pull(fake_hub, "demo/tiny-GGUF", "--memory", "100M"))
    assert "nothing in demo/tiny-GGUF fits in" in too_small
    chosen = pull(fake_hub, "demo/tiny-GGUF", "--memory", "1G")
    assert chosen.returncode == 0, chosen.stderr
    assert "> tiny-F16.gguf" in chosen.stdout
    assert [p.name for p in ggufs(isolated_data)] == ["tiny-F16.gguf"]

    forced = pull(fake_hub, "demo/tiny-GGUF:Q8_0", "--memory", "100M")
    assert "add --force" in one_line(forced)
    assert pull(fake_hub, "demo/tiny-GGUF:Q8_0", "--memory", "100M", "--force").returncode == 0
    assert sorted(p.name for p in ggufs(isolated_data)) == ["tiny-F16.gguf", "tiny-Q8_0.gguf"]


def test_rm_asks_refuses_a_seated_model_and_deletes_with_its_source_record(
    fake_hub: FakeHub, tmp_path: Path, isolated_data: DataFolder
) -> None:
    from council.config import HubConfig, SeatConfig, save_config

    fake_hub.add("demo/tiny-GGUF", {"tiny-F16.gguf": demo(tmp_path / "tiny-F16.gguf")})
    assert pull(fake_hub, "demo/tiny-GGUF").returncode == 0
    save_config(isolated_data, HubConfig(seats=(SeatConfig("t", "tiny-GGUF/tiny-F16.gguf"),)))
    assert "is seated (t)" in one_line(council("models", "rm", "tiny-F16", "--yes"))

    save_config(isolated_data, HubConfig(seats=()))
    declined = subprocess.run(
        [sys.executable, "-m", "council", "models", "rm", "tiny-GGUF"],
        input="n\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert declined.returncode == 1
    assert "nothing deleted" in declined.stderr
    assert len(ggufs(isolated_data)) == 1

    done = council("models", "rm", "tiny-GGUF/tiny-F16.gguf", "--yes")
    assert done.returncode == 0, done.stderr
    assert "deleted tiny-GGUF/tiny-F16.gguf" in done.stdout
    assert not (isolated_data.models / "tiny-GGUF").exists()
    assert "no model 'tiny-F16'" in one_line(council("models", "show", "tiny-F16"))
