"""peers.toml and workers.toml are read as remotes.toml is: checked, each fault one line."""

from __future__ import annotations

import stat

import pytest

from council.datafolder import DataFolder
from council.errors import ConfigError
from council.peers import PeerConfig, load_peers, save_peers
from council.rpc.workers import load_workers

PEER = PeerConfig("kitchen", "https://10.0.0.2:8711", "ab" * 32, "PEM", "cd_token")


def test_a_saved_peer_reads_back_from_an_owner_only_file(isolated_data: DataFolder) -> None:
    save_peers(isolated_data, [PEER])
    assert load_peers(isolated_data) == [PEER]
    mode = stat.S_IMODE((isolated_data.root / "peers.toml").stat().st_mode)
    assert mode == 0o600


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("peers = 3\n", "peers must be an array of tables ([[peers]])"),
        ('[[peers]]\nname = "x"\n', "peer 'x' is missing 'url'"),
        ("[[peers]\n", "cannot read"),
    ],
)
def test_a_damaged_peers_file_is_one_line_naming_it(
    isolated_data: DataFolder, text: str, words: str
) -> None:
    (isolated_data.root / "peers.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"peers\.toml") as refused:
        load_peers(isolated_data)
    assert words in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_repeated_or_invalid_name_is_refused_in_peers_and_workers(
    isolated_data: DataFolder,
) -> None:
    save_peers(isolated_data, [PEER, PEER])
    with pytest.raises(ConfigError, match=r"peer 'kitchen': the name is not valid or is repeated"):
        load_peers(isolated_data)
    (isolated_data.root / "workers.toml").write_text(
        '[[workers]]\nname = "a/b"\nhost = "h"\nport = 1\nfingerprint = ""\nca = ""\ntoken = ""\n'
    )
    with pytest.raises(ConfigError, match=r"worker 'a/b': the name is not valid"):
        load_workers(isolated_data)
