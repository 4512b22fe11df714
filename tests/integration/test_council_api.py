"""The council's HTTP API: bad input gets a JSON error and stores nothing; exports round-trip."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.hubs import HubProcess, ask_round, new_conversation

StartHub = Callable[..., HubProcess]


def messages_in(hub: HubProcess, conversation: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{hub.url}/api/conversations/{conversation}", timeout=10)
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"question": "hi", "seats": ["nobody"]}, 404, "unknown seat 'nobody'"),
        ({"question": "hi", "chair": "nobody"}, 404, "unknown chair 'nobody'"),
        ({"question": "hi", "mode": "debate"}, 400, "unknown mode 'debate'"),
        ({"question": "   "}, 400, "the question is empty"),
        ({"question": 42}, 400, "'question' must be a string"),
        ({"question": "hi", "max_tokens": 0}, 400, "'max_tokens' must be a whole number"),
        ({"question": "hi", "mode": "vote", "extractor": "magic"}, 400, "unknown extractor"),
        ({"question": "hi", "seats": ["demo-1", "demo-1"]}, 400, "once per round"),
        ({"question": "hi", "seats": "demo-1"}, 400, "'seats' must be a list or null"),
        ({"question": "hi", "seats": [["demo-1"]]}, 400, "'seats[0]' must be a string"),
        ({"question": "hi", "chair": {"name": "demo-1"}}, 400, "'chair' must be a string"),
        ({"question": "a lone \ud800 surrogate"}, 400, "not valid Unicode"),
        (
            {
                "question": "hi",
                "x": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
            },
            400,
            "nested over 32",
        ),
    ],
)
def test_a_bad_round_request_is_a_json_error_and_stores_nothing(
    hub: HubProcess, body: dict[str, Any], status: int, message: str
) -> None:
    conversation = new_conversation(hub)
    response = httpx.post(  # json.dumps escapes what httpx's own encoder cannot (a surrogate)
        f"{hub.url}/api/conversations/{conversation}/messages",
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == status
    assert message in response.json()["error"]["message"]
    assert messages_in(hub, conversation) == []


def test_a_body_that_is_not_json_or_too_large_is_refused(hub: HubProcess) -> None:
    conversation = new_conversation(hub)
    url = f"{hub.url}/api/conversations/{conversation}/messages"
    broken = httpx.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 400
    assert broken.json()["error"]["message"] == "the request body is not valid JSON"
    huge = httpx.post(url, json={"question": "x" * (2 * 1024 * 1024)})
    assert huge.status_code == 413
    assert messages_in(hub, conversation) == []


def test_an_unknown_conversation_is_a_404_everywhere(hub: HubProcess) -> None:
    for method, path in [
        ("GET", "/api/conversations/0000000000000000"),
        ("DELETE", "/api/conversations/0000000000000000"),
        ("GET", "/api/conversations/0000000000000000/export"),
        ("POST", "/api/conversations/0000000000000000/messages"),
        ("POST", "/api/messages/0000000000000000/stop"),
    ]:
        body = {"question": "hi"} if method == "POST" else None
        response = httpx.request(method, f"{hub.url}{path}", json=body)
        assert response.status_code == 404, path
        assert "error" in response.json()


def test_a_json_export_imports_back_as_the_same_conversation(hub: HubProcess) -> None:
    conversation = new_conversation(hub, "Rivers")
    ask_round(hub, conversation, "Longest river?", max_tokens=8)
    ask_round(
        hub, conversation, "And the shortest?", max_tokens=8, mode="vote", extractor="regex:(.)"
    )
    exported = httpx.get(f"{hub.url}/api/conversations/{conversation}/export?format=json").json()
    assert exported["format"] == "council-conversation"

    imported = httpx.post(f"{hub.url}/api/conversations/import", json=exported)
    assert imported.status_code == 201
    copy = imported.json()
    assert copy["id"] != conversation

    def comparable(document: dict[str, Any]) -> list[Any]:
        return [{k: v for k, v in message.items() if k != "id"} for message in document["messages"]]

    assert comparable(copy) == comparable(exported)
    assert copy["title"] == "Rivers"


def test_a_broken_import_stores_nothing(hub: HubProcess) -> None:
    before = httpx.get(f"{hub.url}/api/conversations").json()["conversations"]
    document = {
        "format": "council-conversation",
        "version": 1,
        "title": "x",
        "created_at": "now",
        "updated_at": "now",
        "messages": [{"position": 1, "question": "q"}],
    }
    response = httpx.post(f"{hub.url}/api/conversations/import", json=document)
    assert response.status_code == 400
    assert httpx.get(f"{hub.url}/api/conversations").json()["conversations"] == before


def test_markdown_export_reads_as_the_round_went(hub: HubProcess) -> None:
    conversation = new_conversation(hub)
    ask_round(hub, conversation, "What is a council?", max_tokens=8)
    response = httpx.get(f"{hub.url}/api/conversations/{conversation}/export?format=md")
    assert response.headers["content-type"].startswith("text/markdown")
    assert "attachment" in response.headers["content-disposition"]
    text = response.text
    assert text.startswith("# What is a council?")
    for heading in ("### Answers", "### Reviews", "### Aggregate ranking", "### Final answer"):
        assert heading in text
    # Noise holds no ranking: each review's comes from the follow-up under the grammar.
    assert text.count("Parsed ranking (asked for under a grammar): 1. demo-") == 3


def test_conversations_can_be_listed_searched_renamed_and_deleted(hub: HubProcess) -> None:
    first = new_conversation(hub)
    ask_round(hub, first, "Tell me about volcanoes", max_tokens=4)
    second = new_conversation(hub, "Oceans")
    listing = httpx.get(f"{hub.url}/api/conversations").json()["conversations"]
    assert [c["id"] for c in listing] == [second, first]
    found = httpx.get(f"{hub.url}/api/conversations", params={"search": "volcano"}).json()
    assert [c["id"] for c in found["conversations"]] == [first]
    renamed = httpx.patch(f"{hub.url}/api/conversations/{first}", json={"title": "Fire"})
    assert renamed.json()["title"] == "Fire"
    assert httpx.delete(f"{hub.url}/api/conversations/{first}").status_code == 204
    assert httpx.get(f"{hub.url}/api/conversations/{first}").status_code == 404


def test_seats_and_defaults_can_be_read_and_the_chair_set(hub: HubProcess) -> None:
    seats = httpx.get(f"{hub.url}/api/seats").json()["seats"]
    assert [(s["name"], s["kind"], s["state"]) for s in seats] == [
        ("demo-1", "local", "healthy"),
        ("demo-2", "local", "healthy"),
        ("demo-3", "local", "healthy"),
    ]
    one = httpx.get(f"{hub.url}/api/seats/demo-2").json()
    assert one["ctx_size"] == 2048
    assert [event["kind"] for event in one["events"]][:2] == ["spawned", "healthy"]
    assert httpx.get(f"{hub.url}/api/seats/nobody").status_code == 404

    changed = httpx.put(f"{hub.url}/api/council/defaults", json={"chair": "demo-3"})
    assert changed.status_code == 200
    assert changed.json()["chair"] == "demo-3"
    conversation = new_conversation(hub)
    events = ask_round(hub, conversation, "Who chairs?", max_tokens=4)
    assert events[-1][1]["result"]["chair"] == "demo-3"
    assert 'chair = "demo-3"' in (hub.data / "config.toml").read_text()
    bad = httpx.put(f"{hub.url}/api/council/defaults", json={"chair": "nobody"})
    assert bad.status_code == 404


def test_a_question_without_a_conversation_gets_one_only_when_it_is_accepted(
    hub: HubProcess,
) -> None:
    for body in ({"question": "hi", "chair": "nobody"}, {"question": "  "}, {"question": 3}):
        refused = httpx.post(f"{hub.url}/api/messages", json=body)
        assert 400 <= refused.status_code < 500, body
    assert httpx.get(f"{hub.url}/api/conversations").json()["conversations"] == []
    with httpx.stream(
        "POST", f"{hub.url}/api/messages", json={"question": "Name a river.", "max_tokens": 4}
    ) as response:
        assert response.status_code == 200
        conversation = response.headers["x-council-conversation"]
        events = list(response.iter_lines())
    assert any(line.startswith("event: done") for line in events)
    (listed,) = httpx.get(f"{hub.url}/api/conversations").json()["conversations"]
    assert (listed["id"], listed["title"]) == (conversation, "Name a river.")


def test_the_defaults_say_their_ranges_and_what_get_answers_can_be_put_back(
    hub: HubProcess,
) -> None:
    defaults = httpx.get(f"{hub.url}/api/council/defaults").json()
    assert defaults["ranges"]["max_tokens"] == {"min": 1, "max": 32768}
    assert defaults["ranges"]["temperature"] == {"min": 0.0, "max": 2.0}
    again = httpx.put(f"{hub.url}/api/council/defaults", json={**defaults, "max_tokens": 64})
    assert again.status_code == 200, again.text
    assert again.json()["max_tokens"] == 64
    assert again.json()["ranges"] == defaults["ranges"]
    over = httpx.put(f"{hub.url}/api/council/defaults", json={"max_tokens": 32769})
    assert over.status_code == 400
    assert "from 1 to 32768" in over.json()["error"]["message"]


def test_the_openapi_schema_lists_the_api(hub: HubProcess) -> None:
    schema = httpx.get(f"{hub.url}/api/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    assert "post" in schema["paths"]["/api/conversations/{id}/messages"]
    assert schema["paths"]["/api/conversations/{id}/messages"]["post"]["summary"].startswith(
        "Run a council round"
    )


def test_a_model_on_the_stick_can_be_seated_and_unseated_while_the_hub_runs(
    hub: HubProcess,
) -> None:
    from council.models.demo import write_demo_model

    write_demo_model(hub.data / "models" / "extra.gguf", seed=42)
    models = httpx.get(f"{hub.url}/api/models").json()["models"]
    assert {m["path"]: m["seats"] for m in models}["extra.gguf"] == []

    added = httpx.post(f"{hub.url}/api/seats", json={"kind": "local", "model": "extra.gguf"})
    assert added.status_code == 201, added.text
    assert added.json()["name"] == "extra"
    health = hub.wait_for(lambda h: len(h["seats"]) == 4 and h["status"] == "ok")
    assert health["seats"][-1]["name"] == "extra"
    assert 'model = "extra.gguf"' in (hub.data / "config.toml").read_text()
    conversation = new_conversation(hub)
    events = ask_round(hub, conversation, "hi", max_tokens=4, seats=["extra", "demo-1"])
    assert events[-1][1]["status"] == "done"
    engine = next(e for e in hub.engines() if "extra" in " ".join(e.cmdline()))

    assert httpx.delete(f"{hub.url}/api/seats/extra").status_code == 204
    engine.wait(timeout=10)
    assert "extra.gguf" not in (hub.data / "config.toml").read_text()
    assert [s["name"] for s in hub.health()["seats"]] == ["demo-1", "demo-2", "demo-3"]

    again = httpx.post(f"{hub.url}/api/seats", json={"kind": "local", "model": "nope.gguf"})
    assert again.status_code == 404
    taken = httpx.post(
        f"{hub.url}/api/seats", json={"kind": "local", "model": "extra.gguf", "name": "demo-1"}
    )
    assert taken.status_code == 400
