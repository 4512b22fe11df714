"""Small GGUF files written for a test: headers the catalog reads, tensors of zeros."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFWriter


def write_model(
    path: Path,
    *,
    split_max_tensors: int = 0,
    file_type: int | None = None,
    head_count_kv: int = 2,
    key_length: int | None = None,
    chat_template: str | None = None,
) -> list[Path]:
    """A small llama-shaped GGUF (4 F32 tensors), split by GGUFWriter itself when asked."""
    writer = GGUFWriter(path, "llama", split_max_tensors=split_max_tensors)
    writer.add_name("tiny")
    writer.add_context_length(512)
    writer.add_embedding_length(32)
    writer.add_block_count(2)
    writer.add_head_count(4)
    writer.add_head_count_kv(head_count_kv)
    if key_length is not None:
        writer.add_key_length(key_length)
        writer.add_value_length(key_length)
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    if file_type is not None:
        writer.add_file_type(file_type)
    writer.add_tensor("token_embd.weight", np.zeros((10, 32), dtype=np.float32))
    writer.add_tensor("blk.0.attn_norm.weight", np.ones(32, dtype=np.float32))
    writer.add_tensor("blk.1.attn_norm.weight", np.ones(32, dtype=np.float32))
    writer.add_tensor("output.weight", np.zeros((10, 32), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return sorted(path.parent.glob(f"{path.stem}*.gguf"))
