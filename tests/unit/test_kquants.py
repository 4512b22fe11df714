"""council's Q4_K and Q6_K blocks read back through gguf-py's dequantizer as what was written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType, quants

from council.models.demo import DemoShape, write_demo_model
from council.models.kquants import quantize_q4_k, quantize_q6_k

ROWS = (np.random.default_rng(7).standard_normal((16, 512)) * 0.02).astype(np.float32)


@pytest.mark.parametrize(
    ("quantize", "kind", "bytes_per_block", "tolerance"),
    [
        (quantize_q4_k, GGMLQuantizationType.Q4_K, 144, 0.06),
        (quantize_q6_k, GGMLQuantizationType.Q6_K, 210, 0.02),
    ],
)
def test_k_blocks_dequantize_to_the_values_written(
    quantize: object, kind: GGMLQuantizationType, bytes_per_block: int, tolerance: float
) -> None:
    blocks = quantize(ROWS)  # type: ignore[operator]
    assert blocks.shape == (16, 2 * bytes_per_block)
    back = quants.dequantize(blocks, kind)
    assert back.shape == ROWS.shape
    assert np.abs(back - ROWS).max() <= tolerance * np.abs(ROWS).max()
    assert np.corrcoef(back.ravel(), ROWS.ravel())[0, 1] > 0.99


def test_all_zero_blocks_stay_zero() -> None:
    zeros = np.zeros((2, 256), dtype=np.float32)
    assert not quants.dequantize(quantize_q4_k(zeros), GGMLQuantizationType.Q4_K).any()
    assert not quants.dequantize(quantize_q6_k(zeros), GGMLQuantizationType.Q6_K).any()


def test_a_k_format_demo_model_needs_rows_of_256_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="multiples of 256"):
        write_demo_model(tmp_path / "narrow.gguf", quantization="Q4_K")
    wide = DemoShape(embedding_length=256, feed_forward_length=512)
    assert write_demo_model(tmp_path / "wide.gguf", quantization="Q6_K", shape=wide).is_file()
    assert not (tmp_path / "narrow.gguf.part").exists()
