"""The real build is self-tested on this CPU, and says so."""

from __future__ import annotations

import json
import subprocess
import sys

from council.engine.binary import EngineBinary
from council.engine.cpu import cpu_fingerprint
from council.engine.selftest import FORMATS, SelfTest


def test_the_build_manifest_holds_a_passed_self_test_on_this_cpu(
    engine_binary: EngineBinary,
) -> None:
    manifest = engine_binary.manifest
    assert manifest is not None
    result = SelfTest.from_dict(manifest["selftests"][cpu_fingerprint()])  # type: ignore[index]
    assert result is not None
    assert result.ok
    assert [item.format for item in result.formats] == list(FORMATS)
    assert isinstance(manifest["cpu_features"], list)
    for dropped in manifest["dropped"]:  # type: ignore[attr-defined]
        assert dropped["reason"]  # anything dropped says why


def test_engine_status_shows_the_instruction_sets_and_the_self_test_here(
    engine_binary: EngineBinary,
) -> None:
    command = [
        sys.executable,
        "-m",
        "council",
        "engine",
        "status",
        "--llama-server",
        str(engine_binary.path),
    ]
    shown = subprocess.run([*command, "--json"], capture_output=True, text=True, check=True)
    info = json.loads(shown.stdout)
    assert info["cpu"]["fingerprint"] == cpu_fingerprint()
    assert info["selftest"]["ok"] is True
    assert info["runtime_args"] == list(engine_binary.runtime_args)
    text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert "self-test    passed (Q4_0, Q4_1, Q8_0, Q4_K, Q6_K) on this CPU" in text
    assert "instructions " in text
