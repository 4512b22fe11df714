"""Choosing what to pull: quantization names, split sets, projectors, and what fits."""

from __future__ import annotations

import pytest

from council.errors import BadRequest, InsufficientMemory, NotFound
from council.pull.choice import FITS, TIGHT, TOO_BIG, candidates, mark, plan, quant_of, render_plan
from council.pull.hf import RemoteFile, Repo, check_repo_id
from council.pull.pulling import PullRequest, check_choice

GB = 1_000_000_000
MIB = 1024 * 1024
OVERHEAD = 160 * MIB  # engine/memory.py's runtime allowance


def repo(*files: tuple[str, int]) -> Repo:
    remote = tuple(RemoteFile(name, size, f"{i:064x}") for i, (name, size) in enumerate(files))
    return Repo("owner/Model-GGUF", "main", "c" * 40, remote)


@pytest.mark.parametrize(
    ("name", "quant"),
    [
        ("Qwen2.5-0.5B-Instruct-Q4_K_M.gguf", "Q4_K_M"),
        ("qwen2.5-0.5b-instruct-q8_0.gguf", "Q8_0"),
        ("model.IQ3_XS.gguf", "IQ3_XS"),
        ("Llama-3.2-1B-Instruct-f16.gguf", "F16"),
        ("gemma-bf16-00001-of-00002.gguf", "BF16"),
        ("sub/dir/UD-Q4_K_XL.gguf", "Q4_K_XL"),
        ("Model-3B-Q2_K.gguf", "Q2_K"),
        ("model.gguf", None),
    ],
)
def test_the_quantization_is_read_from_the_file_name(name: str, quant: str | None) -> None:
    assert quant_of(name) == quant


def test_split_sets_are_one_candidate_and_projectors_are_companions_not_models() -> None:
    found = candidates(
        repo(
            ("M-Q8_0-00002-of-00002.gguf", 3 * GB),
            ("M-Q8_0-00001-of-00002.gguf", 4 * GB),
            ("M-Q4_K_M.gguf", 4 * GB),
            ("mmproj-M-f16.gguf", GB // 2),
            ("M-Q2_K-00001-of-00003.gguf", GB),  # an incomplete set is no candidate
            ("README.md", 10),
        )
    )
    assert [(c.name, c.quant, c.size) for c in found] == [
        ("M-Q4_K_M.gguf", "Q4_K_M", 4 * GB),
        ("M-Q8_0-00001-of-00002.gguf", "Q8_0", 7 * GB),
    ]
    assert [f.path for f in found[1].files] == [
        "M-Q8_0-00001-of-00002.gguf",
        "M-Q8_0-00002-of-00002.gguf",
    ]
    assert found[0].companions == ("mmproj-M-f16.gguf",)


def test_marks_leave_a_fifth_of_the_memory_as_headroom() -> None:
    assert mark(800, 0, 1000) == FITS
    assert mark(801, 0, 1000) == TIGHT
    assert mark(1000, 0, 1000) == TIGHT
    assert mark(1001, 0, 1000) == TOO_BIG


def test_the_largest_quantization_that_fits_the_budget_is_chosen() -> None:
    listing = repo(("M-Q4_0.gguf", GB), ("M-Q8_0.gguf", 2 * GB), ("M-F16.gguf", 4 * GB))
    # with no KV cache known, each needs its size + 160 MiB; 80% of 4 GB is 3.2 GB
    chosen = plan(listing, available=4 * GB, kv_bytes_per_token=None)
    assert chosen.chosen is not None
    assert chosen.chosen.candidate.name == "M-Q8_0.gguf"
    assert [f.memory for f in chosen.fits] == [GB + OVERHEAD, 2 * GB + OVERHEAD, 4 * GB + OVERHEAD]
    assert [f.mark for f in chosen.fits] == [FITS, FITS, TOO_BIG]
    assert "> M-Q8_0.gguf" in render_plan(chosen)
    assert "KV cache is not counted" in render_plan(chosen)


def test_the_kv_cache_at_the_default_context_counts_towards_the_memory() -> None:
    listing = repo(("M-Q4_0.gguf", GB), ("M-Q8_0.gguf", 2 * GB))
    # 1 MB a token x 2048 tokens = 2.048 GB on top: Q4_0 (3.22 GB) stays within 80% of 5 GB,
    # Q8_0 (4.22 GB) is tight
    chosen = plan(listing, available=5 * GB, kv_bytes_per_token=1_000_000)
    assert chosen.fits[0].memory == GB + 2048 * 1_000_000 + OVERHEAD
    assert [f.mark for f in chosen.fits] == [FITS, TIGHT]
    assert chosen.chosen is not None
    assert chosen.chosen.candidate.name == "M-Q4_0.gguf"


def test_a_named_quantization_or_file_is_chosen_even_when_too_big_and_then_needs_force() -> None:
    listing = repo(("M-Q4_0.gguf", GB), ("M-F16.gguf", 4 * GB))
    named = plan(listing, available=2 * GB, kv_bytes_per_token=None, quant="f16")
    assert named.chosen is not None
    assert named.chosen.candidate.name == "M-F16.gguf"
    with pytest.raises(InsufficientMemory, match="add --force"):
        check_choice(named, PullRequest("owner/Model-GGUF", quant="F16"))
    forced = check_choice(named, PullRequest("owner/Model-GGUF", quant="F16", force=True))
    assert forced.name == "M-F16.gguf"

    by_file = plan(listing, available=8 * GB, kv_bytes_per_token=None, file="M-Q4_0.gguf")
    assert by_file.chosen is not None
    assert by_file.chosen.candidate.name == "M-Q4_0.gguf"


def test_nothing_fitting_names_the_smallest_and_how_to_pull_anyway() -> None:
    listing = repo(("M-Q4_0.gguf", GB), ("M-F16.gguf", 4 * GB))
    nothing = plan(listing, available=GB, kv_bytes_per_token=None)
    assert nothing.chosen is None
    with pytest.raises(InsufficientMemory, match=r"smallest \(M-Q4_0.gguf\)"):
        check_choice(nothing, PullRequest("owner/Model-GGUF"))


def test_unknown_choices_are_clear_errors() -> None:
    listing = repo(("M-Q4_0.gguf", GB), ("mmproj-M.gguf", GB))
    with pytest.raises(NotFound, match="has no Q5_K_M file; it has Q4_0"):
        plan(listing, available=8 * GB, kv_bytes_per_token=None, quant="Q5_K_M")
    with pytest.raises(NotFound, match=r"has no GGUF file 'x\.gguf'"):
        plan(listing, available=8 * GB, kv_bytes_per_token=None, file="x.gguf")
    with pytest.raises(BadRequest, match="vision projector"):
        plan(listing, available=8 * GB, kv_bytes_per_token=None, file="mmproj-M.gguf")
    with pytest.raises(NotFound, match="has no GGUF files"):
        plan(repo(("README.md", 1)), available=GB, kv_bytes_per_token=None)


@pytest.mark.parametrize("bad", ["../etc", "owner", "owner/", "a/b/c", "o/..", ""])
def test_a_repository_id_is_owner_slash_name(bad: str) -> None:
    with pytest.raises(BadRequest):
        check_repo_id(bad)


def test_a_spec_takes_the_quantization_after_a_colon() -> None:
    request = PullRequest.parse("bartowski/Qwen-GGUF:Q4_K_M", force=True)
    assert (request.repo, request.quant, request.force) == ("bartowski/Qwen-GGUF", "Q4_K_M", True)
    assert PullRequest.parse("bartowski/Qwen-GGUF").quant is None


def test_files_whose_names_the_stick_should_not_hold_are_no_candidates() -> None:
    found = candidates(
        repo(
            ("../../escape-Q4_0.gguf", GB),
            (".hidden-Q4_0.gguf", GB),
            ("sub/ok-Q4_0.gguf", GB),
            ("bad\nname-Q4_0.gguf", GB),
        )
    )
    assert [c.name for c in found] == ["sub/ok-Q4_0.gguf"]
