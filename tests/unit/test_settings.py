"""Settings: one schema with ranges, one reader of the environment, one order of precedence."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from council.config import HubConfig
from council.errors import ConfigError, PortInUse
from council.server.listeners import bind_listener
from council.settings import (
    DEFAULT_PORT,
    Chosen,
    Environment,
    Range,
    RoundDefaults,
    Settings,
    ranges,
)


@dataclass(frozen=True)
class Flags:
    port: int | None = None
    llama_server: Path | None = None


def test_the_environment_is_read_once_into_typed_values() -> None:
    env = Environment.read(
        {
            "COUNCIL_DATA": "~/stick",
            "COUNCIL_LLAMA_SERVER": "/opt/llama-server",
            "COUNCIL_SEAT_ISOLATION": "OFF",
            "UNRELATED": "x",
        }
    )
    assert env == Environment(Path("~/stick").expanduser(), Path("/opt/llama-server"), False)


def test_an_empty_environment_means_every_default() -> None:
    assert Environment.read({}) == Environment(None, None, True)
    assert Environment.read({"COUNCIL_DATA": "  ", "COUNCIL_SEAT_ISOLATION": ""}) == Environment()


def test_a_switch_with_a_value_it_does_not_know_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"^COUNCIL_SEAT_ISOLATION is 'maybe': say on or off$"):
        Environment.read({"COUNCIL_SEAT_ISOLATION": "maybe"})


def test_the_command_line_wins_over_the_environment_and_config_toml() -> None:
    env = Environment(llama_server=Path("/env/llama-server"))
    settings = Settings.resolve(
        Flags(port=9000, llama_server=Path("/flag/llama-server")), env, HubConfig(port=9100)
    )
    assert settings.port == Chosen(9000, "--port")
    assert settings.llama_server == Chosen(Path("/flag/llama-server"), "--llama-server")
    assert settings.port.explicit
    assert settings.llama_server.explicit


def test_the_environment_wins_over_the_search_and_config_toml_over_the_default() -> None:
    env = Environment(llama_server=Path("/env/llama-server"), seat_isolation=False)
    settings = Settings.resolve(Flags(), env, HubConfig(port=9100))
    assert settings.llama_server == Chosen(Path("/env/llama-server"), "COUNCIL_LLAMA_SERVER")
    assert settings.port == Chosen(9100, "config.toml")
    assert not settings.port.explicit
    assert settings.seat_isolation is False


def test_with_nothing_set_every_value_is_the_default() -> None:
    settings = Settings.resolve(Flags(), Environment(), HubConfig())
    assert settings.port == Chosen(DEFAULT_PORT, "default")
    assert settings.llama_server == Chosen(None, "default")
    assert settings.seat_isolation is True


def test_a_port_given_for_this_run_is_refused_when_taken_but_config_tomls_moves_on() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(PortInUse, match=rf"port {port} on 127.0.0.1 is already in use"):
            bind_listener("127.0.0.1", Chosen(port, "--port"))
        moved = bind_listener("127.0.0.1", Chosen(port, "config.toml"))
        assert moved.getsockname()[1] != port
        moved.close()
    finally:
        taken.close()


def test_every_bounded_round_default_has_its_range_and_its_default_lies_in_it() -> None:
    found = ranges(RoundDefaults)
    assert set(found) == {"max_tokens", "temperature", "stage_timeout", "layers"}
    defaults = RoundDefaults()
    for name, allowed in found.items():
        assert getattr(defaults, name) in allowed
    assert found["max_tokens"] == Range(1, 32768)


def test_a_range_holds_numbers_only() -> None:
    allowed = Range(0.0, 2.0)
    assert [value in allowed for value in (1, 2.0, 2.5, True, "1")] == [
        True,
        True,
        False,
        False,
        False,
    ]
    assert allowed.describe() == "from 0 to 2"
