from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from council.engine import build, selftest
from council.engine.binary import MANIFEST, read_manifest
from council.engine.build import BuildLayout, cmake_flags, is_built, passed_here, unpack_sources
from council.engine.cpu import cpu_fingerprint
from council.engine.selftest import SelfTest
from council.errors import EngineBuildError
from tests.fake_engines import install_fake_engine


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


def finished_tree(layout: BuildLayout, variant: str = "native", **fake: object) -> None:
    """A build tree whose compile finished: fake binaries and a manifest without self-tests."""
    install_fake_engine(layout.bin, **fake)
    for target in build.TARGETS[1:]:
        (layout.bin / target).write_text("")
    manifest = {
        "variant": variant,
        "sdist_sha256": build.SDIST_SHA256,
        "native": True,
        "cpu_features": ["AVX2"],
        "selftests": {},
    }
    (layout.bin / MANIFEST).write_text(json.dumps(manifest))


@pytest.fixture
def no_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("nothing should be compiled")

    monkeypatch.setattr(build, "_run_logged", refuse)
    monkeypatch.setattr(selftest, "PAUSE", 0.0)


@pytest.mark.usefixtures("no_compiling")
def test_a_finished_build_never_tested_on_this_cpu_is_tested_without_compiling(
    tmp_path: Path,
) -> None:
    layout = BuildLayout(tmp_path)
    finished_tree(layout)
    said: list[str] = []
    build.build_engine(layout, report=said.append)
    assert any("never tested on this CPU" in line for line in said)
    manifest = read_manifest(layout.bin / MANIFEST) or {}
    assert passed_here(manifest)
    assert manifest["cpu_features"] == ["AVX2"]  # what it was built with, not this CPU's list
    said.clear()
    build.build_engine(layout, report=said.append)
    assert said == [f"llama-server (native) is already built: {layout.bin / 'llama-server'}"]


@pytest.mark.usefixtures("no_compiling")
def test_a_portable_builds_cpu_variant_that_crashes_here_is_excluded_and_the_next_one_tested(
    tmp_path: Path,
) -> None:
    layout = BuildLayout(tmp_path)
    variants = ["libggml-cpu-sapphirerapids.so", "libggml-cpu-haswell.so", "libggml-cpu-x64.so"]
    finished_tree(layout, "portable", variants=variants, trap=[variants[0]])
    for variant in variants:
        (layout.bin / variant).write_text("")
    said: list[str] = []
    build.build_engine(layout, portable=True, report=said.append)
    manifest = read_manifest(layout.bin / MANIFEST) or {}
    assert manifest["dropped"] == [
        {"name": variants[0], "features": [], "reason": "killed by signal SIGILL on Q4_0"}
    ]
    assert (layout.excluded / variants[0]).is_file()
    assert not (layout.bin / variants[0]).exists()
    assert any("excluding it on this machine" in line for line in said)
    test = SelfTest.from_dict(manifest["selftests"][cpu_fingerprint()])  # type: ignore[index]
    assert test is not None
    assert test.ok
    assert test.cpu_backend == variants[1]


def test_a_feature_build_replaces_march_native_with_exactly_those_instruction_sets() -> None:
    flags = cmake_flags("native", ("SSE42", "AVX", "AVX2"))
    assert "-DGGML_NATIVE=OFF" in flags
    assert "-DGGML_AVX2=ON" in flags
    assert "-DGGML_AMX_INT8=OFF" in flags
    assert "-DGGML_AVX512=OFF" in flags
    assert "-DGGML_NATIVE=ON" in cmake_flags("native")


def test_a_build_folder_that_cannot_be_written_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = BuildLayout(tmp_path)
    finished_tree(layout)
    monkeypatch.setattr(selftest, "PAUSE", 0.0)

    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(30, "Read-only file system", str(layout.bin / MANIFEST))

    monkeypatch.setattr(build, "atomic_write_json", read_only)
    with pytest.raises(EngineBuildError, match=r"could not write .*council-build\.json: Read-only"):
        build.build_engine(layout, report=lambda line: None)
