"""The catalog lists every GGUF under models/, with a reason for each one that cannot load."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFWriter

from council.models.catalog import read_model, scan
from council.models.demo import write_demo_model
from council.units import human_count, human_size
from tests.gguf_files import write_model as _write_model

TINY_PARAMETERS = 10 * 32 * 2 + 32 * 2


def test_scan_finds_models_in_subfolders_with_relative_posix_paths(tmp_path: Path) -> None:
    (tmp_path / "demo" / "deeper").mkdir(parents=True)
    write_demo_model(tmp_path / "demo" / "a.gguf")
    write_demo_model(tmp_path / "demo" / "deeper" / "b.gguf", seed=1)
    write_demo_model(tmp_path / "top.gguf", seed=2)
    (tmp_path / "notes.txt").write_text("not a model")

    paths = [info.path for info in scan(tmp_path)]

    assert paths == ["demo/a.gguf", "demo/deeper/b.gguf", "top.gguf"]
    assert all(info.valid for info in scan(tmp_path))


def test_missing_models_folder_scans_as_empty(tmp_path: Path) -> None:
    assert scan(tmp_path / "nowhere") == []


def test_truncated_model_is_listed_invalid_with_reason(tmp_path: Path) -> None:
    whole = write_demo_model(tmp_path / "whole.gguf").read_bytes()
    (tmp_path / "cut.gguf").write_bytes(whole[: len(whole) // 2])

    info = read_model(tmp_path / "cut.gguf", tmp_path)

    assert not info.valid
    assert info.reason is not None
    assert info.reason.startswith("truncated:")
    assert str(len(whole) // 2) in info.reason
    assert info.size_bytes == len(whole) // 2


def test_model_cut_inside_its_header_is_listed_truncated(tmp_path: Path) -> None:
    whole = write_demo_model(tmp_path / "whole.gguf").read_bytes()
    (tmp_path / "cut.gguf").write_bytes(whole[:300])

    info = read_model(tmp_path / "cut.gguf", tmp_path)

    assert not info.valid
    assert info.reason == "truncated: the file ends inside the header (at byte 300)"


def test_non_gguf_file_is_listed_invalid_with_bad_magic(tmp_path: Path) -> None:
    (tmp_path / "archive.gguf").write_bytes(b"PK\x03\x04" + bytes(100))

    info = read_model(tmp_path / "archive.gguf", tmp_path)

    assert not info.valid
    assert info.reason == "not a GGUF file (bad magic b'PK\\x03\\x04')"


def test_empty_file_is_listed_invalid(tmp_path: Path) -> None:
    (tmp_path / "empty.gguf").touch()

    info = read_model(tmp_path / "empty.gguf", tmp_path)

    assert not info.valid
    assert info.reason == "empty file"
    assert info.size_bytes == 0


def test_random_bytes_after_the_magic_are_listed_invalid(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).bytes(4096)
    (tmp_path / "noise.gguf").write_bytes(b"GGUF" + noise)

    info = read_model(tmp_path / "noise.gguf", tmp_path)

    assert not info.valid
    assert info.reason is not None
    assert info.reason.startswith("corrupt GGUF header")


def test_garbage_after_a_plausible_version_is_listed_invalid(tmp_path: Path) -> None:
    # a valid preamble claiming one key, followed by noise: the key cannot be read
    preamble = b"GGUF" + (3).to_bytes(4, "little") + (0).to_bytes(8, "little")
    preamble += (1).to_bytes(8, "little")
    noise = np.random.default_rng(1).bytes(64)
    (tmp_path / "noise.gguf").write_bytes(preamble + noise)

    info = read_model(tmp_path / "noise.gguf", tmp_path)

    assert not info.valid
    assert info.reason is not None
    assert info.reason.startswith(("corrupt GGUF header", "truncated"))


def test_bad_files_are_listed_beside_the_valid_ones(tmp_path: Path) -> None:
    whole = write_demo_model(tmp_path / "good.gguf").read_bytes()
    (tmp_path / "cut.gguf").write_bytes(whole[:-1000])
    (tmp_path / "archive.gguf").write_bytes(b"PK\x03\x04rest")
    (tmp_path / "empty.gguf").touch()
    (tmp_path / "noise.gguf").write_bytes(b"GGUF" + np.random.default_rng(2).bytes(512))

    listing = scan(tmp_path)

    assert [info.path for info in listing] == [
        "archive.gguf",
        "cut.gguf",
        "empty.gguf",
        "good.gguf",
        "noise.gguf",
    ]
    assert [info.path for info in listing if info.valid] == ["good.gguf"]
    assert all(info.reason and "\n" not in info.reason for info in listing if not info.valid)


def test_broken_link_is_listed_unreadable(tmp_path: Path) -> None:
    (tmp_path / "gone.gguf").symlink_to(tmp_path / "nothing-here.gguf")

    [info] = scan(tmp_path)

    assert info.path == "gone.gguf"
    assert not info.valid
    assert info.reason is not None
    assert info.reason.startswith("unreadable")


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files regardless of mode"
)
def test_unreadable_file_is_listed_invalid(tmp_path: Path) -> None:
    locked = write_demo_model(tmp_path / "locked.gguf")
    locked.chmod(0)
    try:
        info = read_model(locked, tmp_path)
    finally:
        locked.chmod(0o644)

    assert not info.valid
    assert info.reason == "unreadable: permission denied"


def test_hidden_files_and_folders_are_skipped(tmp_path: Path) -> None:
    (tmp_path / ".trash").mkdir()
    write_demo_model(tmp_path / ".trash" / "old.gguf")
    (tmp_path / "._model.gguf").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    write_demo_model(tmp_path / "model.gguf")

    assert [info.path for info in scan(tmp_path)] == ["model.gguf"]


def test_split_model_is_listed_once_under_its_first_shard_with_totals(tmp_path: Path) -> None:
    (tmp_path / "big").mkdir()
    shards = _write_model(tmp_path / "big" / "tiny.gguf", split_max_tensors=2)
    assert [p.name for p in shards] == ["tiny-00001-of-00002.gguf", "tiny-00002-of-00002.gguf"]

    [info] = scan(tmp_path)

    assert info.valid, info.reason
    assert info.path == "big/tiny-00001-of-00002.gguf"
    assert info.shards == ("big/tiny-00001-of-00002.gguf", "big/tiny-00002-of-00002.gguf")
    assert info.size_bytes == sum(p.stat().st_size for p in shards)
    assert info.parameters == TINY_PARAMETERS
    assert info.architecture == "llama"
    assert info.context_length == 512


def test_split_model_with_a_missing_shard_is_invalid_with_reason(tmp_path: Path) -> None:
    shards = _write_model(tmp_path / "tiny.gguf", split_max_tensors=1)
    assert len(shards) == 4
    shards[1].unlink()

    [info] = scan(tmp_path)

    assert info.path == "tiny-00001-of-00004.gguf"
    assert not info.valid
    assert info.reason == "missing shard 2 of 4: tiny-00002-of-00004.gguf"
    assert len(info.shards) == 4


def test_later_shards_without_their_first_shard_are_listed_invalid(tmp_path: Path) -> None:
    shards = _write_model(tmp_path / "tiny.gguf", split_max_tensors=2)
    shards[0].unlink()

    [info] = scan(tmp_path)

    assert info.path == "tiny-00002-of-00002.gguf"
    assert not info.valid
    assert info.reason == "shard 2 of 2 without its first shard tiny-00001-of-00002.gguf"


def test_split_model_with_a_truncated_shard_is_invalid(tmp_path: Path) -> None:
    shards = _write_model(tmp_path / "tiny.gguf", split_max_tensors=2)
    shards[1].write_bytes(shards[1].read_bytes()[:-100])

    [info] = scan(tmp_path)

    assert not info.valid
    assert info.reason is not None
    assert info.reason.startswith("shard 2 of 2 (tiny-00002-of-00002.gguf): truncated:")


def test_quantization_comes_from_the_file_type(tmp_path: Path) -> None:
    _write_model(tmp_path / "q.gguf", file_type=15)

    assert read_model(tmp_path / "q.gguf", tmp_path).quantization == "Q4_K_M"


def test_quantization_falls_back_to_the_most_common_matrix_type(tmp_path: Path) -> None:
    _write_model(tmp_path / "plain.gguf")

    assert read_model(tmp_path / "plain.gguf", tmp_path).quantization == "F32"


def test_kv_bytes_per_token_counts_kv_heads_and_head_dims(tmp_path: Path) -> None:
    _write_model(tmp_path / "gqa.gguf", head_count_kv=2)
    _write_model(tmp_path / "wide.gguf", head_count_kv=1, key_length=64)

    # 2 layers * 2 kv heads * (8 + 8) head dims * 2 bytes; head dim = 32 / 4 heads
    assert read_model(tmp_path / "gqa.gguf", tmp_path).kv_bytes_per_token == 2 * 2 * 16 * 2
    assert read_model(tmp_path / "wide.gguf", tmp_path).kv_bytes_per_token == 2 * 1 * 128 * 2
    assert read_model(tmp_path / "gqa.gguf", tmp_path).block_count == 2


def test_vocabulary_only_file_is_invalid(tmp_path: Path) -> None:
    writer = GGUFWriter(tmp_path / "vocab.gguf", "llama")
    writer.add_token_list(["a", "b"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    info = read_model(tmp_path / "vocab.gguf", tmp_path)

    assert not info.valid
    assert info.reason is not None
    assert info.reason.startswith("no tensors")


def test_model_info_is_json_ready(tmp_path: Path) -> None:
    _write_model(tmp_path / "tiny.gguf", split_max_tensors=2)

    [info] = scan(tmp_path)
    data = json.loads(json.dumps(info.to_dict()))

    assert data["path"] == "tiny-00001-of-00002.gguf"
    assert data["shards"] == ["tiny-00001-of-00002.gguf", "tiny-00002-of-00002.gguf"]
    assert data["valid"] is True
    assert data["reason"] is None


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1 KB"),
        (640_000, "640 KB"),
        (1_234_567, "1.2 MB"),
        (1_200_000_000, "1.2 GB"),
        (13_500_000_000, "13.5 GB"),
        (999_999, "1 MB"),
    ],
)
def test_human_size_uses_decimal_units(n: int, text: str) -> None:
    assert human_size(n) == text


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (512, "512"),
        (412_000, "412K"),
        (135_000_000, "135M"),
        (7_241_732_096, "7.2B"),
        (70_553_706_496, "70.6B"),
        (1_000_000_000_000, "1T"),
    ],
)
def test_human_count_reads_like_model_names(n: int, text: str) -> None:
    assert human_count(n) == text


def test_a_fifo_named_gguf_is_listed_as_not_a_file_and_never_holds_the_scan(
    tmp_path: Path,
) -> None:
    import threading

    write_demo_model(tmp_path / "real.gguf", seed=1)
    os.mkfifo(tmp_path / "trap.gguf")  # opening it would wait for a writer forever
    found: list[tuple[str, str | None]] = []
    scanning = threading.Thread(
        target=lambda: found.extend((m.path, m.reason) for m in scan(tmp_path)), daemon=True
    )
    scanning.start()
    scanning.join(timeout=10)
    alive = scanning.is_alive()
    if alive:  # free the stuck scan, so the test fails instead of hanging
        os.close(os.open(tmp_path / "trap.gguf", os.O_WRONLY | os.O_NONBLOCK))
    assert not alive
    assert found == [
        ("real.gguf", None),
        ("trap.gguf", "not a regular file (a FIFO or device named .gguf)"),
    ]
