"""The hub's pulls (the Models panel's API) against the loopback Hub stand-in: search, the
file table, a pull watched over server-sent events to a model on the stick, a cancel that
leaves nothing, and a pull the hub finds half-done at start and finishes."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from council.models.demo import write_demo_model
from council.models.starter import starter_model
from council.pull.download import CHECKPOINT
from tests.fake_hf import FakeHub, pull_killed_past_a_checkpoint, running_hub
from tests.hubs import HubProcess

StartHub = Callable[..., HubProcess]
REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
STARTER = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    with running_hub() as hub:
        hub.add(REPO, {STARTER: starter_model()}, downloads=900)
        tiny = write_demo_model(tmp_path / "tiny-F16.gguf")
        hub.add("demo/tiny-GGUF", {"tiny-F16.gguf": tiny}, downloads=10)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        yield hub


def pull_events(hub: HubProcess, until: Callable[[list[dict[str, Any]]], bool]) -> list[Any]:
    """Every snapshot the event stream sent, up to the first that satisfies `until`."""
    snapshots = []
    with httpx.stream("GET", f"{hub.url}/api/pulls/events", timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                snapshots.append(json.loads(line.removeprefix("data: "))["pulls"])
                if until(snapshots[-1]):
                    return snapshots
    pytest.fail("the event stream ended first")


def test_search_files_and_a_pull_watched_to_a_model_on_the_stick(
    fake_hub: FakeHub, start_hub: StartHub
) -> None:
    hub = start_hub()
    hub.wait_ok()
    found = httpx.get(f"{hub.url}/api/hf/search", params={"q": "smollm2"}).json()["repos"]
    assert [repo["repo"] for repo in found] == [REPO]
    files = httpx.get(f"{hub.url}/api/hf/files", params={"repo": REPO}).json()
    assert files["chosen"] == STARTER
    (row,) = files["candidates"]
    assert (row["name"], row["quant"], row["fit"]) == (STARTER, "Q4_1", "fits")
    assert row["memory"] > row["size"]

    started = httpx.post(f"{hub.url}/api/pulls", json={"repo": REPO, "file": STARTER})
    assert started.status_code == 202, started.text
    job = started.json()
    again = httpx.post(f"{hub.url}/api/pulls", json={"repo": REPO, "file": STARTER}).json()
    assert again["id"] == job["id"]  # asked twice: one pull

    snapshots = pull_events(hub, lambda pulls: pulls[-1]["state"] in ("done", "failed"))
    final = snapshots[-1][-1]
    assert final["state"] == "done", final
    assert final["model"] == f"SmolLM2-135M-Instruct-GGUF/{STARTER}"
    assert final["done"] == final["total"] == starter_model().stat().st_size
    models = {m["path"]: m for m in httpx.get(f"{hub.url}/api/models").json()["models"]}
    assert models[final["model"]]["source"] == f"{REPO}@0123456"
    placed = hub.data / "models" / final["model"]
    assert placed.read_bytes() == starter_model().read_bytes()


def test_a_cancelled_pull_stops_and_leaves_nothing_to_resume(
    fake_hub: FakeHub, start_hub: StartHub
) -> None:
    fake_hub.faults.throttle = 5_000_000
    hub = start_hub()
    hub.wait_ok()
    job = httpx.post(f"{hub.url}/api/pulls", json={"repo": REPO}).json()
    pull_events(hub, lambda pulls: pulls[-1]["done"] > 1_000_000)
    assert httpx.delete(f"{hub.url}/api/pulls/{job['id']}").status_code == 204
    final = pull_events(hub, lambda pulls: pulls[-1]["state"] != "running")[-1][-1]
    assert (final["state"], final["error"]) == ("cancelled", "cancelled")
    assert list((hub.data / "downloads").iterdir()) == []
    assert not list((hub.data / "models").rglob(STARTER))
    assert httpx.delete(f"{hub.url}/api/pulls/nope").status_code == 404


def test_the_hub_finishes_a_pull_it_finds_half_done_when_it_starts(
    fake_hub: FakeHub, start_hub: StartHub, isolated_data: Any
) -> None:
    fake_hub.faults.throttle = 25_000_000
    env = {**os.environ, "HF_ENDPOINT": fake_hub.url}
    command = [sys.executable, "-m", "council", "models", "pull", REPO]
    pull_killed_past_a_checkpoint(command, env, isolated_data.downloads)
    fake_hub.faults.throttle = None

    hub = start_hub()
    hub.wait_ok()
    assert f"resuming the pull of {STARTER} from {REPO}" in hub.text()
    final = pull_events(hub, lambda pulls: bool(pulls) and pulls[-1]["state"] != "running")
    job = final[-1][-1]
    assert job["state"] == "done", job
    assert job["resumed_from"] >= CHECKPOINT
    assert fake_hub.ranges(STARTER)[-1] == f"bytes={job['resumed_from']}-"


def test_bad_pulls_are_json_errors_and_store_nothing(
    fake_hub: FakeHub, start_hub: StartHub
) -> None:
    hub = start_hub()
    hub.wait_ok()
    missing = httpx.get(f"{hub.url}/api/hf/files", params={"repo": "demo/absent"})
    assert missing.status_code == 404
    assert "no repository demo/absent" in missing.json()["error"]["message"]
    bad = httpx.post(f"{hub.url}/api/pulls", json={"repo": "../../etc"})
    assert bad.status_code == 400
    assert "not a Hugging Face repository" in bad.json()["error"]["message"]
    assert httpx.post(f"{hub.url}/api/pulls", json={"file": "x"}).status_code == 400
    assert httpx.get(f"{hub.url}/api/hf/search", params={"q": ""}).status_code == 400
    failed = httpx.post(f"{hub.url}/api/pulls", json={"repo": "demo/absent"}).json()
    final = pull_events(hub, lambda pulls: pulls[-1]["state"] not in ("queued", "running"))
    assert final[-1][-1]["id"] == failed["id"]
    assert "no repository demo/absent" in final[-1][-1]["error"]
    assert httpx.get(f"{hub.url}/api/pulls").json()["pulls"][-1]["state"] == "failed"
    assert list((hub.data / "downloads").iterdir()) == []
