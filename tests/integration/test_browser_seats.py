"""A browser tab joins the council over SSE and POST: here the tab is a scripted httpx client
against a real hub whose demo seats are real llama-server engines."""

from __future__ import annotations

import json
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from council.config import HubConfig, save_config
from council.datafolder import DataFolder
from council.defaults import demo_seats
from council.deliberation.browser_seat import GONE, MAX_PER_DEVICE
from council.deliberation.rounds import SHORTENED, TEMPLATE_MARGIN
from council.deliberation.seats import GUESSED_TEMPLATE
from council.engine.binary import EngineBinary
from council.engine.tokenizer import Tokenizer
from council.server.browser_seats import SECRET_HEADER
from council.server.gate import answer_post, counted
from council.settings import DeviceLimits
from tests.hubs import HubProcess, ask_round, free_port, new_conversation, sse_events
from tests.integration.test_lan import StartHub, council, lan, pair_device
from tests.integration.test_model_files import served_models
from tests.running import run

__all__ = ["lan"]  # the LAN hub fixture, shared with test_lan

Event = tuple[str, dict[str, Any]]


class ScriptedTab:
    """A tab that registered and holds its task stream open; what the hub tells it lands in
    `events`, and `answer` posts batches the way the page does."""

    def __init__(self, hub: HubProcess, registration: dict[str, Any] | None = None) -> None:
        self.hub = hub
        response = httpx.post(
            f"{hub.url}/api/browser-seats", json=registration or {"ctx_size": 2048}, timeout=10
        )
        assert response.status_code == 201, response.text
        self.registration: dict[str, Any] = response.json()
        self.name: str = self.registration["name"]
        self.events: queue.Queue[Event] = queue.Queue()
        self._socket: socket.socket | None = None
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()
        assert self.next_event()[0] == "ready"

    @property
    def url(self) -> str:
        return f"{self.hub.url}/api/browser-seats/{self.registration['id']}"

    @property
    def headers(self) -> dict[str, str]:
        return {SECRET_HEADER: self.registration["secret"]}

    def _listen(self) -> None:
        with httpx.stream("GET", f"{self.url}/tasks", headers=self.headers, timeout=60) as stream:
            assert stream.status_code == 200, stream.read()
            self._socket = stream.extensions["network_stream"].get_extra_info("socket")
            try:
                for event in sse_events(stream.iter_lines()):
                    self.events.put(event)
            except httpx.HTTPError:
                return  # close() cut the connection

    def next_event(self, timeout: float = 60) -> Event:
        return self.events.get(timeout=timeout)

    def answer(self, task: str, **update: Any) -> httpx.Response:
        return httpx.post(f"{self.url}/tasks/{task}", json=update, headers=self.headers, timeout=10)

    def answer_every_task(self, text: Callable[[dict[str, Any]], str]) -> threading.Thread:
        """Answer each task in two batches, the second saying done, until the stream ends."""

        def serve() -> None:
            while True:
                try:
                    kind, data = self.next_event(timeout=90)
                except queue.Empty:
                    return
                if kind == "task":
                    words = text(data).split(" ")
                    half = len(words) // 2
                    self.answer(data["task"], deltas=[" ".join(words[:half]) + " "])
                    self.answer(
                        data["task"],
                        deltas=[" ".join(words[half:])],
                        done=True,
                        finish_reason="stop",
                        usage={"completion_tokens": 7},
                    )

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        """Go away as a closed tab does: the connection ends, mid-stream."""
        if self._socket is not None:
            self._socket.shutdown(socket.SHUT_RDWR)


@contextmanager
def joined(hub: HubProcess, registration: dict[str, Any] | None = None) -> Iterator[ScriptedTab]:
    tab = ScriptedTab(hub, registration)
    try:
        yield tab
    finally:
        tab.close()


def seats(hub: HubProcess) -> dict[str, dict[str, Any]]:
    rows = httpx.get(f"{hub.url}/api/seats", timeout=10).json()["seats"]
    return {row["name"]: row for row in rows}


def outputs_of(hub: HubProcess, conversation: str, seat: str) -> list[dict[str, Any]]:
    stored = httpx.get(f"{hub.url}/api/conversations/{conversation}", timeout=10).json()
    return [output for output in stored["messages"][-1]["outputs"] if output["seat"] == seat]


def test_a_joined_tab_is_a_seat_that_answers_its_stage_prompts_and_its_answer_is_stored(
    hub: HubProcess,
) -> None:
    with joined(hub) as tab:
        listed = seats(hub)[tab.name]
        assert (listed["kind"], listed["label"], listed["ctx_size"]) == (
            "browser",
            "browser (this tab)",
            2048,
        )
        tab.answer_every_task(lambda task: "Paris is the capital of France, said the tab.")
        conversation = new_conversation(hub)
        events = ask_round(
            hub,
            conversation,
            "What is the capital of France?",
            seats=["demo-1", tab.name],
            max_tokens=24,
        )
        deltas = [
            data["delta"]
            for kind, data in events
            if kind == "seat_delta" and (data["seat"], data["stage"]) == (tab.name, "answer")
        ]
        assert deltas == ["Paris is the capital ", "of France, said the tab."]
        assert events[-1][1]["status"] == "done"
        answer, review = outputs_of(hub, conversation, tab.name)
        assert (answer["stage"], answer["status"]) == ("answer", "done")
        assert answer["content"] == "Paris is the capital of France, said the tab."
        assert answer["completion_tokens"] == 7
        assert (review["stage"], review["status"]) == ("review", "done")
    assert_leaves_the_council(hub, tab.name)


def assert_leaves_the_council(hub: HubProcess, name: str) -> None:
    for _ in range(100):
        if name not in seats(hub):
            return
        threading.Event().wait(0.05)
    raise AssertionError(f"{name} is still listed after its tab went away")


def test_a_tab_that_goes_away_mid_answer_fails_its_seat_and_the_round_still_completes(
    hub: HubProcess,
) -> None:
    tab = ScriptedTab(hub)

    def half_an_answer_then_gone() -> None:
        kind, task = tab.next_event()
        assert kind == "task"
        assert tab.answer(task["task"], deltas=["I was about to say"]).status_code == 204
        tab.close()

    threading.Thread(target=half_an_answer_then_gone, daemon=True).start()
    conversation = new_conversation(hub)
    events = ask_round(
        hub, conversation, "Say something", seats=["demo-1", tab.name], max_tokens=16
    )
    assert events[-1][1]["status"] == "done"
    [failed] = outputs_of(hub, conversation, tab.name)
    assert (failed["status"], failed["error"]) == ("failed", GONE)
    assert failed["content"] == "I was about to say"
    assert_leaves_the_council(hub, tab.name)


def test_stopping_the_round_tells_the_tab_to_cancel_and_refuses_its_late_answer(
    hub: HubProcess,
) -> None:
    with joined(hub) as tab:
        conversation = new_conversation(hub)
        url = f"{hub.url}/api/conversations/{conversation}/messages"
        body = {"question": "Take your time", "seats": [tab.name, "demo-1"], "max_tokens": 16}
        with httpx.stream("POST", url, json=body, timeout=60) as round_stream:
            message = round_stream.headers["x-council-message"]
            kind, task = tab.next_event()
            assert kind == "task"
            assert task["messages"][-1] == {"role": "user", "content": "Take your time"}
            assert (task["max_tokens"], task["temperature"]) == (16, 0.7)
            assert tab.answer(task["task"], deltas=["Thinking"]).status_code == 204
            stopped = httpx.post(f"{hub.url}/api/messages/{message}/stop", timeout=10)
            assert stopped.status_code == 202
            assert tab.next_event() == ("cancel", {"task": task["task"]})
            late = tab.answer(task["task"], deltas=[" more"], done=True)
            assert late.status_code == 404
            assert "stop answering it" in late.json()["error"]["message"]
            final = list(sse_events(round_stream.iter_lines()))[-1]
        assert final[1]["status"] == "cancelled"
        [cancelled] = outputs_of(hub, conversation, tab.name)
        assert (cancelled["status"], cancelled["content"]) == ("cancelled", "Thinking")
        assert tab.name in seats(hub)  # a stopped round leaves the tab in the council


def test_a_tab_that_does_not_answer_in_time_times_out_and_is_told_to_cancel(
    hub: HubProcess,
) -> None:
    with joined(hub) as tab:
        conversation = new_conversation(hub)
        events = ask_round(
            hub, conversation, "Quick!", seats=["demo-1", tab.name], max_tokens=16, stage_timeout=1
        )
        assert events[-1][1]["status"] == "done"
        kind, task = tab.next_event()
        assert kind == "task"
        assert tab.next_event() == ("cancel", {"task": task["task"]})
        [late] = outputs_of(hub, conversation, tab.name)
        assert (late["status"], late["error"]) == ("timeout", "no answer within 1 s")


def test_only_the_registration_secret_reads_and_answers_and_bodies_are_limited(
    hub: HubProcess,
) -> None:
    with joined(hub) as tab:
        for wrong in (
            {},
            {SECRET_HEADER: "guess"},
            {SECRET_HEADER: tab.registration["secret"][:-1]},
        ):
            refused = httpx.post(f"{tab.url}/tasks/t1", json={"deltas": ["x"]}, headers=wrong)
            assert refused.status_code == 403
            assert httpx.get(f"{tab.url}/tasks", headers=wrong).status_code == 403
        second = httpx.get(f"{tab.url}/tasks", headers=tab.headers)
        assert second.status_code == 409
        unknown = httpx.get(f"{hub.url}/api/browser-seats/000000/tasks", headers=tab.headers)
        assert unknown.status_code == 404
        huge = tab.answer("t1", deltas=["x" * (300 * 1024)])
        assert huge.status_code == 413
        assert tab.answer("t1", deltas=[3]).status_code == 400
        assert tab.answer("t9", deltas=["x"]).status_code == 404
        big_registration = httpx.post(f"{hub.url}/api/browser-seats", json={"pad": "x" * 8192})
        assert big_registration.status_code == 413
        small_context = httpx.post(f"{hub.url}/api/browser-seats", json={"ctx_size": 12})
        assert small_context.status_code == 400


def test_a_registration_is_no_seat_until_its_tab_opens_the_task_stream(hub: HubProcess) -> None:
    response = httpx.post(f"{hub.url}/api/browser-seats", json={}, timeout=10)
    assert response.status_code == 201
    name = response.json()["name"]
    assert name.startswith("browser-")
    assert name not in seats(hub)
    conversation = new_conversation(hub)
    refused = httpx.post(
        f"{hub.url}/api/conversations/{conversation}/messages",
        json={"question": "hi", "seats": [name]},
    )
    assert refused.status_code == 404


def test_a_tab_on_a_paired_phone_joins_over_the_lan_as_browser_phone(
    lan: tuple[HubProcess, str, ssl.SSLContext],
) -> None:
    hub, base, trust = lan
    phone = {"authorization": f"Bearer {pair_device(base, trust)}"}
    unpaired = httpx.post(f"{base}/api/browser-seats", json={}, verify=trust)
    assert unpaired.status_code == 401
    registered = httpx.post(f"{base}/api/browser-seats", json={}, headers=phone, verify=trust)
    assert registered.status_code == 201
    seat = registered.json()
    assert seat["label"] == "browser (phone)"
    tasks = f"{base}/api/browser-seats/{seat['id']}/tasks"
    secret = {SECRET_HEADER: seat["secret"]}
    assert httpx.get(tasks, headers=secret, verify=trust).status_code == 401  # no device token
    with httpx.stream("GET", tasks, headers={**phone, **secret}, verify=trust) as stream:
        events = sse_events(stream.iter_lines())  # kept: dropping it would close the stream
        assert next(events)[0] == "ready"
        assert seats(hub)[seat["name"]]["label"] == "browser (phone)"
    assert_leaves_the_council(hub, seat["name"])


def test_revoking_the_phone_ends_its_tabs_task_stream_and_its_seat_within_a_second(
    lan: tuple[HubProcess, str, ssl.SSLContext],
) -> None:
    hub, base, trust = lan
    phone = {"authorization": f"Bearer {pair_device(base, trust)}"}
    seat = httpx.post(f"{base}/api/browser-seats", json={}, headers=phone, verify=trust).json()
    tasks = f"{base}/api/browser-seats/{seat['id']}/tasks"
    headers = {**phone, SECRET_HEADER: seat["secret"]}
    with httpx.stream("GET", tasks, headers=headers, verify=trust, timeout=30) as stream:
        lines = stream.iter_lines()
        assert next(sse_events(lines))[0] == "ready"
        (device,) = json.loads(council("devices", "list", "--json").stdout)
        assert council("devices", "revoke", device["id"]).returncode == 0
        revoked = time.monotonic()
        list(lines)  # the hub ends the stream
        assert time.monotonic() - revoked < 1.0
    assert_leaves_the_council(hub, seat["name"])


def test_a_browser_seats_many_small_posts_have_their_own_budget() -> None:
    post = {"path": "/api/browser-seats/ab12cd/tasks/t1", "method": "POST"}
    assert not counted(post)
    assert answer_post(post)
    assert counted({"path": "/api/browser-seats/ab12cd", "method": "PATCH"})
    assert counted({"path": "/api/conversations/x/messages", "method": "POST"})


def test_a_phone_holds_four_tabs_at_most_and_its_answer_posts_are_counted(
    start_hub: StartHub, isolated_data: DataFolder
) -> None:
    limits = DeviceLimits(answer_posts_per_minute=3)
    save_config(isolated_data, HubConfig(seats=demo_seats(), devices=limits))
    port = free_port()
    hub = start_hub(None, "--lan", "--lan-host", "127.0.0.1", "--lan-port", str(port))
    hub.wait_ok()
    base = f"https://127.0.0.1:{port}"
    trust = ssl.create_default_context(cafile=str(isolated_data.tls / "ca.pem"))
    phone = {"authorization": f"Bearer {pair_device(base, trust)}"}
    registered = [
        httpx.post(f"{base}/api/browser-seats", json={}, headers=phone, verify=trust)
        for _ in range(MAX_PER_DEVICE + 1)
    ]
    assert [r.status_code for r in registered] == [201] * MAX_PER_DEVICE + [429]
    assert "this device has 4 browser seats" in registered[-1].json()["error"]["message"]
    assert httpx.post(f"{hub.url}/api/browser-seats", json={}).status_code == 201  # the laptop's
    seat = registered[0].json()
    task = f"{base}/api/browser-seats/{seat['id']}/tasks/t1"
    headers = {**phone, SECRET_HEADER: seat["secret"]}
    posts = [
        httpx.post(task, json={"deltas": ["x"]}, headers=headers, verify=trust).status_code
        for _ in range(4)
    ]
    assert posts == [404, 404, 404, 429]  # no such task; then over its budget of posts
    # The questions budget is untouched by them.
    assert httpx.get(f"{base}/v1/models", headers=phone, verify=trust).status_code == 200


def test_a_tab_names_the_model_it_runs_and_may_name_another_when_it_swaps(hub: HubProcess) -> None:
    urls = {model["path"]: model["url"] for model in served_models(hub)}
    first, second = sorted(urls)[:2]
    with joined(hub, {"ctx_size": 1024, "model": urls[first]}) as tab:
        assert seats(hub)[tab.name]["model"] == f"{first} (in the tab)"
        swapped = httpx.patch(tab.url, json={"model": urls[second]}, headers=tab.headers)
        assert swapped.status_code == 204
        assert seats(hub)[tab.name]["model"] == f"{second} (in the tab)"
        digest = urls[second].split("/")[2]
        for wrong in (
            "/models/0000000000000000/demo-1.gguf",
            f"/models/{digest}/other.gguf",
            f"/models/{digest}/../../config.toml",
            str(Path(hub.url) / "models"),
            7,
            None,
        ):
            refused = httpx.patch(tab.url, json={"model": wrong}, headers=tab.headers)
            assert refused.status_code == 400, wrong
            assert "'model'" in refused.json()["error"]["message"]
        assert httpx.patch(tab.url, json={"model": urls[first]}).status_code == 403
        assert seats(hub)[tab.name]["model"] == f"{second} (in the tab)"
    unknown = httpx.post(f"{hub.url}/api/browser-seats", json={"model": "/models/x/y.gguf"})
    assert unknown.status_code == 400


def test_the_answers_a_tab_is_shown_are_fitted_to_its_context_by_its_models_token_count(
    hub: HubProcess, isolated_data: DataFolder, engine_binary: EngineBinary
) -> None:
    models = {model["path"]: model for model in served_models(hub)}
    first = sorted(models)[0]
    prompts: list[str] = []

    def answer(task: dict[str, Any]) -> str:
        prompts.append(task["messages"][-1]["content"])
        return "The tab's answer."

    with joined(hub, {"ctx_size": 1024, "model": models[first]["url"]}) as tab:
        tab.answer_every_task(answer)
        events = ask_round(
            hub,
            new_conversation(hub),
            "Describe a council of machines.",
            seats=["demo-1", tab.name],
            chair="demo-1",
            max_tokens=200,
        )
        assert events[-1][1]["status"] == "done"
        notes = [data["text"] for kind, data in events if kind == "note"]
        assert f"{tab.name}: shortened the answers it was shown to fit its 1024-token context" in (
            notes
        )
    answer_prompt, review_prompt = prompts
    assert SHORTENED not in answer_prompt
    assert SHORTENED in review_prompt
    tokenizer = Tokenizer.beside(engine_binary, isolated_data.models / first)
    assert tokenizer is not None
    counted = run(tokenizer.count(review_prompt))
    assert counted is not None
    # Room left for its 200-token answer and the template the hub cannot measure for a tab.
    assert counted + 200 + GUESSED_TEMPLATE.of(1) + TEMPLATE_MARGIN <= 1024
    stored = outputs_of_round(hub, events)
    assert ("review", "done") in {(o["stage"], o["status"]) for o in stored[tab.name]}


def outputs_of_round(hub: HubProcess, events: list[Event]) -> dict[str, list[dict[str, Any]]]:
    conversation = events[-1][1]["conversation_id"]
    by_seat: dict[str, list[dict[str, Any]]] = {}
    stored = httpx.get(f"{hub.url}/api/conversations/{conversation}", timeout=10).json()
    for output in stored["messages"][-1]["outputs"]:
        by_seat.setdefault(output["seat"], []).append(output)
    return by_seat
