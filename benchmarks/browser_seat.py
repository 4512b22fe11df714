"""The browser seat, measured: model downloads from the hub next to Debian's nginx, in one run.

(The other half of this benchmark, tokens/s of the same GGUF in a tab with wllama against
llama-server, lands with the browser seat page.)

Download: a generated model of about 1 GB (a valid GGUF, since the hub offers catalog files
only) in a temporary stick's models/ folder; a hub serves it at its `/models/<digest>/<name>`
URL (plain HTTP on loopback, so whole files leave by sendfile), and nginx (`sendfile on`, its
own prefix folder and config, a free loopback port, stopped by its PID) serves the same file.
Each round downloads the file once from each, alternating which goes first; the client is a
bare asyncio protocol that counts bytes, so Python's HTTP parsing is not what gets measured.
Reported: MB/s of each (the median round) and the ratio hub/nginx (target ≥ 0.9).

    .venv/bin/python benchmarks/browser_seat.py [--rounds 5] [--size-gb 1]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and "council" would be this file.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time

import httpx

from council.datafolder import DataFolder
from council.models.demo import DemoShape, write_demo_model

MB = 1_000_000
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
    return DemoShape(embedding_length=4096, block_count=blocks, feed_forward_length=11008,
                     head_count=32, head_count_kv=8)  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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


def start_nginx(root: Path, models: Path) -> tuple[subprocess.Popen[bytes], int] | None:
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                       else None)  # fmt: skip
    if binary is None:
        return None
    port = free_port()
    (root / "nginx.conf").write_text(NGINX_CONF.format(root=root, models=models, port=port))
    process = subprocess.Popen([binary, "-p", str(root), "-c", str(root / "nginx.conf"),
                                "-g", "daemon off;"], stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process, port
        time.sleep(0.05)
    process.kill()
    raise SystemExit("nginx did not start")


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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        os.chmod(temp, 0o755)  # noqa: S103 - nginx's worker runs as another user under root
        folder = DataFolder(Path(temp) / "stick")
        folder.root.mkdir()
        folder.prepare()
        name = "bench.gguf"
        model = write_demo_model(folder.models / name, name="bench", shape=shape_for(args.size_gb))
        size = model.stat().st_size
        port = free_port()
        hub = subprocess.Popen(
            [sys.executable, "-m", "council", "up", "--no-browser", "--port", str(port),
             "--data", str(folder.root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ,
        )  # fmt: skip
        nginx = None
        try:
            base = f"http://127.0.0.1:{port}"
            targets = {"council": (port, wait_for_url(base, name))}
            nginx = start_nginx(Path(temp), folder.models)
            if nginx is not None:
                targets["nginx"] = (nginx[1], f"/{name}")
            print(f"{args.rounds} downloads of a {size / MB:.0f} MB model from each server, "
                  f"alternating order, on {os.cpu_count()} cores"
                  f"{'' if nginx else ' (nginx not installed: no reference)'}")  # fmt: skip
            rates = asyncio.run(measure(targets, args.rounds))
            for target, values in rates.items():
                print(f"  {target:<8} median {statistics.median(values):>8.0f} MB/s   "
                      f"rounds: {' '.join(f'{v:.0f}' for v in values)}")  # fmt: skip
            if nginx is not None:
                ratio = statistics.median(rates["council"]) / statistics.median(rates["nginx"])
                print(f"  council/nginx: {ratio:.3f} (target ≥ 0.9)")
        finally:
            if nginx is not None:
                nginx[0].send_signal(signal.SIGQUIT)
                nginx[0].wait(timeout=10)
            hub.send_signal(signal.SIGTERM)
            hub.wait(timeout=30)


if __name__ == "__main__":
    main()
