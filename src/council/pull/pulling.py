"""`council models pull`: list a repository, choose what fits, fetch it, verify it, move it in.

The same function runs in the CLI and in the hub (its Models panel, in a worker thread). Only
verified files reach `models/<repo-name>/`: each shard is fetched and checked in `downloads/`,
then the set is moved in with renames on the one file system, later shards first and the first
shard (the one the catalog reads) last, each with its `.source.json` sidecar; nothing
half-written is ever listed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import urllib3
from urllib3.exceptions import HTTPError

from council.atomicfile import sync_directory
from council.datafolder import DataFolder
from council.engine.memory import available_memory
from council.errors import Conflict, CouncilError, InsufficientMemory
from council.models.catalog import kv_bytes_per_token
from council.models.gguf_header import (
    HeaderIncomplete,
    Invalid,
    metadata_int,
    metadata_str,
    parse_prefix,
)
from council.models.sources import Source, read_source, write_source
from council.pull.choice import FITS, TOO_BIG, Candidate, Plan, plan
from council.pull.download import REDIRECTS_ONLY, Progress, Wanted, fetch, partial_paths, pool
from council.pull.hf import HubSource, RemoteFile, Repo
from council.timestamps import stamp
from council.units import human_size

HEADER_PREFIXES = (4 * 1024 * 1024, 32 * 1024 * 1024)  # a header with a 256k vocabulary fits in 32


@dataclass(frozen=True, slots=True)
class PullRequest:
    repo: str
    quant: str | None = None
    file: str | None = None
    revision: str = "main"
    force: bool = False
    memory: int | None = None  # the budget to fit; default: what this machine has available

    @classmethod
    def parse(cls, spec: str, **options: object) -> PullRequest:
        """`owner/name` or `owner/name:Q4_K_M` (llama.cpp's `-hf` spelling)."""
        repo, _, quant = spec.strip().partition(":")
        return cls(repo=repo, quant=quant.strip() or None, **options)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class PullResult:
    repo: str
    commit: str
    model: str  # relative to the models folder: the file to seat (a split set's first shard)
    files: tuple[str, ...]
    size: int
    sha256: tuple[str, ...]
    resumed_from: int
    seconds: float
    already: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "repo": self.repo,
            "commit": self.commit,
            "model": self.model,
            "files": list(self.files),
            "size": self.size,
            "sha256": list(self.sha256),
            "resumed_from": self.resumed_from,
            "seconds": round(self.seconds, 3),
            "already_on_stick": self.already,
        }


@dataclass(slots=True)
class Reporter:
    """What a pull tells its caller: the plan, each file begun, the bytes as they come."""

    plan: Callable[[Plan], None] = lambda _plan: None
    file: Callable[[RemoteFile, int, int], None] = lambda _file, _no, _count: None
    progress: Progress = lambda _done, _total: None
    notes: list[str] = field(default_factory=list)


def client(source: HubSource) -> urllib3.PoolManager:
    return pool(source.headers())


def make_plan(source: HubSource, request: PullRequest, http: urllib3.PoolManager) -> Plan:
    repo = source.repo(request.repo, request.revision)
    from council.pull.choice import candidates

    found = candidates(repo)
    kv = remote_kv_bytes(source, repo, found[0], http) if found else None
    budget = request.memory if request.memory is not None else available_memory()
    label = "memory to fit (--memory)" if request.memory is not None else "memory available here"
    return plan(repo, budget, kv, quant=request.quant, file=request.file, budget=label)


def remote_kv_bytes(
    source: HubSource, repo: Repo, candidate: Candidate, http: urllib3.PoolManager
) -> int | None:
    """The model's KV cost per token, from the first megabytes of its first file (a Range GET)."""
    first = candidate.files[0]
    url = source.file_url(repo.repo, repo.commit, first.path)
    for prefix in HEADER_PREFIXES:
        try:
            response = http.request(
                "GET",
                url,
                headers={**http.headers, "Range": f"bytes=0-{prefix - 1}"},
                timeout=30.0,
                preload_content=False,
                retries=REDIRECTS_ONLY,
            )
            try:
                if response.status not in (200, 206):
                    return None
                data = response.read(prefix)  # a server that ignores Range sends it all
            finally:
                response.release_conn()
            header = parse_prefix(data, first.size)
        except HeaderIncomplete:
            continue
        except (Invalid, HTTPError):
            return None
        arch = metadata_str(header.metadata, "general.architecture")
        if arch is None:
            return None
        layers = metadata_int(header.metadata, f"{arch}.block_count")
        return kv_bytes_per_token(header.metadata, arch, layers)
    return None


def check_choice(chosen_plan: Plan, request: PullRequest) -> Candidate:
    chosen = chosen_plan.chosen
    if chosen is None:
        smallest = chosen_plan.fits[0]
        raise InsufficientMemory(
            f"nothing in {chosen_plan.repo.repo} fits in {human_size(chosen_plan.available)}: the "
            f"smallest ({smallest.candidate.name}) needs about "
            f"{human_size(smallest.memory or smallest.candidate.size)}; name one with :QUANT or "
            "--file and add --force to pull it anyway"
        )
    if chosen.mark == TOO_BIG and not request.force:
        raise InsufficientMemory(
            f"{chosen.candidate.name} needs about {human_size(chosen.memory or 0)} but "
            f"{human_size(chosen_plan.available)} is available here: add --force to pull it "
            "anyway (for a machine with more memory)"
        )
    return chosen.candidate


def target_folder(folder: DataFolder, repo: str) -> Path:
    return folder.models / repo.split("/", 1)[1]


def pull(
    folder: DataFolder,
    source: HubSource,
    request: PullRequest,
    reporter: Reporter | None = None,
    stop: threading.Event | None = None,
) -> PullResult:
    reporter = reporter or Reporter()
    with client(source) as http:
        chosen_plan = make_plan(source, request, http)
        reporter.plan(chosen_plan)
        candidate = check_choice(chosen_plan, request)
        return fetch_candidate(
            folder,
            source=source,
            repo=chosen_plan.repo,
            candidate=candidate,
            http=http,
            reporter=reporter,
            stop=stop,
        )


def fetch_candidate(
    folder: DataFolder,
    *,
    source: HubSource,
    repo: Repo,
    candidate: Candidate,
    http: urllib3.PoolManager,
    reporter: Reporter,
    stop: threading.Event | None = None,
) -> PullResult:
    target = target_folder(folder, repo.repo)
    places = [target / PurePosixPath(item.path).name for item in candidate.files]
    model = places[0].relative_to(folder.models).as_posix()
    files = tuple(p.relative_to(folder.models).as_posix() for p in places)
    if all(_already(place, item) for place, item in zip(places, candidate.files, strict=True)):
        digests = tuple(item.sha256 or "" for item in candidate.files)
        return PullResult(
            repo.repo, repo.commit, model, files, candidate.size, digests, 0, 0.0, True
        )
    if clash := [p.name for p in places if p.exists()]:
        raise Conflict(
            f"{', '.join(clash)} already in {target} but not this file: "
            "`council models rm` it first"
        )
    fetched = []
    total = len(candidate.files)
    for no, item in enumerate(candidate.files, start=1):
        reporter.file(item, no, total)
        wanted = _wanted(source, repo, item)
        fetched.append(fetch(wanted, folder.downloads, http, progress=reporter.progress, stop=stop))
    target.mkdir(parents=True, exist_ok=True)
    moved: list[Path] = []
    try:
        for got, place, item in reversed(list(zip(fetched, places, candidate.files, strict=True))):
            got.path.rename(place)
            moved.append(place)
            stat = place.stat()
            write_source(
                place,
                Source(
                    repo.repo,
                    repo.commit,
                    item.path,
                    got.sha256,
                    stat.st_size,
                    stat.st_mtime_ns,
                    source.endpoint,
                    stamp(),
                ),
            )
    except OSError as exc:
        for place in moved:
            place.unlink(missing_ok=True)
        raise CouncilError(
            f"could not move the download into {target}: {exc.strerror or exc}"
        ) from None
    sync_directory(target)
    return PullResult(
        repo.repo,
        repo.commit,
        model,
        files,
        candidate.size,
        tuple(got.sha256 for got in fetched),
        sum(got.resumed_from for got in fetched),
        sum(got.seconds for got in fetched),
    )


def discard(folder: DataFolder, source: HubSource, repo: Repo, candidate: Candidate) -> None:
    """Delete what a cancelled pull left in downloads/: it is not to be resumed."""
    for item in candidate.files:
        wanted = _wanted(source, repo, item)
        for path in partial_paths(folder.downloads, wanted):
            path.unlink(missing_ok=True)


def _wanted(source: HubSource, repo: Repo, item: RemoteFile) -> Wanted:
    url = source.file_url(repo.repo, repo.commit, item.path)
    return Wanted(repo.repo, repo.commit, item.path, item.size, item.sha256, url)


def _already(place: Path, item: RemoteFile) -> bool:
    known = read_source(place)
    return known is not None and known.sha256 == item.sha256 and known.size == item.size


__all__ = ["FITS", "PullRequest", "PullResult", "Reporter", "pull"]
