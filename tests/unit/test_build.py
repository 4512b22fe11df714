from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from council.engine import build
from council.engine.build import BuildLayout, cmake_flags, is_built, unpack_sources
from council.errors import EngineBuildError


def write_sdist(path: Path, files: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_an_sdist_with_the_wrong_checksum_is_never_unpacked(tmp_path: Path) -> None:
    layout = BuildLayout(tmp_path)
    prefix = "llama_cpp_python-0.3.36/vendor/llama.cpp/"
    write_sdist(layout.sdist, {prefix + "CMakeLists.txt": b"project(x)\n"})
    with pytest.raises(EngineBuildError, match="refusing to unpack"):
        unpack_sources(layout.sdist, layout, report=lambda line: None)
    assert not layout.source.exists()


def test_only_the_vendored_llama_cpp_tree_is_unpacked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = BuildLayout(tmp_path)
    prefix = "llama_cpp_python-0.3.36/vendor/llama.cpp/"
    write_sdist(
        layout.sdist,
        {prefix + "CMakeLists.txt": b"project(x)\n", "llama_cpp_python-0.3.36/setup.py": b"x"},
    )
    monkeypatch.setattr(build, "SDIST_SHA256", build.sha256_of(layout.sdist))
    unpack_sources(layout.sdist, layout, report=lambda line: None)
    assert sorted(p.name for p in layout.source.iterdir()) == [
        ".council-sdist-sha256",
        "CMakeLists.txt",
    ]


def test_a_tree_without_a_manifest_is_not_taken_for_a_finished_build(tmp_path: Path) -> None:
    layout = BuildLayout(tmp_path)
    for target in build.TARGETS:
        (layout.bin / target).parent.mkdir(parents=True, exist_ok=True)
        (layout.bin / target).write_text("")
    assert not is_built(layout, "native")


def test_portable_builds_load_every_cpu_variant_as_a_backend() -> None:
    flags = cmake_flags("portable")
    assert "-DGGML_BACKEND_DL=ON" in flags
    assert "-DGGML_CPU_ALL_VARIANTS=ON" in flags
    assert "-DGGML_NATIVE=OFF" in flags
    assert "-DGGML_RPC=ON" in cmake_flags("native")
    assert "-DLLAMA_OPENSSL=ON" in cmake_flags("native")
