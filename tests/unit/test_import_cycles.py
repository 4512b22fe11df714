"""`make lint` refuses packages that import each other in a cycle, and council has none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "import_cycles.py"


def check(root: Path | None = None) -> subprocess.CompletedProcess[str]:
    args = [str(root)] if root else []
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False
    )


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_council_has_no_import_cycle_between_its_packages() -> None:
    result = check()
    assert result.returncode == 0, result.stdout


def test_a_cycle_through_a_lazy_import_is_found_and_shown_edge_by_edge(tmp_path: Path) -> None:
    write(tmp_path / "council" / "__init__.py", "")
    write(tmp_path / "council" / "engine" / "__init__.py", "")
    write(tmp_path / "council" / "engine" / "build.py", "from council.models import demo\n")
    write(tmp_path / "council" / "models" / "__init__.py", "")
    write(tmp_path / "council" / "models" / "demo.py", "def f():\n    from ..engine import build\n")
    result = check(tmp_path)
    assert result.returncode == 1
    assert "import cycle between engine, models:" in result.stdout
    assert "council/models/demo.py:2 imports council.engine" in result.stdout


def test_imports_for_the_type_checker_only_make_no_cycle(tmp_path: Path) -> None:
    write(tmp_path / "council" / "__init__.py", "")
    write(tmp_path / "council" / "hub.py", "from council import config\n")
    only_for_types = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from council import hub\n"
    )
    write(tmp_path / "council" / "config.py", only_for_types)
    assert check(tmp_path).returncode == 0
