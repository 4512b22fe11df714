"""Fake llama-server builds for the self-test and the ladder (see fake_llama_server.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from council.engine.selftest import FORMATS, SelfTest, measure_speed, run_selftest

SCRIPT = Path(__file__).with_name("fake_llama_server.py")


def install_fake_engine(folder: Path, name: str = "llama-server", **config: Any) -> Path:
    """An executable `folder/name` that plays llama-server as `config` says."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / name
    script.write_text(f"#!{sys.executable}\n" + SCRIPT.read_text())
    script.chmod(0o755)
    write_config(folder, **config)
    return script


def write_config(folder: Path, **config: Any) -> None:
    (folder / "fake-engine.json").write_text(json.dumps(config))


class FakeBuild:
    """A build the ladder can rebuild: each rebuild rewrites the features the fake runs with."""

    def __init__(self, folder: Path, native: tuple[str, ...], **config: Any) -> None:
        self.folder, self.native, self.config = folder, native, config
        self.server = install_fake_engine(folder, features=list(native), **config)
        self.rebuilds: list[tuple[str, ...] | None] = []
        self.tests: list[tuple[str, ...]] = []
        self.models = {name: folder / "unused.gguf" for name in FORMATS}

    def rebuild(self, features: tuple[str, ...] | None) -> None:
        self.rebuilds.append(features)
        built = self.native if features is None else features
        write_config(self.folder, **{**self.config, "features": list(built)})

    def test(self, args: tuple[str, ...]) -> SelfTest:
        self.tests.append(args)
        return run_selftest(self.server, args, models=self.models)

    def speed(self, args: tuple[str, ...]) -> float:
        return measure_speed(self.server, args, model=self.folder / "unused.gguf", rounds=1)
