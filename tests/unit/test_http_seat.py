"""A seat over HTTP reads the whole stream: text, usage, and an error the server sends after
it has started answering."""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from council.deliberation.seats import Completion, HttpSeat, Sampling, SeatFailure
from council.types import Endpoint
from tests.fakes import cloud_seat, url_of
from tests.running import run

TOKEN = "sk-test-cloud-token"


def ask(url: str, model: str) -> tuple[Completion | SeatFailure, list[str]]:
    deltas: list[str] = []

    async def main() -> Completion | SeatFailure:
        async with httpx.AsyncClient() as client:
            seat = HttpSeat("cloud", "remote", lambda: Endpoint(url, TOKEN), client, model=model)
            messages = [{"role": "user", "content": "What is the capital of France?"}]
            try:
                return await seat.complete(messages, Sampling(max_tokens=16), deltas.append)
            except SeatFailure as exc:
                return exc

    return run(main()), deltas


def test_a_whole_answer_comes_back_with_its_usage() -> None:
    with cloud_seat() as cloud:
        result, deltas = ask(url_of(cloud), "fine")
    assert isinstance(result, Completion)
    assert result.text == "".join(deltas)
    assert result.text.startswith("Scripted answer from fine")
    assert result.finish_reason == "stop"
    assert result.usage.completion_tokens == len(deltas)


def test_an_error_event_mid_stream_fails_the_answer_with_the_servers_words() -> None:
    reason = "Context size has been exceeded."
    with cloud_seat(failures={"broken": reason}) as cloud:
        result, deltas = ask(url_of(cloud), "broken")
    assert isinstance(result, SeatFailure)
    assert str(result) == f"cloud failed mid-answer: {reason}"
    assert len(deltas) == 2  # what came before the error was streamed, then the answer failed


def test_an_error_status_fails_the_answer_with_the_servers_words() -> None:
    with cloud_seat(token="another") as cloud:
        result, _ = ask(url_of(cloud), "fine")
    assert isinstance(result, SeatFailure)
    assert str(result) == "HTTP 401: invalid API key"


class _Internal(BaseHTTPRequestHandler):
    """A server that is no OpenAI endpoint: what it says must not reach whoever asked."""

    def do_POST(self) -> None:
        body = b"<html>router admin: password hint is 'tr0ub4dor'</html>"
        self.send_response(403)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_remote_that_answers_no_openai_error_is_never_quoted() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Internal)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result, _ = ask(f"http://127.0.0.1:{server.server_address[1]}", "fine")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert isinstance(result, SeatFailure)
    assert str(result) == "the remote seat failed (HTTP 403)"


class _Endless(BaseHTTPRequestHandler):
    """Streams deltas until the client's socket is gone, then says so."""

    protocol_version = "HTTP/1.1"
    gone = threading.Event()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        chunk = b'data: {"choices": [{"delta": {"content": "word "}}]}\n\n'
        try:
            while True:
                self.wfile.write(chunk)
                self.wfile.flush()
        except OSError:
            type(self).gone.set()

    def log_message(self, *_: object) -> None:
        pass


def test_an_answer_cancelled_again_and_again_still_closes_its_connection() -> None:
    """The way a response's anyio scope cancels: once, then at every turn of the loop. However
    often it lands, the connection closes, since that is how an engine learns to stop."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endless)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"

    async def main() -> bool:
        started = asyncio.Event()
        async with httpx.AsyncClient() as client:
            seat = HttpSeat("local", "local", lambda: Endpoint(url, "key"), client)
            messages = [{"role": "user", "content": "Go on forever."}]
            answer = asyncio.create_task(
                seat.complete(messages, Sampling(max_tokens=8), lambda _: started.set())
            )
            await started.wait()
            while not answer.done():
                answer.cancel()
                await asyncio.sleep(0)
            await asyncio.gather(answer, return_exceptions=True)
            # Asked while the client (and its pool) is still open: closing it closes all.
            return await asyncio.to_thread(_Endless.gone.wait, 5)

    try:
        for _ in range(20):  # each try lands the cancellations at a different point
            _Endless.gone.clear()
            assert run(main())
    finally:
        server.shutdown()
        server.server_close()


def test_a_sample_number_offsets_the_seed_a_seat_sends_its_own_included() -> None:
    from council.deliberation.seats import Sampling, Style

    assert Style(seed=5).applied(Sampling(seed=1, sample=3)).seed == 8  # the seat's own, + 3
    assert Style().applied(Sampling(seed=10, sample=2)).seed == 12  # the round's, + 2
    assert Style().applied(Sampling(seed=None, sample=2)).seed is None  # random stays random
    assert Style(seed=2**32 - 1).applied(Sampling(sample=1)).seed == 0  # 32-bit, wrapped
    assert Sampling(seed=4, sample=1).seed_for() == 5  # a browser seat's
