"""llama-server loads and runs the demo model in every format the generator writes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from council.engine.binary import EngineBinary
from council.models.demo import K_QUANTIZERS, QUANTIZATIONS, DemoShape, write_demo_model
from tests.hubs import llama_server

# The K formats pack 256 values a block: they need rows of a multiple of 256.
WIDE = DemoShape(embedding_length=256, block_count=2, feed_forward_length=512)


@pytest.mark.parametrize("quantization", list(QUANTIZATIONS))
def test_llama_server_generates_with_the_demo_model_in_each_format(
    engine_binary: EngineBinary, tmp_path: Path, quantization: str
) -> None:
    block_type = QUANTIZATIONS[quantization][0]
    shape = WIDE if block_type in K_QUANTIZERS else DemoShape()
    model = write_demo_model(tmp_path / "demo.gguf", quantization=quantization, shape=shape)
    with llama_server(engine_binary.path, model) as base:
        props = httpx.get(f"{base}/props", timeout=10).json()
        assert props["model_path"].endswith("demo.gguf")
        # A prompt of 60 byte tokens is processed as a batch: the matrix kernels, not just
        # the one-row ones of generation.
        answer = httpx.post(
            f"{base}/completion", json={"prompt": "hello " * 10, "n_predict": 8}, timeout=30
        ).json()
    assert answer["tokens_predicted"] == 8
    assert answer["content"]
