"""The official `openai` package, pointed at the hub's /v1, talks to seats and to the council."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import openai
import pytest

from tests.hubs import HubProcess

StartHub = Callable[..., HubProcess]


@pytest.fixture
def sdk(hub: HubProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{hub.url}/v1", api_key="unused-on-localhost", max_retries=0
    ) as client:
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
    assert [(m["question"], m["mode"]) for m in messages] == [("First?", "history"),
                                                              ("Second?", "moa")]  # fmt: skip


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
