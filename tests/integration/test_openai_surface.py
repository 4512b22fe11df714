"""The official `openai` package, pointed at the hub's /v1, talks to seats and to the council."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator

import httpx
import openai
import pytest

from council.datafolder import DataFolder
from tests.hubs import HubProcess, engine_endpoint
from tests.integration.test_council import long_context_seats, slot_busy
from tests.running import run

StartHub = Callable[..., HubProcess]


@pytest.fixture
def sdk(hub: HubProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{hub.url}/v1", api_key=hub.owner_token, max_retries=0) as client:
        yield client


def test_the_models_are_the_council_and_every_seat(hub: HubProcess, sdk: openai.OpenAI) -> None:
    names = [model.id for model in sdk.models.list()]
    assert names[0] == "council"
    assert {"council:synthesize", "council:moa", "council:vote"} <= set(names)
    assert names[-3:] == ["demo-1", "demo-2", "demo-3"]


def test_the_council_streams_the_chairs_answer_to_the_sdk(
    hub: HubProcess, sdk: openai.OpenAI
) -> None:
    stream = sdk.chat.completions.create(
        model="council",
        messages=[{"role": "user", "content": "What is the council?"}],
        max_tokens=12,
        stream=True,
    )
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text
    assert chunks[-1].choices[0].finish_reason == "stop"
    conversations = httpx.get(f"{hub.url}/api/conversations").json()["conversations"]
    (stored,) = conversations
    assert stored["title"] == "What is the council?"
    message = httpx.get(f"{hub.url}/api/conversations/{stored['id']}").json()["messages"][0]
    assert message["answer"] == text


def test_the_council_answers_without_streaming_and_keeps_the_history(
    hub: HubProcess, sdk: openai.OpenAI
) -> None:
    completion = sdk.chat.completions.create(
        model="council:moa",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "First?"},
            {"role": "assistant", "content": "An earlier answer."},
            {"role": "user", "content": "Second?"},
        ],
        max_tokens=8,
    )
    assert completion.choices[0].message.content
    (stored,) = httpx.get(f"{hub.url}/api/conversations").json()["conversations"]
    messages = httpx.get(f"{hub.url}/api/conversations/{stored['id']}").json()["messages"]
    assert [(m["question"], m["mode"]) for m in messages] == [
        ("First?", "history"),
        ("Second?", "moa"),
    ]


def test_a_seat_is_a_model_too(hub: HubProcess, sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(
        model="demo-2", messages=[{"role": "user", "content": "hi"}], max_tokens=5
    )
    assert completion.model == "demo-2"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 5


def test_an_unknown_model_is_an_openai_shaped_404(hub: HubProcess, sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as error:
        sdk.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])
    assert "gpt-9" in str(error.value)
    response = httpx.post(f"{hub.url}/v1/chat/completions", json={"model": "council"})
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_a_client_that_leaves_a_seat_stream_frees_the_engine_slot(
    start_hub: StartHub, isolated_data: DataFolder
) -> None:
    long_context_seats(isolated_data)
    hub = start_hub()
    hub.wait_ok()
    engine = next(e for e in hub.engines() if "slow" in e.cmdline())
    body = {
        "model": "slow",
        "messages": [{"role": "user", "content": "Go on forever."}],
        "max_tokens": 30000,
        "ignore_eos": True,
        "stream": True,
    }
    with httpx.stream("POST", f"{hub.url}/v1/chat/completions", json=body, timeout=60) as reply:
        events = (line for line in reply.iter_lines() if line.startswith("data: "))
        for _ in range(100):
            next(events)
        assert slot_busy(engine)
    left = time.monotonic()
    while slot_busy(engine) and time.monotonic() - left < 10:
        time.sleep(0.02)
    assert not slot_busy(engine)


def test_the_seats_answer_comes_through_unchanged_streamed_or_not(hub: HubProcess) -> None:
    (engine,) = [e for e in hub.engines() if "demo-2" in " ".join(e.cmdline())]
    url, key = engine_endpoint(engine)
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 6,
        "seed": 7,
        "temperature": 0,
    }
    for stream in (False, True):
        request = {**body, "stream": stream}
        direct = httpx.post(
            f"{url}/v1/chat/completions",
            json={**request, "model": "demo-2"},
            headers={"authorization": f"Bearer {key}"},
        )
        proxied = httpx.post(f"{hub.url}/v1/chat/completions", json={**request, "model": "demo-2"})
        assert proxied.status_code == direct.status_code == 200
        assert proxied.headers["content-type"] == direct.headers["content-type"]
        assert _content(proxied.text, stream) == _content(direct.text, stream)


def _content(text: str, stream: bool) -> str:
    if not stream:
        return str(json.loads(text)["choices"][0]["message"]["content"])
    chunks = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def test_prompts_that_each_fit_still_fit_when_they_arrive_together(hub: HubProcess) -> None:
    """Three 1.3k-token prompts to one 2048-token seat at once: each gets a slot with the whole
    context, or waits for one; a shared cache overflowed and failed all three."""
    prompt = "The council meets at dawn. " * 34  # ~1.3k tokens in the demo's byte vocabulary
    body = {"model": "demo-1", "messages": [{"role": "user", "content": prompt}], "max_tokens": 16}

    async def together() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=hub.url, timeout=120) as client:
            asks = [client.post("/v1/chat/completions", json=body) for _ in range(3)]
            return list(await asyncio.gather(*asks))

    responses = run(together())
    assert [response.status_code for response in responses] == [200, 200, 200], [
        response.text[:200] for response in responses
    ]
    for response in responses:
        assert 1000 < response.json()["usage"]["prompt_tokens"] < 1800
