"""The demo model: a tiny llama-architecture GGUF with random weights, generated on demand.

council needs a model that always exists, weighs next to nothing and runs anywhere, so the
hub can be tried (and tested end to end against the real llama-server) before anyone has
downloaded a multi-gigabyte file. Shipping a binary blob would bloat the repository and hide
how it was made; generating it from a seed keeps it reproducible: the same seed gives the
same bytes, so tests can compare files and a demo folder can be rebuilt at will.

The vocabulary is byte-level SentencePiece (`<unk>`, `<s>`, `</s>` and the 256 `<0xNN>`
byte tokens): any text tokenizes through byte fallback, and nothing is borrowed from a real
tokenizer. The weights are noise, so the output is noise; the model is labelled as a demo
in `general.name` and in the `council.demo` key so no screen mistakes it for a real one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter, LlamaFileType, TokenType, quants

from council.models.kquants import QK_K, quantize_q4_k, quantize_q6_k

DEMO_ARCHITECTURE = "llama"
DEMO_CONTEXT_LENGTH = 2048
DEMO_EMBEDDING_LENGTH = 64
DEMO_BLOCK_COUNT = 2
DEMO_HEAD_COUNT = 4
DEMO_HEAD_COUNT_KV = 2
DEMO_FEED_FORWARD_LENGTH = 192


@dataclass(frozen=True, slots=True)
class DemoShape:
    """A demo model's size. The default is tiny (thousands of tokens/s on a laptop); larger
    shapes give benchmarks a model that generates at the pace of a real one."""

    embedding_length: int = DEMO_EMBEDDING_LENGTH
    block_count: int = DEMO_BLOCK_COUNT
    feed_forward_length: int = DEMO_FEED_FORWARD_LENGTH
    head_count: int = DEMO_HEAD_COUNT
    head_count_kv: int = DEMO_HEAD_COUNT_KV

    @property
    def head_dim(self) -> int:
        return self.embedding_length // self.head_count


DEMO_SHAPE = DemoShape()
DEMO_KEY = "council.demo"
DEMO_SEED_KEY = "council.demo.seed"

UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
BYTE_TOKEN_OFFSET = 3  # token id of <0x00>; byte b is token BYTE_TOKEN_OFFSET + b

# ChatML: needs no special tokens in the vocabulary (the markers tokenize as bytes), and
# llama-server's Jinja engine renders it for /v1/chat/completions.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _vocabulary() -> tuple[list[bytes], list[float], list[int]]:
    tokens = [b"<unk>", b"<s>", b"</s>"]
    types = [int(TokenType.UNKNOWN), int(TokenType.CONTROL), int(TokenType.CONTROL)]
    tokens += [f"<0x{byte:02X}>".encode("ascii") for byte in range(256)]
    types += [int(TokenType.BYTE)] * 256
    scores = [0.0] * len(tokens)
    return tokens, scores, types


# Weight formats the generator writes: F16, or a llama.cpp block quantization of every matrix
# (what browsers and small laptops run), made with gguf-py's own quantizer where it has one.
# The K formats pack 256 values a block, so they need a shape whose widths are multiples of 256.
QUANTIZATIONS = {
    "F16": (None, LlamaFileType.MOSTLY_F16),
    "Q8_0": (GGMLQuantizationType.Q8_0, LlamaFileType.MOSTLY_Q8_0),
    "Q4_0": (GGMLQuantizationType.Q4_0, LlamaFileType.MOSTLY_Q4_0),
    "Q4_1": (GGMLQuantizationType.Q4_1, LlamaFileType.MOSTLY_Q4_1),
    "Q4_K": (GGMLQuantizationType.Q4_K, LlamaFileType.MOSTLY_Q4_K_S),
    "Q6_K": (GGMLQuantizationType.Q6_K, LlamaFileType.MOSTLY_Q6_K),
}
K_QUANTIZERS = {
    GGMLQuantizationType.Q4_K: quantize_q4_k,
    GGMLQuantizationType.Q6_K: quantize_q6_k,
}


def _weights(seed: int, n_vocab: int, shape: DemoShape) -> list[tuple[str, np.ndarray]]:
    """All tensors in llama.cpp's names; numpy shapes are ggml's `ne` reversed."""
    rng = np.random.default_rng(seed)
    n_embd, n_ff = shape.embedding_length, shape.feed_forward_length
    n_kv = shape.head_count_kv * shape.head_dim

    def matrix(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) * 0.02).astype(np.float16)

    def norm() -> np.ndarray:
        return np.ones(n_embd, dtype=np.float32)

    # Pure noise would sample all 256 bytes: NULs, escapes and broken UTF-8 in the browser.
    # A constant channel 0 in every embedding dominates the residual stream, so after the final
    # norm logit_i is about 8 * output[i, 0]: +0.5 on printable ASCII and newline, -0.5
    # elsewhere makes the model babble readable characters. EOS stays unlikely, so replies
    # run to max_tokens.
    embeddings = matrix(n_vocab, n_embd)
    embeddings[:, 0] = 1.0
    output = matrix(n_vocab, n_embd)
    output[:, 0] = -0.5
    printable = [BYTE_TOKEN_OFFSET + byte for byte in (0x0A, *range(0x20, 0x7F))]
    output[printable, 0] = 0.5

    tensors: list[tuple[str, np.ndarray]] = [("token_embd.weight", embeddings)]
    for layer in range(shape.block_count):
        block = f"blk.{layer}"
        tensors += [
            (f"{block}.attn_norm.weight", norm()),
            (f"{block}.attn_q.weight", matrix(n_embd, n_embd)),
            (f"{block}.attn_k.weight", matrix(n_kv, n_embd)),
            (f"{block}.attn_v.weight", matrix(n_kv, n_embd)),
            (f"{block}.attn_output.weight", matrix(n_embd, n_embd)),
            (f"{block}.ffn_norm.weight", norm()),
            (f"{block}.ffn_gate.weight", matrix(n_ff, n_embd)),
            (f"{block}.ffn_up.weight", matrix(n_ff, n_embd)),
            (f"{block}.ffn_down.weight", matrix(n_embd, n_ff)),
        ]
    tensors += [("output_norm.weight", norm()), ("output.weight", output)]
    return tensors


def _add_tensor(
    writer: GGUFWriter, name: str, data: np.ndarray, block_type: GGMLQuantizationType | None
) -> None:
    """Matrices in `block_type` when one is given; norms (vectors) always stay F32."""
    if block_type is not None and data.ndim == 2:
        quantize = K_QUANTIZERS.get(block_type, lambda rows: quants.quantize(rows, block_type))
        writer.add_tensor(name, quantize(data.astype(np.float32)), raw_dtype=block_type)
    else:
        writer.add_tensor(name, data)


def write_demo_model(
    path: Path,
    *,
    seed: int = 0,
    name: str = "demo",
    context_length: int = DEMO_CONTEXT_LENGTH,
    shape: DemoShape = DEMO_SHAPE,
    quantization: str = "F16",
) -> Path:
    """Write the demo model to `path` atomically (via a `.gguf.part` beside it); return `path`.
    `quantization` is one of QUANTIZATIONS."""
    if not 0 <= seed < 2**32:
        raise ValueError(f"demo seed must fit in 32 bits, got {seed}")
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {', '.join(QUANTIZATIONS)}")
    block_type, file_type = QUANTIZATIONS[quantization]
    widths = (shape.embedding_length, shape.feed_forward_length)
    if block_type in K_QUANTIZERS and any(width % QK_K for width in widths):
        raise ValueError(
            f"{quantization} needs an embedding and feed-forward length that are "
            f"multiples of {QK_K}, got {widths}"
        )
    path = Path(path)
    part = path.with_suffix(".gguf.part")
    tokens, scores, types = _vocabulary()

    writer = GGUFWriter(part, DEMO_ARCHITECTURE)
    try:
        writer.add_name(f"council demo ({name}, random weights)")
        writer.add_bool(DEMO_KEY, True)
        writer.add_uint32(DEMO_SEED_KEY, seed)
        writer.add_file_type(int(file_type))
        writer.add_context_length(context_length)
        writer.add_embedding_length(shape.embedding_length)
        writer.add_block_count(shape.block_count)
        writer.add_feed_forward_length(shape.feed_forward_length)
        writer.add_head_count(shape.head_count)
        writer.add_head_count_kv(shape.head_count_kv)
        writer.add_rope_dimension_count(shape.head_dim)
        writer.add_rope_freq_base(10000.0)
        writer.add_layer_norm_rms_eps(1e-5)
        writer.add_vocab_size(len(tokens))

        writer.add_tokenizer_model("llama")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        writer.add_unk_token_id(UNK_ID)
        writer.add_bos_token_id(BOS_ID)
        writer.add_eos_token_id(EOS_ID)
        writer.add_add_bos_token(True)
        writer.add_add_eos_token(False)
        writer.add_chat_template(CHAT_TEMPLATE)

        for tensor_name, data in _weights(seed, len(tokens), shape):
            _add_tensor(writer, tensor_name, data, block_type)

        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        for handle in writer.fout or []:
            handle.flush()
            os.fsync(handle.fileno())
        writer.close()
        os.replace(part, path)
    except BaseException:
        writer.close()
        part.unlink(missing_ok=True)
        raise
    return path
