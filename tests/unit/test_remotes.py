"""remotes.toml and the API's remote seats: values are checked, never coerced."""

from __future__ import annotations

import pytest

from council.datafolder import DataFolder
from council.errors import BadRequest, ConfigError
from council.remotes import (
    FILE,
    RemoteSeatConfig,
    from_request,
    load_remotes,
    save_remotes,
    validate,
)

GOOD = {"name": "cloud", "url": "https://api.example.test/", "model": "m", "token": "sk-1"}


def test_a_request_becomes_a_seat_with_its_url_tidied() -> None:
    remote = from_request(GOOD)
    assert remote == RemoteSeatConfig("cloud", "https://api.example.test", "m", "sk-1")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"enabled": "false"}, "the remote seat: enabled = 'false' is not true or false"),
        ({"ctx_size": "4096"}, "the remote seat: ctx_size = '4096' is not a whole number"),
        ({"url": None}, "the remote seat: url = None is not a string"),
        ({"tokne": "sk-2"}, "the remote seat has an unknown key 'tokne'"),
    ],
)
def test_a_request_with_a_wrong_type_or_unknown_key_is_refused(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        from_request({**GOOD, **change})
    assert str(caught.value).startswith(message)


def test_a_change_keeps_what_it_does_not_name() -> None:
    base = from_request(GOOD)
    changed = from_request({"enabled": False, "has_token": True}, base)
    assert changed == RemoteSeatConfig("cloud", "https://api.example.test", "m", "sk-1", 0, False)


def test_moving_a_seat_to_another_url_drops_its_token_unless_a_new_one_is_given() -> None:
    base = from_request(GOOD)
    moved = from_request({"url": "https://elsewhere.test"}, base)
    assert moved.token == ""
    assert from_request({"url": "https://elsewhere.test", "token": "sk-2"}, base).token == "sk-2"
    assert from_request({"url": "https://api.example.test/"}, base).token == "sk-1"  # same URL


def test_a_url_whose_port_is_no_port_is_refused_with_a_reason() -> None:
    with pytest.raises(BadRequest, match="has a port that is not from 0 to 65535"):
        validate(from_request({**GOOD, "url": "http://10.0.0.1:99999"}), set())


def test_remotes_survive_a_save_and_load(isolated_data: DataFolder) -> None:
    remotes = [from_request(GOOD), from_request({**GOOD, "name": "peer", "ctx_size": 8192})]
    save_remotes(isolated_data, remotes)
    assert load_remotes(isolated_data) == remotes
    assert (isolated_data.root / FILE).stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('enabled = "false"', "remote seat 'cloud': enabled = 'false' is not true or false"),
        ('url2 = "x"', "remote seat 'cloud' has an unknown key 'url2'"),
    ],
)
def test_a_bad_remotes_file_entry_is_one_line_naming_file_and_seat(
    isolated_data: DataFolder, entry: str, message: str
) -> None:
    path = isolated_data.root / FILE
    path.write_text(f'[[remotes]]\nname = "cloud"\nurl = "https://a.test"\nmodel = "m"\n{entry}\n')
    with pytest.raises(ConfigError) as caught:
        load_remotes(isolated_data)
    assert str(caught.value).startswith(f"{path}: {message}")


def test_a_remotes_file_entry_is_validated_like_a_new_seat(isolated_data: DataFolder) -> None:
    path = isolated_data.root / FILE
    path.write_text('[[remotes]]\nname = "cloud"\nurl = "ftp://a.test"\nmodel = "m"\n')
    with pytest.raises(ConfigError, match=r"'ftp://a.test' is not an http\(s\) URL"):
        load_remotes(isolated_data)
    path.write_text(2 * '[[remotes]]\nname = "cloud"\nurl = "https://a.test"\nmodel = "m"\n')
    with pytest.raises(ConfigError, match="there is already a seat called 'cloud'"):
        load_remotes(isolated_data)
