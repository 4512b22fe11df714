"""The browser seat, measured: tokens/s in a tab against llama-server, and model downloads
from the hub against Debian's nginx, in one run.

Tokens/s: a generated model of about 130M parameters (random weights: benchmarks/hubs.py's
"paced" shape, a small model's pace that loads in seconds) on the same stick, once in F16 and
once in Q8_0. Debian's Chromium (headless, through Playwright) opens
`/seat/?model=paced-f16.gguf` (then `paced-q8_0.gguf`); wllama loads it from the hub on the
page's own thread count (read back from the page), and the page's test hook
`window.councilSeat.generate(prompt, max_tokens)` runs one greedy chat completion (temperature
0, end of text ignored). llama-server (the hub's engine binary, spawned directly) loads the same
file with `--threads N --threads-batch N` and answers the same request on
`/v1/chat/completions`. Both report llama.cpp's own `timings.predicted_per_second`
(generation only, prompt processing excluded); rounds alternate which goes first, after one
warm-up each. Reported: the median of each and the ratio tab/llama-server.

Download: a generated model of about 1 GB (a valid GGUF, since the hub offers catalog files
only) in a temporary stick's models/ folder; a hub serves it at its `/models/<digest>/<name>`
URL (plain HTTP on loopback, so whole files leave by sendfile), and nginx (`sendfile on`, its
own prefix folder and config, a free loopback port, stopped by its PID) serves the same file.
Each round downloads the file once from each, alternating which goes first; the client is a
bare asyncio protocol that counts bytes, so Python's HTTP parsing is not what gets measured.
Reported: MB/s of each (the median round) and the ratio hub/nginx (target ≥ 0.9).

    .venv/bin/python benchmarks/browser_seat.py [--rounds 5] [--size-gb 1] [--token-rounds 3]
        [--max-tokens 64]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder would come first on sys.path, where council.py is a benchmark:
# put the repository there instead, so `council` is the package and `benchmarks.hubs` resolves.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time

import httpx
from benchmarks.hubs import PACED, free_port, running_hub, running_nginx

from council.datafolder import DataFolder
from council.engine.binary import find_llama_server
from council.models.demo import DemoShape, write_demo_model

MB = 1_000_000
CHROMIUM = "/usr/bin/chromium"
PROMPT = "Write a long story about a council of machines that meets on a USB stick."
N_CTX = 1024  # the page's context size
# F16 is the generator's default; Q8_0 is what a browser should be given (WebAssembly has SIMD
# kernels for block quantizations, none for F16).
FORMATS = ("F16", "Q8_0")
NGINX_CONF = """
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {root}/body;
    server {{
        listen 127.0.0.1:{port};
        location / {{ root {models}; }}
    }}
}}
"""


def shape_for(size_gb: float) -> DemoShape:
    """A llama shape of about `size_gb` GB in F16: 4096 wide, ~354 MB a block."""
    blocks = max(1, round(size_gb * 1e9 / (177_209_344 * 2)))
    return DemoShape(
        embedding_length=4096,
        block_count=blocks,
        feed_forward_length=11008,
        head_count=32,
        head_count_kv=8,
    )


class _Download(asyncio.BufferedProtocol):
    """Sends one GET and counts the bytes after the headers until Content-Length is reached.

    A buffered protocol: the kernel copies into one reused 4 MiB buffer, and no bytes object
    is made per read, so the client costs less CPU than either server.
    """

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.buffer = bytearray(4 * 1024 * 1024)
        self.head = b""
        self.body = 0
        self.length = -1
        self.done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self.request)

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(self.buffer)

    def buffer_updated(self, nbytes: int) -> None:
        count = nbytes
        if self.length < 0:
            self.head += self.buffer[:nbytes]
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head, count = self.head[:end].lower(), len(self.head) - end - 4
            if not head.startswith(b"http/1.1 200"):
                status, host = head.split(b"\r\n")[0], self.request.splitlines()[1]
                self.done.set_exception(RuntimeError(f"{status.decode()} ({host.decode()})"))
                return
            lines = head.split(b"\r\n")
            length = next(line for line in lines if line.startswith(b"content-length:"))
            self.length = int(length.split(b":")[1])
        self.body += count
        if self.body >= self.length and not self.done.done():
            self.done.set_result(self.body)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(RuntimeError(f"closed after {self.body} bytes"))


async def download(host: str, port: int, path: str) -> float:
    """One GET of `path`; the body's MB/s."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    transport, protocol = await loop.create_connection(lambda: _Download(request), host, port)
    try:
        size = await protocol.done
    finally:
        transport.close()
    return size / MB / (time.perf_counter() - started)


def start_engine(
    folder: DataFolder, model: Path, threads: int
) -> tuple[subprocess.Popen[bytes], str]:
    """llama-server on `model` with `threads` threads, on a free loopback port, once healthy."""
    port = free_port()
    binary = find_llama_server(folder)
    process = subprocess.Popen(
        [
            str(binary.path),
            "-m",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "-c",
            str(N_CTX),
            "--threads",
            str(threads),
            "--threads-batch",
            str(threads),
            *binary.runtime_args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("llama-server exited")
        try:
            if httpx.get(f"{base}/health", trust_env=False).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit("llama-server did not start")


def engine_rate(base: str, max_tokens: int) -> float:
    """One greedy completion on llama-server: its generation tokens/s."""
    answer = httpx.post(
        f"{base}/v1/chat/completions",
        trust_env=False,
        timeout=300,
        json={
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": max_tokens,
            "temperature": 0,
            "ignore_eos": True,
        },
    ).json()
    if answer["usage"]["completion_tokens"] != max_tokens:
        raise SystemExit(f"llama-server generated {answer['usage']['completion_tokens']} tokens")
    return float(answer["timings"]["predicted_per_second"])


def tokens_per_second(
    folder: DataFolder, hub_url: str, name: str, quantization: str, *, rounds: int, max_tokens: int
) -> None:
    """The tokens/s half: the same model in a tab (wllama) and in llama-server, printed."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            page.goto(f"{hub_url}/seat/?model={name}")
            page.wait_for_selector("body[data-mode=tab]", state="attached", timeout=300_000)
            threads = int(page.evaluate("document.body.dataset.threads"))
            engine, engine_url = start_engine(folder, folder.models / name, threads)

            def tab() -> float:
                done = page.evaluate(
                    "([p, n]) => window.councilSeat.generate(p, n)", [PROMPT, max_tokens]
                )
                if done["usage"]["completion_tokens"] != max_tokens:
                    raise SystemExit(f"the tab generated {done['usage']['completion_tokens']}")
                return float(done["timings"]["predicted_per_second"])

            try:
                runs = {"tab": tab, "llama-server": lambda: engine_rate(engine_url, max_tokens)}
                for run in runs.values():
                    run()  # warm-up
                rates: dict[str, list[float]] = {which: [] for which in runs}
                for round_no in range(rounds):
                    for which in list(runs) if round_no % 2 == 0 else list(runs)[::-1]:
                        rates[which].append(runs[which]())
            finally:
                engine.terminate()
                engine.wait(timeout=30)
        finally:
            browser.close()
    size = (folder.models / name).stat().st_size
    print(
        f"Tokens/s: {rounds} greedy completions of {max_tokens} tokens each, a {size / MB:.0f} "
        f"MB {quantization} model (~130M parameters), {threads} threads each, on "
        f"{os.cpu_count()} cores"
    )
    for which, values in rates.items():
        print(
            f"  {which:<12} median {statistics.median(values):>7.1f} tokens/s   "
            f"rounds: {' '.join(f'{v:.1f}' for v in values)}"
        )
    ratio = statistics.median(rates["tab"]) / statistics.median(rates["llama-server"])
    print(f"  tab/llama-server: {ratio:.3f}")


def wait_for_url(base: str, name: str) -> str:
    """The model's /models URL, once the hub has hashed it."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            models = httpx.get(f"{base}/api/models", trust_env=False).json()["models"]
            url = next((m["url"] for m in models if m["path"] == name and m["url"]), None)
            if url:
                return str(url)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the hub did not offer the model")


async def measure(targets: dict[str, tuple[int, str]], rounds: int) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {name: [] for name in targets}
    names = list(targets)
    for round_no in range(rounds):
        for name in names if round_no % 2 == 0 else names[::-1]:
            port, path = targets[name]
            rates[name].append(await download("127.0.0.1", port, path))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="downloads from each server")
    parser.add_argument("--size-gb", type=float, default=1.0, help="the model file's size")
    parser.add_argument("--token-rounds", type=int, default=3, help="completions on each side")
    parser.add_argument("--max-tokens", type=int, default=64, help="tokens per completion")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        os.chmod(temp, 0o755)  # noqa: S103 - nginx's worker runs as another user under root
        folder = DataFolder(Path(temp) / "stick")
        folder.root.mkdir()
        folder.prepare()
        name = "bench.gguf"
        model = write_demo_model(folder.models / name, name="bench", shape=shape_for(args.size_gb))
        paced = {quantization: f"paced-{quantization.lower()}.gguf" for quantization in FORMATS}
        for quantization, file in paced.items():
            write_demo_model(
                folder.models / file,
                name=f"paced {quantization}",
                shape=PACED,
                quantization=quantization,
            )
        size = model.stat().st_size
        with running_hub(folder.root) as hub:
            # Every file hashed first: hashing in the background would take CPU from the downloads.
            for file in paced.values():
                wait_for_url(hub.url, file)
            targets = {"council": (hub.port, wait_for_url(hub.url, name))}
            with running_nginx(Path(temp), NGINX_CONF, models=folder.models) as nginx:
                if nginx is not None:
                    targets["nginx"] = (nginx, f"/{name}")
                print(
                    f"{args.rounds} downloads of a {size / MB:.0f} MB model from each server, "
                    f"alternating order, on {os.cpu_count()} cores"
                    f"{'' if nginx else ' (nginx not installed: no reference)'}"
                )
                rates = asyncio.run(measure(targets, args.rounds))
                for target, values in rates.items():
                    print(
                        f"  {target:<8} median {statistics.median(values):>8.0f} MB/s   "
                        f"rounds: {' '.join(f'{v:.0f}' for v in values)}"
                    )
                if nginx is not None:
                    ratio = statistics.median(rates["council"]) / statistics.median(rates["nginx"])
                    print(f"  council/nginx: {ratio:.3f} (target ≥ 0.9)")
            for quantization, file in paced.items():
                tokens_per_second(
                    folder,
                    hub.url,
                    file,
                    quantization,
                    rounds=args.token_rounds,
                    max_tokens=args.max_tokens,
                )


if __name__ == "__main__":
    main()
