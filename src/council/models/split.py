"""`council models split`: cut a model into shards a browser can load (wllama: ≤ 2 GB a file).

llama.cpp's `llama-gguf-split` (built with the engine, beside llama-server) does the cutting:
`name-00001-of-0000N.gguf` and its siblings, which llama.cpp and wllama both load as one model
given the first shard, and which the catalog lists once. The shards are written into a hidden
folder beside the model (the catalog skips dot-folders) and moved in only when all are written,
later shards first and the first shard last, so the catalog never lists a set before it is
whole; on any failure nothing is left behind. The original file stays where it was.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from council.datafolder import DataFolder
from council.errors import BadRequest, CouncilError, EngineNotFound, NotFound
from council.models.catalog import SPLIT_NAME, read_model

SPLIT_TOOL = "llama-gguf-split"
SIZE = re.compile(r"^(?P<number>[1-9]\d*)(?P<unit>[MG])$")


@dataclass(frozen=True, slots=True)
class SplitResult:
    model: str  # the original, relative to the models folder
    shards: tuple[str, ...]  # relative to the models folder, first shard first
    sizes: tuple[int, ...]

    def to_dict(self) -> dict[str, object]:
        return {"model": self.model, "shards": list(self.shards), "sizes": list(self.sizes)}


def parse_size(text: str, option: str = "--max-size") -> int:
    """`512M` or `1G` (llama-gguf-split's own units) in bytes."""
    match = SIZE.match(text.strip().upper())
    if match is None:
        raise BadRequest(f"{option} takes a number with M or G, like 512M, not {text!r}")
    return int(match["number"]) * (1024**2 if match["unit"] == "M" else 1024**3)


def find_model(folder: DataFolder, model: str) -> Path:
    """A model given as the catalog lists it (relative to models/) or as a path inside it."""
    models = folder.models.resolve()
    given = Path(model).expanduser()
    candidates = [given] if given.is_absolute() else [models / given, Path.cwd() / given]
    for candidate in candidates:
        if candidate.is_file() and candidate.resolve().is_relative_to(models):
            return candidate.resolve()
    raise NotFound(f"no model {model!r} in {folder.models} (see `council models list`)")


def split_model(
    folder: DataFolder, model: str, max_size: str, find_tool: Callable[[str], Path | None]
) -> SplitResult:
    """Write `model`'s shards of at most `max_size` each beside it; return what was written.
    `find_tool(name)` finds an engine tool (the engine layer does that: models never import it)."""
    limit = parse_size(max_size)
    path = find_model(folder, model)
    info = read_model(path, folder.models.resolve())
    if not info.valid:
        raise BadRequest(f"{info.path} is not a model llama.cpp can load: {info.reason}")
    if info.shards or SPLIT_NAME.match(path.name):
        raise BadRequest(f"{info.path} is already split")
    if info.size_bytes <= limit:
        raise BadRequest(
            f"{info.path} is {info.size_bytes} bytes, within {max_size}: a browser loads it as is"
        )
    tool = find_tool(SPLIT_TOOL)
    if tool is None:
        raise EngineNotFound(
            f"no {SPLIT_TOOL} beside llama-server: run `council engine build`, or use a llama.cpp "
            "release that includes it"
        )
    work = Path(tempfile.mkdtemp(prefix=f".split-{path.stem}-", dir=path.parent))
    try:
        _run(tool, path, work / path.stem, max_size.strip().upper())
        written = sorted(work.glob(f"{path.stem}-*-of-*.gguf"))
        if not written:
            raise CouncilError(f"{SPLIT_TOOL} wrote no shards")
        targets = [path.parent / shard.name for shard in written]
        if clash := [target.name for target in targets if target.exists()]:
            raise BadRequest(f"{', '.join(clash)} already exist beside {path.name}")
        moved: list[Path] = []
        try:
            for shard, target in reversed(list(zip(written, targets, strict=True))):
                shard.rename(target)
                moved.append(target)
        except OSError as exc:
            for target in moved:
                target.unlink(missing_ok=True)
            raise CouncilError(f"could not move the shards beside {path.name}: {exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    relative = tuple(target.relative_to(folder.models.resolve()).as_posix() for target in targets)
    return SplitResult(info.path, relative, tuple(target.stat().st_size for target in targets))


def _run(tool: Path, source: Path, prefix: Path, max_size: str) -> None:
    command = [str(tool), "--split", "--split-max-size", max_size, str(source), str(prefix)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise CouncilError(f"cannot run {tool}: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise CouncilError(f"{SPLIT_TOOL} failed ({done.returncode}): {last[0]}")
