"""A cloud seat we cannot reach from here, played by a small OpenAI-compatible server on loopback.

It streams chat completions like a hosted API would. Asked to answer, it says something that
names itself; asked to review (the prompt asks for a FINAL RANKING block), it critiques briefly
and ranks the responses that came from a scripted seat first, then the rest in label order.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LABEL = re.compile(
    r"^Response ([A-Z]):\n(.*?)(?=\n\nResponse [A-Z]:\n|\n\nFirst write)", re.M | re.S
)


def reply_for(name: str, prompt: str) -> str:
    if not prompt.startswith("You are reviewing anonymous answers"):
        return f"Scripted answer from {name}: the capital of France is Paris."
    answers = dict(LABEL.findall(prompt))
    order = sorted(answers, key=lambda label: ("Scripted answer" not in answers[label], label))
    verdicts = {
        label: "clear" if "Scripted" in text else "noise" for label, text in answers.items()
    }
    critique = " ".join(f"Response {label} is {verdicts[label]}." for label in sorted(answers))
    ranking = "\n".join(f"{n}. Response {label}" for n, label in enumerate(order, 1))
    return f"{critique}\n\nFINAL RANKING:\n{ranking}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.server.requests.append(body)
        if self.headers.get("authorization") != f"Bearer {self.server.token}":
            self._json(401, {"error": {"message": "invalid API key", "type": "auth"}})
            return
        if self.path != "/v1/chat/completions":
            self._json(404, {"error": {"message": "no such route"}})
            return
        fixed = self.server.replies.get(body["model"])
        text = (
            fixed
            if fixed is not None
            else reply_for(body["model"], body["messages"][-1]["content"])
        )
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        words = re.findall(r"\S+\s*", text)
        failure = self.server.failures.get(body["model"])
        for n, word in enumerate(words):
            if failure is not None and n == 2:  # as llama-server reports an error mid-stream
                self._event({"error": {"code": 500, "message": failure, "type": "server_error"}})
                return
            self._event(
                {"choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
            )
        self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        self._event(
            {"choices": [], "usage": {"prompt_tokens": 40, "completion_tokens": len(words)}}
        )
        self.wfile.write(b"data: [DONE]\n\n")

    def _event(self, payload: dict[str, Any]) -> None:
        self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
        self.wfile.flush()

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    token: str
    requests: list[dict[str, Any]]
    replies: dict[str, str]  # model → exactly this text, whatever was asked
    failures: dict[str, str]  # model → two words, then an error event with this message


@contextmanager
def cloud_seat(
    token: str = "sk-test-cloud-token",  # noqa: S107
    replies: dict[str, str] | None = None,
    failures: dict[str, str] | None = None,
) -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.token, server.requests, server.replies = token, [], dict(replies or {})
    server.failures = dict(failures or {})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def url_of(server: _Server) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}"
