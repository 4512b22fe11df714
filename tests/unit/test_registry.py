"""One seat registry: every kind of seat by name, one row shape, each name taken once."""

from __future__ import annotations

from pathlib import Path

import pytest

from council.config import HubConfig, SeatConfig, load_config, save_config
from council.datafolder import DataFolder
from council.deliberation.browser_seat import BrowserSeat
from council.deliberation.registry import ROW, SeatKind, SeatRegistry
from council.engine.binary import EngineBinary
from council.engine.fleet import Fleet, plan_seats
from council.errors import BadRequest, SeatError
from council.models.demo import write_demo_model
from council.remotes import load_remotes
from tests.running import run

REMOTE = {"name": "cloud", "url": "https://api.example.test", "model": "m", "token": "sk-1"}


def registry_for(folder: DataFolder, config: HubConfig) -> tuple[SeatRegistry, list[HubConfig]]:
    fleet = Fleet(
        folder,
        EngineBinary(Path("/nonexistent/llama-server"), "test"),
        plan_seats(folder, config.enabled_seats),
    )
    holder = [config]

    def changed(new: HubConfig) -> None:
        holder.append(new)

    return SeatRegistry(folder, lambda: holder[-1], fleet, changed), holder


def test_every_kind_of_seat_has_the_same_row_keys_and_kinds_keep_their_order(
    isolated_data: DataFolder,
) -> None:
    write_demo_model(isolated_data.models / "late.gguf")
    config = HubConfig(seats=(SeatConfig("gone", "missing.gguf"),))
    save_config(isolated_data, config)
    seats, configs = registry_for(isolated_data, config)
    seats.add_remote(REMOTE)
    seats.add_local({"kind": "local", "model": "late.gguf"})  # added after the remote
    tab = BrowserSeat("abc123", "browser-abc123", "this tab", 1024)
    seats.join(tab)

    assert list(seats) == ["gone", "late", "cloud", "browser-abc123"]
    rows = seats.view()
    assert [row["kind"] for row in rows] == ["local", "local", "remote", "browser"]
    for row in rows:
        assert set(ROW) <= set(row)
        assert "token" not in row
    assert rows[0]["reason"] == "model file not found: models/missing.gguf"
    assert rows[2]["has_token"] is True
    assert seats.names(SeatKind.LOCAL) == ["gone", "late"]
    # The hub's copy of config.toml moved on, and the stick has the same.
    assert [s.name for s in configs[-1].seats] == ["gone", "late"]
    assert load_config(isolated_data) == configs[-1]
    assert [r.name for r in load_remotes(isolated_data)] == ["cloud"]
    run(seats.fleet.stop())


def test_a_name_is_taken_once_whatever_the_kind(isolated_data: DataFolder) -> None:
    config = HubConfig(seats=(SeatConfig("alpha", "alpha.gguf"),))
    seats, _ = registry_for(isolated_data, config)
    with pytest.raises(BadRequest, match="there is already a seat called 'alpha'"):
        seats.add_remote({**REMOTE, "name": "alpha"})
    with pytest.raises(BadRequest, match="already a seat called 'alpha'"):
        seats.join(BrowserSeat("x", "alpha", "this tab", None))
    run(seats.fleet.stop())


def test_a_tab_that_leaves_is_no_longer_a_seat_and_its_tasks_fail(
    isolated_data: DataFolder,
) -> None:
    seats, _ = registry_for(isolated_data, HubConfig())
    tab = seats.browser.register("this tab", 1024, set(seats))
    seats.join(tab)
    assert seats.kind(tab.name) is SeatKind.BROWSER
    seats.leave(tab)
    assert tab.name not in seats
    assert tab.gone
    assert seats.browser.get(tab.id) is None
    run(seats.fleet.stop())


def test_a_seat_that_cannot_answer_says_why_and_a_remote_one_answers_where_it_lives(
    isolated_data: DataFolder,
) -> None:
    seats, _ = registry_for(isolated_data, HubConfig(seats=(SeatConfig("a", "a.gguf"),)))
    assert seats["a"].unavailable() == "model file not found: models/a.gguf"
    with pytest.raises(SeatError, match="model file not found"):
        seats.fleet.target("a")
    seats.add_remote({**REMOTE, "enabled": False})
    assert seats["cloud"].unavailable() == "cloud is disabled"
    seats.update_remote("cloud", {"enabled": True})
    assert seats["cloud"].unavailable() is None
    assert seats.view()[-1]["state"] == "ready"
    seats.remove_remote("cloud")
    assert "cloud" not in seats
    assert load_remotes(isolated_data) == []
    run(seats.fleet.stop())
