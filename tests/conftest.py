"""Every test runs against its own data folder: nothing touches a real stick."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from council.config import HubConfig, save_config
from council.datafolder import DataFolder
from council.defaults import demo_seats
from council.engine.binary import EngineBinary, find_llama_server
from council.errors import EngineNotFound
from tests.hubs import HubProcess, free_port
from tests.owner import speak_as_owner


@pytest.fixture(autouse=True, scope="session")
def owner_speaking() -> Iterator[None]:
    """Requests to a test hub's localhost listener carry its owner token (tests/owner.py)."""
    with speak_as_owner():
        yield


@pytest.fixture(autouse=True)
def isolated_data(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> DataFolder:
    root = tmp_path_factory.mktemp("stick")
    monkeypatch.setenv("COUNCIL_DATA", str(root))
    monkeypatch.delenv("COUNCIL_LLAMA_SERVER", raising=False)
    folder = DataFolder(root)
    folder.prepare()
    return folder


@pytest.fixture(autouse=True)
def demo_seated(request: pytest.FixtureRequest, isolated_data: DataFolder) -> None:
    """Hub tests start on the three demo seats, as if the person had chosen them (fast, and
    they answer in noise); a test marked `empty_stick` gets the stick as council finds it."""
    kind = request.node.get_closest_marker
    if (kind("integration") or kind("browser")) and not kind("empty_stick"):
        save_config(isolated_data, HubConfig(seats=demo_seats()))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for kind in ("integration", "browser"):
            if f"tests/{kind}/" in item.nodeid:
                item.add_marker(getattr(pytest.mark, kind))


@pytest.fixture(scope="session")
def engine_binary() -> EngineBinary:
    try:
        return find_llama_server(DataFolder(Path("/nonexistent")))
    except EngineNotFound as exc:
        pytest.fail(f"{exc} (make test builds it)")


@pytest.fixture
def start_hub(
    engine_binary: EngineBinary, isolated_data: DataFolder
) -> Iterator[Callable[..., HubProcess]]:
    hubs: list[HubProcess] = []

    def start(data: Path | None = None, *extra: str, default_port: bool = False) -> HubProcess:
        env = {**os.environ, "COUNCIL_LLAMA_SERVER": str(engine_binary.path)}
        port = None if default_port else free_port()
        hub = HubProcess(data or isolated_data.root, port, list(extra), env)
        hubs.append(hub)
        return hub

    yield start
    for hub in hubs:
        hub.kill_everything()


@pytest.fixture
def hub(start_hub: Callable[..., HubProcess]) -> HubProcess:
    """A hub on the test stick (three demo seats), every seat healthy."""
    started = start_hub()
    started.wait_ok()
    return started
