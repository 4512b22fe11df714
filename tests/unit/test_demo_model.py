"""The generated demo model: a real llama GGUF, reproducible from its seed, written atomically."""

from __future__ import annotations

from pathlib import Path

import pytest
from gguf import GGUFReader, TokenType

from council.models.catalog import read_model
from council.models.demo import DEMO_CONTEXT_LENGTH, write_demo_model


def test_demo_model_reads_back_as_a_valid_llama_demo(tmp_path: Path) -> None:
    path = write_demo_model(tmp_path / "demo.gguf", seed=7, name="tiny")

    info = read_model(path, tmp_path)

    assert info.valid, info.reason
    assert info.path == "demo.gguf"
    assert info.architecture == "llama"
    assert info.demo
    assert info.has_chat_template
    assert info.quantization == "F16"
    assert info.parameters is not None
    assert info.parameters > 0
    assert info.context_length == DEMO_CONTEXT_LENGTH == 2048
    assert info.name == "council demo (tiny, random weights)"
    assert info.size_bytes == path.stat().st_size


def test_same_seed_writes_identical_bytes(tmp_path: Path) -> None:
    first = write_demo_model(tmp_path / "a.gguf", seed=3)
    second = write_demo_model(tmp_path / "b.gguf", seed=3)

    assert first.read_bytes() == second.read_bytes()


def test_different_seeds_write_different_weights(tmp_path: Path) -> None:
    first = write_demo_model(tmp_path / "a.gguf", seed=1)
    second = write_demo_model(tmp_path / "b.gguf", seed=2)

    assert first.read_bytes() != second.read_bytes()
    weights_a = GGUFReader(first).tensors[0].data
    weights_b = GGUFReader(second).tensors[0].data
    assert weights_a.shape == weights_b.shape
    assert (weights_a != weights_b).any()


def test_no_part_file_is_left_behind(tmp_path: Path) -> None:
    write_demo_model(tmp_path / "demo.gguf")
    write_demo_model(tmp_path / "demo.gguf", seed=1)  # replacing an existing model too

    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.gguf"]


def test_demo_records_its_seed_and_demo_flag(tmp_path: Path) -> None:
    reader = GGUFReader(write_demo_model(tmp_path / "demo.gguf", seed=42))

    assert reader.fields["council.demo"].contents() is True
    assert reader.fields["council.demo.seed"].contents() == 42
    assert reader.fields["general.architecture"].contents() == "llama"
    assert reader.fields["general.file_type"].contents() == 1


def test_demo_vocabulary_is_byte_level_sentencepiece(tmp_path: Path) -> None:
    reader = GGUFReader(write_demo_model(tmp_path / "demo.gguf"))

    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    assert reader.fields["tokenizer.ggml.model"].contents() == "llama"
    assert tokens[:3] == ["<unk>", "<s>", "</s>"]
    assert types[:3] == [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
    byte_tokens = [t for t, kind in zip(tokens, types, strict=True) if kind == TokenType.BYTE]
    assert byte_tokens == [f"<0x{b:02X}>" for b in range(256)]
    assert reader.fields["tokenizer.ggml.bos_token_id"].contents() == 1
    assert reader.fields["tokenizer.ggml.eos_token_id"].contents() == 2
    assert reader.fields["tokenizer.ggml.add_bos_token"].contents() is True
    assert reader.fields["tokenizer.ggml.add_eos_token"].contents() is False
    assert "add_generation_prompt" in reader.fields["tokenizer.chat_template"].contents()


def test_demo_tensors_have_the_shapes_llama_cpp_expects(tmp_path: Path) -> None:
    reader = GGUFReader(write_demo_model(tmp_path / "demo.gguf"))
    # ggml `ne` order: the first number is the row length
    shapes = {t.name: t.shape.tolist() for t in reader.tensors}
    n_vocab = len(reader.fields["tokenizer.ggml.tokens"].contents())
    n_embd = reader.fields["llama.embedding_length"].contents()
    n_ff = reader.fields["llama.feed_forward_length"].contents()
    head_dim = n_embd // reader.fields["llama.attention.head_count"].contents()
    n_kv = reader.fields["llama.attention.head_count_kv"].contents() * head_dim

    assert shapes["token_embd.weight"] == [n_embd, n_vocab]
    assert shapes["output.weight"] == [n_embd, n_vocab]
    assert shapes["output_norm.weight"] == [n_embd]
    assert shapes["blk.0.attn_q.weight"] == [n_embd, n_embd]
    assert shapes["blk.0.attn_k.weight"] == [n_embd, n_kv]
    assert shapes["blk.1.attn_v.weight"] == [n_embd, n_kv]
    assert shapes["blk.1.ffn_gate.weight"] == [n_embd, n_ff]
    assert shapes["blk.1.ffn_down.weight"] == [n_ff, n_embd]
    assert reader.fields["llama.rope.dimension_count"].contents() == head_dim
    assert len(shapes) == 3 + 9 * reader.fields["llama.block_count"].contents()


def test_seed_outside_32_bits_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="32 bits"):
        write_demo_model(tmp_path / "demo.gguf", seed=-1)

    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("quantization", ["Q8_0", "Q4_0"])
def test_a_quantized_demo_holds_its_matrices_in_blocks_and_its_norms_in_f32(
    tmp_path: Path, quantization: str
) -> None:
    path = write_demo_model(tmp_path / "demo.gguf", quantization=quantization)
    f16 = write_demo_model(tmp_path / "f16.gguf")
    info = read_model(path, tmp_path)
    assert info.valid, info.reason
    assert info.quantization == quantization
    assert info.parameters == read_model(f16, tmp_path).parameters
    assert path.stat().st_size < f16.stat().st_size
    types = {t.name: t.tensor_type.name for t in GGUFReader(path).tensors}
    assert types["blk.0.attn_q.weight"] == types["token_embd.weight"] == quantization
    assert types["blk.0.attn_norm.weight"] == "F32"


def test_an_unknown_quantization_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="quantization must be one of F16, Q8_0, Q4_0"):
        write_demo_model(tmp_path / "demo.gguf", quantization="Q3_K")
    assert list(tmp_path.iterdir()) == []
