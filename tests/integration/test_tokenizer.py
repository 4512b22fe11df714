"""Token counts for a browser tab's model come from llama-tokenize, built beside the engine, and
agree with what llama-server's own /tokenize says for the same model."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from council.engine.binary import EngineBinary
from council.engine.tokenizer import Tokenizer
from council.models.demo import write_demo_model
from tests.hubs import llama_server
from tests.running import run

TEXTS = [
    "What is the capital of France?",
    "A literal backslash-n \\n stays two characters, and a tab\there is one.",
    "Ünïcödé, 日本語, and an emoji 🦙 all count.",
    "line one\nline two\n\n" * 40,
    "",
]


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return write_demo_model(tmp_path / "tab.gguf", seed=5)


def test_counts_agree_with_llama_servers_own_tokenize(
    engine_binary: EngineBinary, model: Path
) -> None:
    tokenizer = Tokenizer.beside(engine_binary, model)
    assert tokenizer is not None, "llama-tokenize is built beside llama-server"
    counts = [run(tokenizer.count(text)) for text in TEXTS]
    with llama_server(engine_binary.path, model) as base:
        expected = [
            len(httpx.post(f"{base}/tokenize", json={"content": text}).json()["tokens"])
            for text in TEXTS
        ]
    assert counts == expected
    assert counts[-1] == 0
    assert all(count > 0 for count in counts[:-1])


def test_a_file_that_is_not_a_model_counts_as_unknown(
    engine_binary: EngineBinary, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF but not really")
    tokenizer = Tokenizer.beside(engine_binary, broken)
    assert tokenizer is not None
    assert run(tokenizer.count("hello")) is None


def test_an_engine_without_llama_tokenize_has_no_tokenizer(tmp_path: Path, model: Path) -> None:
    lone = tmp_path / "bin" / "llama-server"
    lone.parent.mkdir()
    lone.write_text("")
    assert Tokenizer.beside(EngineBinary(lone, "test"), model) is None
