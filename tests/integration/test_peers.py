"""`council peers`: pairing with another hub (a real one, its LAN listener on 127.0.0.2) by its
`council pair` link, its CA pinned by the link's fingerprint, its token kept owner-only."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from council.config import HubConfig, save_config
from council.datafolder import DataFolder
from council.defaults import demo_seats
from council.engine.binary import EngineBinary
from council.peers import load_peers
from council.security.tls import local_hostname
from tests.hubs import HubProcess, free_port, run_council

StartHub = Callable[..., HubProcess]
PEER_HOST = "127.0.0.2"


def council(engine: EngineBinary, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COUNCIL_LLAMA_SERVER": str(engine.path)}
    return run_council(*args, env=env, timeout=120)


@pytest.fixture
def peer(start_hub: StartHub, tmp_path: Path) -> HubProcess:
    """Another hub with its own data folder and demo seats, serving phones on 127.0.0.2."""
    folder = DataFolder(tmp_path / "peer-stick")
    folder.root.mkdir()
    folder.prepare()
    save_config(folder, HubConfig(seats=demo_seats()))
    hub = start_hub(folder.root, "--lan", "--lan-host", PEER_HOST, "--lan-port", str(free_port()))
    hub.wait_ok()
    return hub


def invite(engine: EngineBinary, hub: HubProcess) -> str:
    made = council(engine, "pair", "--data", str(hub.data), "--json")
    assert made.returncode == 0, made.stderr
    url = str(json.loads(made.stdout)["url"])
    assert url.startswith(f"https://{PEER_HOST}:")
    return url


def test_peers_add_pairs_with_another_hub_and_keeps_its_token_private(
    engine_binary: EngineBinary, peer: HubProcess, isolated_data: DataFolder
) -> None:
    link = invite(engine_binary, peer)
    added = council(engine_binary, "peers", "add", link, "--name", "kitchen")
    assert added.returncode == 0, added.stderr
    base = link.split("/pair#")[0]
    [first, second] = added.stdout.strip().splitlines()
    assert first.startswith(f"paired with kitchen ({base}, CA fingerprint ")
    assert second == "its seats: demo-1, demo-2, demo-3"

    [kept] = load_peers(isolated_data)
    assert (kept.name, kept.url) == ("kitchen", base)
    assert kept.token
    assert kept.token not in added.stdout + added.stderr
    path = isolated_data.root / "peers.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    devices = json.loads(
        council(engine_binary, "devices", "list", "--data", str(peer.data), "--json").stdout
    )
    assert [device["name"] for device in devices] == [f"council hub on {local_hostname()}"]

    listed = json.loads(council(engine_binary, "peers", "list", "--json").stdout)
    assert listed == [
        {
            "name": "kitchen",
            "url": base,
            "fingerprint": kept.fingerprint,
            "enabled": True,
            "seats": ["demo-1", "demo-2", "demo-3"],
            "state": "reachable",
            "reason": None,
        }
    ]
    again = council(engine_binary, "peers", "add", invite(engine_binary, peer))
    assert again.returncode == 1
    assert f"this hub is paired with {base} already, as 'kitchen'" in again.stderr


def test_a_link_whose_fingerprint_is_not_the_peers_is_refused_before_the_code_is_sent(
    engine_binary: EngineBinary, peer: HubProcess, isolated_data: DataFolder
) -> None:
    link = invite(engine_binary, peer)
    forged = link.rsplit("fp=", 1)[0] + "fp=" + "ab" * 32
    refused = council(engine_binary, "peers", "add", forged)
    assert refused.returncode == 1
    [line] = refused.stderr.strip().splitlines()
    assert f"not the link's {'ab' * 32}: nothing was sent" in line
    assert load_peers(isolated_data) == []
    # The code never reached the peer, so the real link still pairs.
    assert council(engine_binary, "peers", "add", link).returncode == 0


def test_a_spent_code_and_a_link_that_is_not_one_are_refused_in_one_line(
    engine_binary: EngineBinary, peer: HubProcess, isolated_data: DataFolder, tmp_path: Path
) -> None:
    link = invite(engine_binary, peer)
    assert council(engine_binary, "peers", "add", link, "--name", "one").returncode == 0
    other = tmp_path / "other-stick"
    other.mkdir()
    spent = council(engine_binary, "peers", "add", link, "--data", str(other))
    assert spent.returncode == 1
    assert "refused the pairing code (used, expired or mistyped)" in spent.stderr
    assert not (other / "peers.toml").exists()
    for wrong, words in (
        ("http://127.0.0.2:8711/pair#code=x&fp=y", "give the https:// link"),
        ("https://127.0.0.2:8711/?code=x", "that is not a pairing link"),
        ("https://127.0.0.2:8711/pair#code=x&fp=123", "is not a SHA-256 fingerprint"),
    ):
        result = council(engine_binary, "peers", "add", wrong, "--data", str(other))
        assert result.returncode == 1
        assert words in result.stderr.strip()
        assert len(result.stderr.strip().splitlines()) == 1


def test_a_peer_that_revoked_this_hub_or_stopped_is_listed_with_the_reason(
    engine_binary: EngineBinary, peer: HubProcess, isolated_data: DataFolder
) -> None:
    assert (
        council(
            engine_binary, "peers", "add", invite(engine_binary, peer), "--name", "attic"
        ).returncode
        == 0
    )
    [device] = json.loads(
        council(engine_binary, "devices", "list", "--data", str(peer.data), "--json").stdout
    )
    assert (
        council(
            engine_binary, "devices", "revoke", device["id"], "--data", str(peer.data)
        ).returncode
        == 0
    )
    [row] = json.loads(council(engine_binary, "peers", "list", "--json").stdout)
    assert row["state"] == "unreachable"
    assert "no longer accepts this hub's token" in row["reason"]

    peer.stop()
    text = council(engine_binary, "peers", "list").stdout
    assert text.startswith("attic ")
    assert "unreachable: cannot reach peer attic at https://127.0.0.2:" in text

    removed = council(engine_binary, "peers", "remove", "attic", "--yes")
    assert removed.returncode == 0
    assert removed.stdout.startswith("forgot peer attic;")
    assert load_peers(isolated_data) == []
    assert "no peer 'ghost'" in council(engine_binary, "peers", "remove", "ghost").stderr
