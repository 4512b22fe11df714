"""Pulls the hub runs for its Models panel: queued, one at a time, watched, cancelled, resumed.

One pull at a time: a USB stick written by two downloads at once is slower for both. Each runs
`pulling.pull` on a daemon thread (a download stalled in a read must never hold up the hub's
shutdown; its partial is kept to its last checkpoint either way), reporting progress back to
the event loop at most four times a second. Leaving the page does not stop a pull; the hub
stopping does, and the next hub resumes every partial it finds in `downloads/` (the CLI's too).
A pull cancelled on the page deletes its partial, so that it is not resumed.

The token never reaches a job, a response or a log: it stays inside `HubSource`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from council.datafolder import DataFolder
from council.errors import (
    CouncilError,
    InsufficientMemory,
    NotFound,
    PullCancelled,
    TooManyRequests,
)
from council.models.catalog import SPLIT_NAME
from council.pull.choice import Candidate, Plan
from council.pull.download import pending
from council.pull.hf import HubSource, RemoteFile, check_repo_id, check_revision
from council.pull.pulling import PullRequest, Reporter, client, discard, make_plan, pull
from council.timestamps import stamp

log = logging.getLogger("council")
MAX_QUEUED = 16
KEPT = 50  # finished pulls listed, newest first
PROGRESS_EVERY = 0.25
ACTIVE = ("queued", "running")


@dataclass(slots=True)
class PullJob:
    id: str
    repo: str
    file: str | None
    revision: str
    force: bool
    state: str = "queued"  # queued | running | done | failed | cancelled
    done: int = 0
    total: int = 0
    rate: float = 0.0  # bytes a second, smoothed
    name: str | None = None  # the chosen file (a split set's first shard)
    model: str | None = None  # once done: its path relative to models/
    error: str | None = None
    resumed_from: int = 0
    needs_force: bool = False  # failed because the model is too big: `force` would pull it
    created_at: str = field(default_factory=stamp)
    user_cancelled: bool = False

    def to_dict(self) -> dict[str, object]:
        left = self.total - self.done
        return {
            "id": self.id,
            "repo": self.repo,
            "file": self.file,
            "revision": self.revision,
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "rate": round(self.rate),
            "eta": round(left / self.rate) if self.rate > 0 and self.state == "running" else None,
            "name": self.name,
            "model": self.model,
            "error": self.error,
            "resumed_from": self.resumed_from,
            "needs_force": self.needs_force,
            "created_at": self.created_at,
        }


class Pulls:
    def __init__(
        self, folder: DataFolder, source: HubSource, on_pulled: Callable[[], None]
    ) -> None:
        self.folder = folder
        self.source = source
        self.on_pulled = on_pulled
        self.jobs: dict[str, PullJob] = {}
        self._stops: dict[str, threading.Event] = {}
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._marks: dict[str, tuple[float, int]] = {}  # the last progress: when, bytes
        self._version = 0
        self._changed = asyncio.Event()
        self._closed = False

    # --- what the API calls ---------------------------------------------------------------

    def start(
        self, repo: str, file: str | None = None, revision: str = "main", force: bool = False
    ) -> PullJob:
        repo, revision = check_repo_id(repo), check_revision(revision)
        for job in self.jobs.values():
            if job.state in ACTIVE and (job.repo, job.file, job.revision) == (repo, file, revision):
                if force and job.state == "queued":
                    job.force = True  # asked again, now knowing it is too big
                return job  # asked twice: the same pull
        if sum(job.state in ACTIVE for job in self.jobs.values()) >= MAX_QUEUED:
            raise TooManyRequests(f"{MAX_QUEUED} pulls are already waiting: let some finish")
        job = PullJob(secrets.token_hex(6), repo, file, revision, force)
        self.jobs[job.id] = job
        self._forget_old()
        self._queue.put_nowait(job.id)
        self._touch()
        return job

    def cancel(self, job_id: str) -> PullJob:
        job = self.get(job_id)
        if job.state == "queued":
            job.state, job.error = "cancelled", "cancelled before it began"
        elif job.state == "running":
            job.user_cancelled = True
            self._stops[job.id].set()
        self._touch()
        return job

    def get(self, job_id: str) -> PullJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound(f"no pull {job_id!r}")
        return job

    def listing(self) -> list[dict[str, object]]:
        return [job.to_dict() for job in sorted(self.jobs.values(), key=lambda j: j.created_at)]

    @property
    def version(self) -> int:
        """Grows on every change to any pull."""
        return self._version

    async def changed(self, seen: int, timeout: float) -> int:
        """The version after `seen`, waiting up to `timeout` seconds for one (else `seen`);
        -1 once the hub is stopping (streams end)."""
        if self._version == seen and not self._closed:
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except TimeoutError:
                return seen
        return -1 if self._closed else self._version

    async def plan(self, repo: str, revision: str = "main") -> Plan:
        def work() -> Plan:
            with client(self.source) as http:
                return make_plan(self.source, PullRequest(repo, revision=revision), http)

        return await asyncio.to_thread(work)

    async def search(self, query: str) -> list[dict[str, object]]:
        return await asyncio.to_thread(self.source.search, query)

    # --- the hub's side -------------------------------------------------------------------

    def resume_pending(self) -> list[PullJob]:
        """A job for every partial left in downloads/ (a split set once); orphans removed."""
        resumed, seen = [], set()
        for state in pending(self.folder.downloads):
            name = PurePosixPath(state.file).name
            split = SPLIT_NAME.match(name)
            key = (state.repo, state.commit, split["prefix"] if split else name)
            if key in seen:
                continue
            seen.add(key)
            first = state.file
            if split:
                first = str(
                    PurePosixPath(state.file).with_name(
                        f"{split['prefix']}-00001-of-{split['count']}.gguf"
                    )
                )
            try:
                resumed.append(self.start(state.repo, first, state.commit, force=True))
            except CouncilError as exc:
                log.warning("cannot resume the pull of %s: %s", state.file, exc)
        self._remove_orphans()
        return resumed

    async def run(self) -> None:
        """The worker: one pull at a time, until the hub stops."""
        while True:
            job = self.jobs.get(await self._queue.get())
            if job is None or job.state != "queued":
                continue
            await self._run(job)

    def stop_all(self) -> None:
        """The hub is stopping: every running pull stops at its next chunk, partial kept, and
        the event streams end."""
        self._closed = True
        for stop in self._stops.values():
            stop.set()
        self._touch()

    async def _run(self, job: PullJob) -> None:
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()
        stop = self._stops[job.id] = threading.Event()
        job.state = "running"
        self._touch()
        chosen: list[tuple[Plan, Candidate]] = []
        offsets = {"before": 0, "last": 0.0}

        def post(callback: Callable[..., None], *args: object) -> None:
            # the hub stopped and its loop closed: nobody is listening any more
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(callback, *args)

        def on_plan(plan: Plan) -> None:
            if plan.chosen is not None:
                chosen.append((plan, plan.chosen.candidate))
                post(self._planned, job, plan.chosen.candidate)

        def on_file(item: RemoteFile, no: int, _count: int) -> None:
            if chosen:
                files = chosen[0][1].files
                offsets["before"] = sum(f.size for f in files[: no - 1])

        def on_progress(done: int, _total: int) -> None:
            now = time.monotonic()
            if now - offsets["last"] >= PROGRESS_EVERY:
                offsets["last"] = now
                post(self._progress, job, int(offsets["before"]) + done, now)

        def work() -> None:
            request = PullRequest(job.repo, file=job.file, revision=job.revision, force=job.force)
            reporter = Reporter(plan=on_plan, file=on_file, progress=on_progress)
            outcome: object
            try:
                outcome = pull(self.folder, self.source, request, reporter, stop)
            except PullCancelled as exc:
                if job.user_cancelled and chosen:
                    discard(self.folder, self.source, chosen[0][0].repo, chosen[0][1])
                outcome = exc
            except CouncilError as exc:
                outcome = exc
            except Exception as exc:  # a bug: reported on the job, logged with its trace
                log.exception("the pull of %s failed", job.repo)
                outcome = CouncilError(f"the pull failed unexpectedly ({type(exc).__name__})")
            post(self._finish, job, outcome, finished)

        threading.Thread(target=work, name=f"pull-{job.id}", daemon=True).start()
        try:
            await finished
        finally:
            self._stops.pop(job.id, None)

    # --- on the loop ----------------------------------------------------------------------

    def _planned(self, job: PullJob, candidate: Candidate) -> None:
        job.name, job.total = candidate.name, candidate.size
        self._touch()

    def _progress(self, job: PullJob, done: int, now: float) -> None:
        last = self._marks.get(job.id)
        if last is not None and now > last[0]:
            instant = (done - last[1]) / (now - last[0])
            job.rate = instant if job.rate == 0 else 0.7 * job.rate + 0.3 * instant
        self._marks[job.id] = (now, done)
        job.done = done
        self._touch()

    def _finish(self, job: PullJob, outcome: object, finished: asyncio.Future[None]) -> None:
        from council.pull.pulling import PullResult

        if isinstance(outcome, PullResult):
            job.state, job.model, job.done = "done", outcome.model, outcome.size
            job.total, job.resumed_from = outcome.size, outcome.resumed_from
            self.on_pulled()
        elif isinstance(outcome, PullCancelled):
            job.state = "cancelled"
            job.error = "cancelled" if job.user_cancelled else "stopped with the hub (it resumes)"
        else:
            job.state, job.error = "failed", str(outcome)
            job.needs_force = isinstance(outcome, InsufficientMemory) and not job.force
        job.rate = 0.0
        self._marks.pop(job.id, None)
        self._touch()
        if not finished.done():
            finished.set_result(None)

    def _touch(self) -> None:
        self._version += 1
        self._changed.set()

    def _forget_old(self) -> None:
        ended = [job for job in self.jobs.values() if job.state not in ACTIVE]
        for job in sorted(ended, key=lambda j: j.created_at)[: max(0, len(ended) - KEPT)]:
            del self.jobs[job.id]

    def _remove_orphans(self) -> None:
        """`.part` files with no state beside them (a verified shard whose move never came)."""
        downloads = self.folder.downloads
        if not downloads.is_dir():
            return
        for part in downloads.glob("*.part"):
            if not part.with_suffix(".json").exists():
                part.unlink(missing_ok=True)
