"""`council models pull` against curl, on one file from the loopback Hub stand-in; and a
resume against a fresh pull.

The stand-in (tests/fake_hf.py, in a process of its own) serves a file of random bytes (1 GB by
default) as the repository `bench/<folder>`: the Hub's API, its 302 from `resolve/` to a CDN
path, `Range` and `206` on the CDN path, the body sent with sendfile. Timed, in one run:

  (a) `curl -L -o FILE URL`: the bytes to the page cache, nothing checked; and (a') the same
      followed by an fsync of the file, so that the bytes are on the disk, as a pull's are
      (it syncs every 32 MiB and before the move: a stick can be pulled out);
  (b) `council models pull bench/<folder>`: the listing, the header read, the bytes to disk with
      the SHA-256 computed as they arrive and compared with the repository's, the checkpoints
      (fsync every 32 MiB), the move into models/ and its sidecar;
  (c) a pull killed (SIGKILL) once its partial passes half the file, then the same command run
      again: the second run's time, against (b).

Reported: MB/s of (a), (a') and (b), (b)/(a') and (b)/(a) (target >= 0.9), and the resume's
time against a fresh pull's (a resume from 50% should take about half, plus the start-up).

    .venv/bin/python benchmarks/pull.py [--size-mb 1024] [--runs 2]
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time

ROOT = Path(__file__).resolve().parent.parent
NAME = "bench-F16.gguf"


def write_random(path: Path, size: int) -> None:
    chunk = os.urandom(16 * 1024 * 1024)
    with open(path, "wb") as handle:
        left = size
        while left:
            handle.write(chunk[: min(len(chunk), left)])
            left -= min(len(chunk), left)


def start_stand_in(folder: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_hf", str(folder)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def council(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "council", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def timed_pull(repo: str, data: Path, env: dict[str, str]) -> float:
    began = time.perf_counter()
    process = council("models", "pull", repo, "--data", str(data), "--force", env=env)
    _, err = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"council models pull failed: {err.decode().strip()}")
    return time.perf_counter() - began


def timed_curl(url: str, target: Path, sync: bool) -> float:
    os.sync()  # nothing of an earlier run left to flush
    began = time.perf_counter()
    subprocess.run(["curl", "-sfL", "-o", str(target), url], check=True)
    if sync:
        descriptor = os.open(target, os.O_RDONLY)
        os.fsync(descriptor)
        os.close(descriptor)
    return time.perf_counter() - began


def killed_at_half(repo: str, data: Path, env: dict[str, str], size: int) -> int:
    process = council("models", "pull", repo, "--data", str(data), "--force", env=env)
    downloads = data / "downloads"
    try:
        while process.poll() is None:
            parts = list(downloads.glob("*.part")) if downloads.is_dir() else []
            if parts and parts[0].stat().st_size >= size // 2:
                os.kill(process.pid, signal.SIGKILL)
                break
            time.sleep(0.002)
    finally:
        process.wait()
    parts = list(downloads.glob("*.part"))
    if not parts:
        raise SystemExit("the pull finished before it could be killed: use a larger --size-mb")
    return parts[0].stat().st_size


def fresh_data(work: Path, name: str) -> Path:
    data = work / name
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir()
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the file, in MiB")
    parser.add_argument("--runs", type=int, default=2, help="timed runs of each")
    args = parser.parse_args()
    size = args.size_mb * 1024 * 1024
    if shutil.which("curl") is None:
        raise SystemExit("curl is not installed")

    with tempfile.TemporaryDirectory(prefix="council-pull-bench-") as temp:
        work = Path(temp)
        served = work / "pull"
        served.mkdir()
        write_random(served / NAME, size)
        stand_in, url = start_stand_in(served)
        try:
            repo = f"bench/{served.name}"
            env = {**os.environ, "HF_ENDPOINT": url}
            file_url = f"{url}/{repo}/resolve/main/{NAME}"
            curl_s, synced_s, pull_s, resume_s, kept = [], [], [], [], []
            for run in range(args.runs):
                target = work / f"curl-{run}.gguf"
                curl_s.append(timed_curl(file_url, target, sync=False))
                target.unlink()
                synced_s.append(timed_curl(file_url, target, sync=True))
                target.unlink()
                os.sync()
                pull_s.append(timed_pull(repo, fresh_data(work, "fresh"), env))
                data = fresh_data(work, "resumed")
                kept.append(killed_at_half(repo, data, env, size))
                os.sync()  # the killed pull's dirty pages are not the resume's to flush
                resume_s.append(timed_pull(repo, data, env))
        finally:
            stand_in.terminate()
            stand_in.wait()

    mb = size / 1e6
    curl_t, synced_t, pull_t, resume_t = (
        statistics.median(x) for x in (curl_s, synced_s, pull_s, resume_s)
    )
    print(f"file: {mb:.0f} MB from the loopback stand-in, median of {args.runs} runs")
    print(f"(a)  curl -L -o              {curl_t:6.2f} s  {mb / curl_t:7.1f} MB/s  (page cache)")
    print(f"(a') curl -L -o, then fsync  {synced_t:6.2f} s  {mb / synced_t:7.1f} MB/s  (on disk)")
    print(
        f"(b)  council models pull     {pull_t:6.2f} s  {mb / pull_t:7.1f} MB/s  (on disk, sha256)"
    )
    print(f"     (b)/(a') throughput     {synced_t / pull_t:6.2f}   (target >= 0.9)")
    print(f"     (b)/(a)  throughput     {curl_t / pull_t:6.2f}")
    share = statistics.median(k / size for k in kept)
    print(f"(c) resume after a kill at {share:.0%} (partial kept to its last checkpoint)")
    print(
        f"    resume {resume_t:6.2f} s  against a fresh pull {pull_t:6.2f} s:"
        f" {resume_t / pull_t:.2f} of the time"
    )


if __name__ == "__main__":
    main()
