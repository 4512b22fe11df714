"""`./council`, the launcher at the project's root, and the shell completion it offers."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from council.datafolder import project_root

LAUNCHER = project_root() / "council"


def run(
    program: Path, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(program), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
        check=False,
    )


def test_the_launcher_runs_the_projects_council_from_any_folder(tmp_path: Path) -> None:
    result = run(LAUNCHER, "--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("council, version ")


def test_a_link_to_the_launcher_finds_the_project_through_the_link(tmp_path: Path) -> None:
    link = tmp_path / "bin" / "council"
    link.parent.mkdir()
    link.symlink_to(LAUNCHER)
    result = run(link, "--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("council, version ")


def test_without_a_set_up_project_the_launcher_says_how_to_set_it_up(tmp_path: Path) -> None:
    copy = tmp_path / "council"
    shutil.copy(LAUNCHER, copy)
    result = run(copy, "up", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"council is not set up in {tmp_path} yet: run `make up` there once (it installs "
        "council, builds the engine and starts the hub)"
    )


def test_shell_completion_completes_commands_and_subcommands(tmp_path: Path) -> None:
    def complete(words: str) -> list[str]:
        env = {
            **os.environ,
            "_COUNCIL_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        }
        result = run(LAUNCHER, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert complete("council se") == ["plain,seats"]
    assert complete("council seats ") == [
        f"plain,{name}" for name in ("add", "disable", "enable", "list", "restart", "rm")
    ]
    source = run(LAUNCHER, cwd=tmp_path, env={**os.environ, "_COUNCIL_COMPLETE": "bash_source"})
    assert "complete -o nosort -F _council_completion council" in source.stdout
