"""The `council` command as a person types it: listings, JSON for scripts, one-line errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

from council.datafolder import DataFolder
from council.engine.binary import EngineBinary
from council.engine.build import LLAMA_CPP_COMMIT
from tests.hubs import run_council as council


def test_models_list_shows_valid_demo_and_invalid_files_with_reasons(
    isolated_data: DataFolder,
) -> None:
    assert council("models", "demo", "--name", "tiny", "--seed", "4").returncode == 0
    demo = (isolated_data.models / "demo" / "tiny.gguf").read_bytes()
    (isolated_data.models / "cut.gguf").write_bytes(demo[:100_000])
    (isolated_data.models / "photo.gguf").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)

    listing = council("models", "list", "--json")
    assert listing.returncode == 0
    models = {model["path"]: model for model in json.loads(listing.stdout)}
    assert models["demo/tiny.gguf"]["valid"] is True
    assert models["demo/tiny.gguf"]["demo"] is True
    assert models["cut.gguf"]["valid"] is False
    assert models["cut.gguf"]["reason"].startswith("truncated")
    assert models["photo.gguf"]["reason"].startswith("not a GGUF file")

    table = council("models", "list").stdout
    assert "demo model (random weights: output is noise)" in table
    assert "INVALID: truncated" in table


def test_engine_status_reports_the_build_and_its_features(engine_binary: EngineBinary) -> None:
    result = council("engine", "status", "--json", "--llama-server", str(engine_binary.path))
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["path"] == str(engine_binary.path)
    assert status["commit"].startswith(LLAMA_CPP_COMMIT[:7])
    assert {"rpc", "gguf-split", "tokenize", "quantize"} <= set(status["features"])

    human = council("engine", "status", "--llama-server", str(engine_binary.path)).stdout
    assert f"binary       {engine_binary.path} (--llama-server)" in human


def test_a_missing_data_folder_is_one_clear_line(tmp_path: Path) -> None:
    expected = [
        f"Error: data folder {tmp_path / 'nowhere'} does not exist: create it, or leave out "
        "--data and COUNCIL_DATA to use the portable folder beside council"
    ]
    for command in (["up", "--no-browser"], ["models", "list"], ["engine", "status"]):
        result = council(*command, "--data", str(tmp_path / "nowhere"))
        assert result.returncode == 1
        assert result.stderr.strip().splitlines() == expected
    assert not (tmp_path / "nowhere").exists()


def test_an_environment_switch_with_a_value_it_does_not_know_is_one_line(
    isolated_data: DataFolder,
) -> None:
    env = {**os.environ, "COUNCIL_SEAT_ISOLATION": "maybe"}
    for command in (["up", "--no-browser"], ["models", "list"]):
        result = council(*command, env=env)
        assert result.returncode == 1
        assert result.stderr.strip().splitlines() == [
            "Error: COUNCIL_SEAT_ISOLATION is 'maybe': say on or off"
        ]


def test_a_demo_name_with_folders_in_it_is_refused(isolated_data: DataFolder) -> None:
    result = council("models", "demo", "--name", "../escape")
    assert result.returncode == 2
    assert "a plain file name, without folders" in result.stderr
    assert not (isolated_data.root / "escape.gguf").exists()


def test_council_up_refuses_a_council_table_naming_no_seat_or_out_of_range(
    isolated_data: DataFolder, engine_binary: EngineBinary
) -> None:
    seats = '[[seats]]\nname = "alpha"\nmodel = "alpha.gguf"\n'
    cases = {
        'chair = "alhpa"': "[council]: unknown chair 'alhpa': the seats are alpha",
        'mode = "debate"': "[council]: unknown mode 'debate'",
        'seats = ["alpha", "beta"]': "[council]: unknown seat 'beta'",
        "max_tokens = 0": "[council]: max_tokens = 0 must be from 1 to 32768",
    }
    for line, message in cases.items():
        isolated_data.config_file.write_text(f"[council]\n{line}\n\n{seats}")
        result = council("up", "--no-browser", "--llama-server", str(engine_binary.path))
        assert result.returncode == 1, line
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith(f"Error: {isolated_data.config_file}: ")
        assert message in lines[0]
    assert not isolated_data.database.exists()  # refused before anything was opened
