"""A loopback stand-in for the Hugging Face Hub, speaking the contract huggingface_hub reads.

- `GET /api/models/{repo}/revision/{rev}`: the model info (`id`, `sha`, `siblings`, `gated`);
  404 with `X-Error-Code: RepoNotFound` or `RevisionNotFound`.
- `GET /api/models/{repo}/tree/{rev}?recursive=…`: files with `size`, `oid` and `lfs`
  (`oid` = the SHA-256, `size`, `pointerSize`).
- `GET /api/models?search=…&filter=gguf`: repositories whose id contains the words.
- `HEAD`/`GET /{repo}/resolve/{rev}/{file}`: a 302 to `/cdn/{sha256}` as the Hub sends LFS files
  to its CDN, with `X-Repo-Commit`, `X-Linked-Size` and `X-Linked-Etag`; the CDN answers with
  `ETag`, `Content-Length`, `Accept-Ranges: bytes`, and `206` with `Content-Range` for a
  `Range`. A gated repo without the right token answers 401 with `X-Error-Code: GatedRepo`;
  a missing file 404 with `X-Error-Code: EntryNotFound`.

Faults a test sets on the server: cut a body once after N bytes, serve wrong bytes of the right
length, answer a status (with `Retry-After`) a number of times, throttle bodies, ignore Range.
Every request is logged with its Range header, so a test can see a resume.

Run alone (`python -m tests.fake_hf DIR [--port N] [--repo ID]`) it serves every file in DIR
as one repository (`bench/<DIR name>` unless named), for the pull benchmark and the README.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass
class FakeFile:
    path: Path  # on disk
    size: int
    sha256: str

    @classmethod
    def of(cls, path: Path) -> FakeFile:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        return cls(path, path.stat().st_size, digest.hexdigest())


@dataclass
class FakeRepo:
    files: dict[str, FakeFile]
    commit: str = "0123456789abcdef0123456789abcdef01234567"
    gated: bool = False
    downloads: int = 100


@dataclass
class Faults:
    cut_after: dict[str, int] = field(default_factory=dict)  # file name -> bytes, then cut once
    corrupt: set[str] = field(default_factory=set)  # file names served with wrong bytes
    status: dict[str, list[tuple[int, int | None]]] = field(default_factory=dict)  # queued
    throttle: float | None = None  # bytes per second of every body
    pause: dict[str, tuple[int, float]] = field(default_factory=dict)  # at byte N, S s, once
    ignore_range: bool = False


@dataclass
class Logged:
    method: str
    path: str
    range: str | None
    authorization: bool


class FakeHub:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str | None = None) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.faults = Faults()
        self.token = token
        self.cdn: str | None = None  # another stand-in's URL: LFS files are redirected there
        self.log: list[Logged] = []
        self._lock = threading.Lock()
        hub = self

        class Handler(_Handler):
            fake = hub

        self.server = _Server((host, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, repo: str, files: dict[str, Path], **options: Any) -> FakeRepo:
        self.repos[repo] = FakeRepo(
            {name: FakeFile.of(path) for name, path in files.items()}, **options
        )
        return self.repos[repo]

    def ranges(self, name: str) -> list[str | None]:
        """The Range header of every whole-file request for `name`: None from byte 0, else
        `bytes=N-` (a header read, `bytes=0-M`, is left out)."""
        return [
            item.range
            for item in self.log
            if item.method == "GET"
            and item.path.startswith("/cdn/")
            and item.path.endswith(name)
            and (item.range is None or item.range.endswith("-"))
        ]

    def start(self) -> FakeHub:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def record(self, item: Logged) -> None:
        with self._lock:
            self.log.append(item)

    def queued_status(self, name: str) -> tuple[int, int | None] | None:
        with self._lock:
            queue = self.faults.status.get(name)
            return queue.pop(0) if queue else None

    def take_cut(self, name: str) -> int | None:
        with self._lock:
            return self.faults.cut_after.pop(name, None)

    def take_pause(self, name: str) -> tuple[int, float] | None:
        with self._lock:
            return self.faults.pause.pop(name, None)


def pull_killed_past_a_checkpoint(
    command: list[str], env: dict[str, str], downloads: Path, timeout: float = 60
) -> None:
    """Run a pull and SIGKILL it once its state file says a checkpoint is on the stick (the
    partial's size alone says nothing: checkpoints are synced in the background)."""
    import os
    import signal
    import subprocess

    from council.pull.download import read_state

    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            states = [read_state(path) for path in downloads.glob("*.json")]
            if any(state is not None and state.checkpoint > 0 for state in states):
                os.kill(process.pid, signal.SIGKILL)
                return
            time.sleep(0.02)
        raise AssertionError("the pull never reached its first checkpoint")
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


@contextmanager
def running_hub(**options: Any) -> Iterator[FakeHub]:
    hub = FakeHub(**options).start()
    try:
        yield hub
    finally:
        hub.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that hangs up mid-body (a killed pull) is what some tests do on purpose
        pass


class _Handler(BaseHTTPRequestHandler):
    fake: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._route(body=False)

    def do_GET(self) -> None:
        self._route(body=True)

    def _route(self, body: bool) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        self.fake.record(
            Logged(self.command, path, self.headers.get("Range"), "Authorization" in self.headers)
        )
        query = parse_qs(url.query)
        if path == "/api/models":
            return self._search(query)
        if match := re.match(r"^/api/models/([^/]+/[^/]+)/revision/(.+)$", path):
            return self._info(match[1], match[2])
        if match := re.match(r"^/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?$", path):
            return self._tree(match[1], match[2])
        if match := re.match(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path):
            return self._resolve(match[1], match[2], match[3], body)
        if match := re.match(r"^/cdn/([0-9a-f]{64})/(.+)$", path):
            return self._cdn(match[1], match[2], body)
        return self._json(404, {"error": "not found"})

    # --- the API -------------------------------------------------------------------------------

    def _repo(self, repo_id: str, revision: str) -> FakeRepo | None:
        repo = self.fake.repos.get(repo_id)
        if repo is None:
            self._json(
                401,
                {"error": "Repository not found"},
                {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"},
            )
            return None
        if revision not in ("main", repo.commit):
            self._json(404, {"error": "Invalid rev id"}, {"X-Error-Code": "RevisionNotFound"})
            return None
        return repo

    def _info(self, repo_id: str, revision: str) -> None:
        if (repo := self._repo(repo_id, revision)) is None:
            return
        self._json(
            200,
            {
                "_id": hashlib.md5(repo_id.encode()).hexdigest()[:24],  # noqa: S324 - an id
                "id": repo_id,
                "sha": repo.commit,
                "private": False,
                "gated": "auto" if repo.gated else False,
                "disabled": False,
                "downloads": repo.downloads,
                "likes": 1,
                "tags": ["gguf"],
                "siblings": [{"rfilename": name} for name in repo.files],
                "lastModified": "2026-12-01T00:00:00.000Z",
            },
        )

    def _tree(self, repo_id: str, revision: str) -> None:
        if (repo := self._repo(repo_id, revision)) is None:
            return
        items = [
            {
                "type": "file",
                "oid": hashlib.sha1(item.sha256.encode()).hexdigest(),  # noqa: S324 - git's oid
                "size": item.size,
                "path": name,
                "lfs": {"oid": item.sha256, "size": item.size, "pointerSize": 134},
            }
            for name, item in sorted(repo.files.items())
        ]
        self._json(200, items)

    def _search(self, query: dict[str, list[str]]) -> None:
        words = (query.get("search") or [""])[0].lower()
        limit = int((query.get("limit") or ["50"])[0])
        found = [
            {
                "_id": repo_id,
                "id": repo_id,
                "downloads": repo.downloads,
                "likes": 1,
                "gated": "auto" if repo.gated else False,
                "tags": ["gguf"],
                "private": False,
            }
            for repo_id, repo in sorted(self.fake.repos.items(), key=lambda kv: -kv[1].downloads)
            if words in repo_id.lower()
        ]
        self._json(200, found[:limit])

    # --- files -----------------------------------------------------------------------------------

    def _allowed(self, repo: FakeRepo) -> bool:
        if not repo.gated:
            return True
        wanted = f"Bearer {self.fake.token}" if self.fake.token else None
        return wanted is not None and self.headers.get("Authorization") == wanted

    def _resolve(self, repo_id: str, revision: str, name: str, body: bool) -> None:
        if (repo := self._repo(repo_id, revision)) is None:
            return
        if not self._allowed(repo):
            self._json(
                401,
                {"error": "Access to model is restricted"},
                {"X-Error-Code": "GatedRepo", "X-Error-Message": "Access restricted"},
            )
            return
        item = repo.files.get(name)
        if item is None:
            self._json(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
            return
        self.send_response(302)
        self.send_header("Location", f"{self.fake.cdn or ''}/cdn/{item.sha256}/{name}")
        self.send_header("X-Repo-Commit", repo.commit)
        self.send_header("X-Linked-Size", str(item.size))
        self.send_header("X-Linked-Etag", f'"{item.sha256}"')
        self.send_header("ETag", f'"{item.sha256}"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _cdn(self, sha: str, name: str, body: bool) -> None:
        item = next(
            (
                f
                for repo in self.fake.repos.values()
                for f in repo.files.values()
                if f.sha256 == sha
            ),
            None,
        )
        if item is None:
            self._json(404, {"error": "no such object"})
            return
        asked = self.headers.get("Range")
        whole = asked is None or asked.endswith("-")  # faults skip header reads (bytes=0-M)
        if whole and (status := self.fake.queued_status(name)) is not None:
            code, retry = status
            self._json(code, {"error": "slow down"}, {"Retry-After": str(retry)} if retry else {})
            return
        start, end = 0, item.size - 1
        wanted = self.headers.get("Range")
        partial = False
        if wanted and not self.fake.faults.ignore_range:
            match = RANGE.match(wanted.strip())
            if match is None or int(match[1]) >= item.size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{item.size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = int(match[1])
            end = min(int(match[2]), item.size - 1) if match[2] else item.size - 1
            partial = True
        length = end - start + 1
        self.send_response(206 if partial else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", f'"{sha}"')
        if partial:
            self.send_header("Content-Range", f"bytes {start}-{end}/{item.size}")
        self.end_headers()
        if body:
            self._send_body(item, name, start, length)

    def _send_body(self, item: FakeFile, name: str, start: int, length: int) -> None:
        faults = self.fake.faults
        asked = self.headers.get("Range")
        whole = asked is None or asked.endswith("-")
        cut = self.fake.take_cut(name) if whole else None
        pause = self.fake.take_pause(name) if whole else None
        corrupt = name in faults.corrupt
        with open(item.path, "rb") as handle:
            if cut is None and pause is None and not corrupt and faults.throttle is None:
                self.wfile.flush()
                self.connection.sendfile(handle, start, length)
                return
            handle.seek(start)
            sent, step = 0, 64 * 1024
            began = time.monotonic()
            while sent < length:
                chunk = handle.read(min(step, length - sent))
                if corrupt:
                    chunk = bytes(b ^ 0xFF for b in chunk)
                if cut is not None and sent + len(chunk) >= cut - start:
                    self.wfile.write(chunk[: max(0, cut - start - sent)])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(chunk)
                sent += len(chunk)
                if pause is not None and start + sent >= pause[0]:
                    self.wfile.flush()
                    time.sleep(pause[1])  # the stall: the connection stays open, silent
                    pause = None
                if faults.throttle:
                    ahead = sent / faults.throttle - (time.monotonic() - began)
                    if ahead > 0:
                        time.sleep(ahead)

    def _json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--repo", default=None, help="the repository's id (bench/<DIR name>)")
    args = parser.parse_args()
    hub = FakeHub(port=args.port)
    files = {path.name: path for path in sorted(args.folder.iterdir()) if path.is_file()}
    hub.add(args.repo or f"bench/{args.folder.name}", files)
    print(hub.url, flush=True)
    hub.server.serve_forever()


if __name__ == "__main__":
    main()
