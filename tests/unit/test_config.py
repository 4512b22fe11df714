from __future__ import annotations

from dataclasses import replace

import pytest

from council.config import HubConfig, SeatConfig, load_config, save_config
from council.datafolder import DataFolder
from council.defaults import ensure_seats
from council.errors import ConfigError


def test_seats_survive_a_save_and_load(isolated_data: DataFolder) -> None:
    config = HubConfig(
        port=8720,
        seats=(
            SeatConfig("alpha", "a/alpha.gguf", ctx_size=4096, extra_args=("--temp", "0.2")),
            SeatConfig("beta", "beta.gguf", enabled=False),
        ),
    )
    save_config(isolated_data, config)
    assert load_config(isolated_data) == config
    assert config.enabled_seats == (config.seats[0],)


def test_no_config_file_means_no_seats_and_the_default_port(isolated_data: DataFolder) -> None:
    assert load_config(isolated_data) == HubConfig()


def test_saved_config_holds_no_absolute_path(isolated_data: DataFolder) -> None:
    save_config(isolated_data, HubConfig(seats=(SeatConfig("a", "a.gguf"),)))
    assert str(isolated_data.root) not in isolated_data.config_file.read_text()
    assert not [p for p in isolated_data.root.iterdir() if p.name.endswith((".part", ".tmp"))]


@pytest.mark.parametrize("model", ["/etc/passwd", "../outside.gguf", "a/../../b.gguf", ""])
def test_a_seat_model_outside_the_models_folder_is_refused(
    isolated_data: DataFolder, model: str
) -> None:
    isolated_data.config_file.write_text(f'[[seats]]\nname = "x"\nmodel = "{model}"\n')
    with pytest.raises(ConfigError, match="inside models/"):
        load_config(isolated_data)


def test_broken_toml_is_reported_with_the_file_name(isolated_data: DataFolder) -> None:
    isolated_data.config_file.write_text("[[seats]\n")
    with pytest.raises(ConfigError, match=r"config\.toml is not valid TOML"):
        load_config(isolated_data)


def test_duplicate_seat_names_are_refused(isolated_data: DataFolder) -> None:
    isolated_data.config_file.write_text(
        '[[seats]]\nname = "x"\nmodel = "a.gguf"\n[[seats]]\nname = "x"\nmodel = "b.gguf"\n'
    )
    with pytest.raises(ConfigError, match="repeated: x"):
        load_config(isolated_data)


def test_a_seat_without_a_model_is_refused(isolated_data: DataFolder) -> None:
    isolated_data.config_file.write_text('[[seats]]\nname = "x"\n')
    with pytest.raises(ConfigError, match="missing 'model'"):
        load_config(isolated_data)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('enabled = "false"', "seat 'x': enabled = 'false' is not true or false"),
        ('extra_args = "--foo"', "seat 'x': extra_args = '--foo' is not a list of strings"),
        ('ctx_size = "4096"', "seat 'x': ctx_size = '4096' is not a whole number"),
        ("ctx_size = true", "seat 'x': ctx_size = True is not a whole number"),
        ("temprature = 0.2", "seat 'x' has an unknown key 'temprature' (known: name, model,"),
    ],
)
def test_a_seat_value_of_the_wrong_type_or_an_unknown_key_is_one_line_naming_seat_and_key(
    isolated_data: DataFolder, line: str, message: str
) -> None:
    isolated_data.config_file.write_text(f'[[seats]]\nname = "x"\nmodel = "a.gguf"\n{line}\n')
    with pytest.raises(ConfigError) as caught:
        load_config(isolated_data)
    text = str(caught.value)
    assert text.startswith(f"{isolated_data.config_file}: ")
    assert message in text
    assert "\n" not in text


def test_an_unknown_council_key_is_refused_instead_of_ignored(isolated_data: DataFolder) -> None:
    isolated_data.config_file.write_text("[council]\nmax_token = 64\n")
    with pytest.raises(ConfigError, match=r"\[council\] has an unknown key 'max_token'"):
        load_config(isolated_data)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[council]\ntemperature = 2.5", "[council]: temperature = 2.5 must be from 0 to 2"),
        ("[council]\nlayers = 9", "[council]: layers = 9 must be from 1 to 4"),
        ("[devices]\nmax_streams = 0", "[devices]: max_streams = 0 must be from 1 to 1000"),
        (
            '[[seats]]\nname = "a"\nmodel = "a.gguf"\nslots = 0',
            "seat 'a': slots = 0 must be from 1 to 16",
        ),
    ],
)
def test_a_value_outside_its_settings_range_is_one_line_naming_table_and_key(
    isolated_data: DataFolder, table: str, message: str
) -> None:
    isolated_data.config_file.write_text(table + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(isolated_data)
    assert str(caught.value) == f"{isolated_data.config_file}: {message}"


HAND_WRITTEN = """\
# My council. I wrote this by hand.
[hub]
port = 8720  # 8710 is taken by something else on this laptop

[council]
mode = "vote"  # votes settle arithmetic best
max_tokens = 100

[[seats]]
name = "alpha"  # the fast one
model = "alpha.gguf"
ctx_size = 1024

[[seats]]
name = "beta"
model = "beta.gguf"
"""


def test_a_change_from_the_page_keeps_the_users_comments_and_layout(
    isolated_data: DataFolder,
) -> None:
    isolated_data.config_file.write_text(HAND_WRITTEN)
    config = load_config(isolated_data)
    beta = config.seats[1]
    gamma = SeatConfig("gamma", "gamma.gguf", enabled=False)
    changed = replace(
        config,
        council=replace(config.council, max_tokens=200),
        seats=(replace(beta, ctx_size=4096), gamma),
    )
    save_config(isolated_data, changed)

    text = isolated_data.config_file.read_text()
    assert load_config(isolated_data) == changed
    for kept in (
        "# My council. I wrote this by hand.\n",
        "port = 8720  # 8710 is taken by something else on this laptop\n",
        'mode = "vote"  # votes settle arithmetic best\n',
    ):
        assert kept in text
    assert "max_tokens = 200\n" in text
    assert "alpha" not in text
    assert "temperature" not in text  # a default the file left out stays out
    added = 'ctx_size = 4096\n\n[[seats]]\nname = "gamma"\nmodel = "gamma.gguf"\nenabled = false\n'
    assert added in text


def test_a_new_config_file_spells_out_every_setting(isolated_data: DataFolder) -> None:
    save_config(isolated_data, HubConfig(seats=(SeatConfig("a", "a.gguf"),)))
    text = isolated_data.config_file.read_text()
    assert text.startswith("# council configuration.")
    assert "temperature = 0.7\n" in text
    assert "requests_per_minute = 120\n" in text


def test_a_config_file_broken_since_the_hub_started_is_not_overwritten(
    isolated_data: DataFolder,
) -> None:
    isolated_data.config_file.write_text("[council\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        save_config(isolated_data, HubConfig())
    assert isolated_data.config_file.read_text() == "[council\n"


@pytest.mark.parametrize(
    "text",
    ["", "\n", 'port = 8710\n\n[council]\nmode = "synthesize"\n'],
    ids=["empty", "blank", "cut-before-the-seats"],
)
def test_a_config_toml_without_seats_is_reported_and_never_rewritten(
    isolated_data: DataFolder, text: str
) -> None:
    isolated_data.config_file.write_text(text)
    with pytest.raises(ConfigError, match=r"lists no \[\[seats\]\] \(was it cut short\?\)"):
        ensure_seats(isolated_data)
    assert isolated_data.config_file.read_text() == text


def test_a_seats_own_sampling_and_system_prompt_are_read_and_written_back(
    isolated_data: DataFolder,
) -> None:
    seat = SeatConfig("bold", "m.gguf", temperature=1.1, seed=7, system_prompt="Be brief.")
    save_config(isolated_data, HubConfig(seats=(seat,)))
    text = isolated_data.config_file.read_text()
    assert "temperature = 1.1" in text
    assert "seed = 7" in text
    assert load_config(isolated_data).seats == (seat,)
    save_config(isolated_data, HubConfig(seats=(replace(seat, temperature=None),)))
    seats = isolated_data.config_file.read_text().split("[[seats]]")[1]
    assert "temperature" not in seats  # unset: the key goes
    assert load_config(isolated_data).seats[0].temperature is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("temperature = 3", "temperature = 3 must be from 0 to 2"),
        ('seed = "one"', "seed = 'one' is not a whole number"),
        (f'system_prompt = "{"x" * 4001}"', "system_prompt is longer than 4000 characters"),
    ],
)
def test_a_seats_sampling_out_of_range_is_an_error(
    isolated_data: DataFolder, line: str, message: str
) -> None:
    isolated_data.config_file.write_text(f'[[seats]]\nname = "x"\nmodel = "a.gguf"\n{line}\n')
    with pytest.raises(ConfigError, match=message):
        load_config(isolated_data)
