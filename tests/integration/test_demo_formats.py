"""llama-server loads and runs the demo model in every format the generator writes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from council.engine.binary import EngineBinary
from council.models.demo import QUANTIZATIONS, write_demo_model
from tests.hubs import llama_server


@pytest.mark.parametrize("quantization", list(QUANTIZATIONS))
def test_llama_server_generates_with_the_demo_model_in_each_format(
    engine_binary: EngineBinary, tmp_path: Path, quantization: str
) -> None:
    model = write_demo_model(tmp_path / "demo.gguf", quantization=quantization)
    with llama_server(engine_binary.path, model) as base:
        props = httpx.get(f"{base}/props", timeout=10).json()
        assert props["model_path"].endswith("demo.gguf")
        answer = httpx.post(f"{base}/completion", json={"prompt": "hello", "n_predict": 8},
                            timeout=30).json()  # fmt: skip
    assert answer["tokens_predicted"] == 8
    assert answer["content"]
