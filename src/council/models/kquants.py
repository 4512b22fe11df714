"""Writing llama.cpp's Q4_K and Q6_K blocks, which gguf-py can read but not write.

gguf-py (0.19) quantizes the legacy formats (Q4_0, Q4_1, Q8_0...) and dequantizes everything,
but has no quantizer for the K formats, and those are what real downloads use (Q4_K_M is
mostly Q4_K with some Q6_K). The engine self-test needs them, because ggml routes them through
different CPU kernels (AMX, the AVX2 repack) than the legacy formats. These are the plain
min/max quantizers, not llama.cpp's error-minimising search: the weights they serve are random
anyway, and what matters is that the bytes are laid out exactly as ggml reads them, which the
tests check against gguf-py's own dequantizer.
"""

from __future__ import annotations

import numpy as np

QK_K = 256  # values per super-block


def _blocks(data: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    rows: np.ndarray = np.asarray(data, dtype=np.float32)
    if rows.shape[-1] % QK_K:
        raise ValueError(f"K formats need rows of a multiple of {QK_K} values, got {rows.shape}")
    shape: tuple[int, ...] = rows.shape
    return rows.reshape(-1, QK_K), shape


def _safe_inverse(values: np.ndarray) -> np.ndarray:
    inverse: np.ndarray = np.divide(1.0, values, out=np.zeros_like(values), where=values != 0)
    return inverse


def quantize_q4_k(data: np.ndarray) -> np.ndarray:
    """Rows of float values -> rows of Q4_K blocks (144 bytes per 256 values)."""
    blocks, shape = _blocks(data)
    n = blocks.shape[0]
    sub = blocks.reshape(n, 8, 32)
    low = np.minimum(sub.min(axis=-1), 0.0)  # value = scale * q - min, with min >= 0
    scale = (sub.max(axis=-1) - low) / 15.0
    mins = -low
    d = (scale.max(axis=-1, keepdims=True) / 63.0).astype(np.float16).astype(np.float32)
    dmin = (mins.max(axis=-1, keepdims=True) / 63.0).astype(np.float16).astype(np.float32)
    sc = np.clip(np.rint(scale * _safe_inverse(d)), 0, 63).astype(np.uint8)
    mq = np.clip(np.rint(mins * _safe_inverse(dmin)), 0, 63).astype(np.uint8)
    step = (d * sc)[..., None]
    offset = (dmin * mq)[..., None]
    q = np.clip(np.rint((sub + offset) * _safe_inverse(step)), 0, 15).astype(np.uint8)

    # 12 bytes of 6-bit scales and mins, in the packing of ggml's get_scale_min_k4.
    packed = np.empty((n, 12), dtype=np.uint8)
    packed[:, 0:4] = (sc[:, :4] & 0x3F) | ((sc[:, 4:] >> 4) << 6)
    packed[:, 4:8] = (mq[:, :4] & 0x3F) | ((mq[:, 4:] >> 4) << 6)
    packed[:, 8:12] = (sc[:, 4:] & 0x0F) | ((mq[:, 4:] & 0x0F) << 4)
    # Each 32 bytes hold two sub-blocks: the first in the low nibbles, the next in the high.
    pairs = q.reshape(n, 4, 2, 32)
    qs = (pairs[:, :, 0, :] | (pairs[:, :, 1, :] << 4)).reshape(n, 128)
    out = np.concatenate(
        [d.astype(np.float16).view(np.uint8), dmin.astype(np.float16).view(np.uint8), packed, qs],
        axis=-1,
    )
    return out.reshape(*shape[:-1], shape[-1] // QK_K * 144)


def quantize_q6_k(data: np.ndarray) -> np.ndarray:
    """Rows of float values -> rows of Q6_K blocks (210 bytes per 256 values)."""
    blocks, shape = _blocks(data)
    n = blocks.shape[0]
    sub = blocks.reshape(n, 16, 16)
    scale = np.abs(sub).max(axis=-1) / 31.0
    d = (scale.max(axis=-1, keepdims=True) / 127.0).astype(np.float16).astype(np.float32)
    sc = np.clip(np.rint(scale * _safe_inverse(d)), -128, 127).astype(np.int8)
    step = (d * sc.astype(np.float32))[..., None]
    q = (np.clip(np.rint(sub * _safe_inverse(step)), -32, 31) + 32).astype(np.uint8)

    # Per 128 values: ql[l] holds value l (low nibble) and 64 + l (high nibble);
    # qh[l] holds the top two bits of values l, 32 + l, 64 + l and 96 + l.
    halves = q.reshape(n, 2, 4, 32)
    low = halves & 0x0F
    ql = np.concatenate(
        [low[:, :, 0] | (low[:, :, 2] << 4), low[:, :, 1] | (low[:, :, 3] << 4)], axis=-1
    ).reshape(n, 128)
    high = halves >> 4
    qh = high[:, :, 0] | (high[:, :, 1] << 2) | (high[:, :, 2] << 4) | (high[:, :, 3] << 6)
    out = np.concatenate(
        [ql, qh.reshape(n, 64), sc.view(np.uint8), d.astype(np.float16).view(np.uint8)], axis=-1
    )
    return out.reshape(*shape[:-1], shape[-1] // QK_K * 210)
