"""A split model (`council models split`) runs in the tab as one model, in Debian's Chromium."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import httpx
from playwright.sync_api import Browser, expect

from council.datafolder import DataFolder
from council.engine.binary import EngineBinary
from council.models.demo import DemoShape, write_demo_model
from tests.browser.conftest import new_page, screenshot
from tests.browser.test_seat import ask, loaded_from, model_bytes_sent, wait_for_model_urls
from tests.hubs import HubProcess

# About 6.6 MB: with --max-size 1M, seven shards that a tab loads in a second or two.
SHAPE = DemoShape(embedding_length=256, block_count=4, feed_forward_length=768)


def split(data: DataFolder, engine: EngineBinary) -> list[str]:
    write_demo_model(data.models / "big.gguf", name="big", shape=SHAPE)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "council",
            "models",
            "split",
            "big.gguf",
            "--max-size",
            "1M",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "COUNCIL_LLAMA_SERVER": str(engine.path)},  # COUNCIL_DATA: the stick
    )
    return list(json.loads(done.stdout)["shards"])


def test_the_tab_loads_a_split_model_from_its_first_shards_url_and_generates(
    start_hub: Callable[..., HubProcess],
    isolated_data: DataFolder,
    engine_binary: EngineBinary,
    browser: Browser,
) -> None:
    shards = split(isolated_data, engine_binary)
    assert len(shards) > 2
    hub = start_hub()
    hub.wait_ok()
    wait_for_model_urls(hub)
    listed = {m["path"]: m for m in httpx.get(f"{hub.url}/api/models", timeout=10).json()["models"]}
    urls = listed[shards[0]]["urls"]
    with new_page(browser, viewport={"width": 1280, "height": 900}) as page:
        page.goto(f"{hub.url}/seat/?model={shards[0]}")
        source, downloaded = loaded_from(page)
        assert source == "hub"
        total = sum((isolated_data.models / shard).stat().st_size for shard in shards)
        assert downloaded > total  # every shard, and the responses' headers
        expect(page.locator("#reasons")).to_contain_text(
            "the model asked for, council demo (big, random weights) · 6.6 MB"
        )
        expect(page.locator("#decision")).to_have_text("Runs in this tab.")
        ask(page, "Hello from a split model")
        screenshot(page, "seat-split-model")
    for shard, url in zip(shards, urls, strict=True):
        assert model_bytes_sent(hub, url) == (isolated_data.models / shard).stat().st_size
