"""A stand-in llama-server for the engine self-test and its ladder: it speaks the two routes the
self-test uses (`/health`, `/completion`) and dies by SIGILL the way a build with a trapping
instruction set does, so the ladder can be tested on any CPU.

It reads `fake-engine.json` beside itself (written by the test, and rewritten by the fake build
on each rebuild):
    features        the ggml options this "build" was compiled with
    trap            features whose kernels trap on this "CPU"
    trap_always     every build traps (a CPU nothing runs on)
    trap_on_start   die while loading instead of on the first batch
    buffer_trap     the trap lives in an extra buffer type, so `--no-repack` avoids it
    variants        for a portable build: CPU variants, best first; the best one present in
                    this folder is "loaded" (and logged as llama-server does) and traps if
                    listed in `trap`
    delay, delay_no_repack   seconds per completion, to make one choice faster than another
    exit_code       exit with this code on start (a failure that is not the CPU's)
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(sys.argv[0]).resolve().parent
CONFIG: dict[str, Any] = json.loads((HERE / "fake-engine.json").read_text())
ARGV = sys.argv[1:]


def option(name: str, default: str = "") -> str:
    return ARGV[ARGV.index(name) + 1] if name in ARGV else default


def trapping() -> bool:
    if CONFIG.get("trap_always"):
        return True
    variants = CONFIG.get("variants")
    if variants:
        loaded = next((v for v in variants if (HERE / v).is_file()), None)
        print(f"load_backend: loaded CPU backend from {HERE / str(loaded)}", flush=True)
        return loaded in CONFIG.get("trap", [])
    traps = set(CONFIG.get("trap", [])) & set(CONFIG.get("features", []))
    if CONFIG.get("buffer_trap") and "--no-repack" in ARGV:
        return False
    return bool(traps)


def die_by_sigill() -> None:
    os.kill(os.getpid(), signal.SIGILL)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.reply({"status": "ok"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        if TRAPS:
            die_by_sigill()
        delay = CONFIG.get("delay_no_repack" if "--no-repack" in ARGV else "delay", 0.0)
        time.sleep(delay)
        n = int(body.get("n_predict", 1))
        self.reply({"content": "x" * n, "tokens_predicted": n, "tokens_evaluated": 100})

    def reply(self, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


with open(HERE / "fake-engine.runs", "a") as runs:  # one line per start, for tests to count
    runs.write(" ".join(ARGV) + "\n")
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a trap, but no core file
signal.signal(signal.SIGILL, signal.SIG_DFL)
if "--version" in ARGV:
    print("version: 1 (build 1, commit fake)")
    sys.exit(0)
if CONFIG.get("exit_code"):
    print("error loading model: the fake engine was told to fail", flush=True)
    sys.exit(int(CONFIG["exit_code"]))
TRAPS = trapping()
if TRAPS and CONFIG.get("trap_on_start"):
    die_by_sigill()
server = ThreadingHTTPServer(("127.0.0.1", int(option("--port", "0"))), Handler)
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
server.serve_forever()
