"""Remote seats (a cloud seat, played by a loopback fake) join real local seats in a council."""

from __future__ import annotations

import stat
from collections.abc import Callable
from typing import Any

import httpx

from council.datafolder import DataFolder
from council.remotes import RemoteSeatConfig, save_remotes
from tests.fakes import cloud_seat, url_of
from tests.hubs import HubProcess, ask_round, new_conversation

StartHub = Callable[..., HubProcess]


def add_remote(hub: HubProcess, **body: Any) -> httpx.Response:
    """The fakes listen on loopback, which a remote seat reaches only when allowed to."""
    return httpx.post(f"{hub.url}/api/seats", json={"allow_private": True, **body}, timeout=10)


def test_remote_seats_review_and_rank_alongside_local_ones(hub: HubProcess) -> None:
    with cloud_seat() as cloud:
        for name in ("cloud-a", "cloud-b"):
            added = add_remote(hub, name=name, url=url_of(cloud), model=name, token=cloud.token)
            assert added.status_code == 201, added.text
            assert added.json()["has_token"] is True
            assert "token" not in added.json()
        conversation = new_conversation(hub)
        events = ask_round(
            hub,
            conversation,
            "What is the capital of France?",
            max_tokens=16,
            seats=["demo-1", "cloud-a", "cloud-b"],
            chair="cloud-a",
        )

    reviews = {data["seat"]: data for kind, data in events if kind == "review_done"}
    assert reviews["cloud-a"]["ranking"] == ["cloud-b", "demo-1"]
    assert reviews["cloud-b"]["ranking"] == ["cloud-a", "demo-1"]
    # Remote seats are read by the text parser alone; the local engine's noise is asked for
    # its ranking under a grammar, which orders the two clouds somehow.
    assert {reviews[s]["ranking_by"] for s in ("cloud-a", "cloud-b")} == {"text"}
    assert reviews["demo-1"]["ranking_by"] == "grammar"
    assert sorted(reviews["demo-1"]["ranking"]) == ["cloud-a", "cloud-b"]
    (ranking,) = [data for kind, data in events if kind == "ranking"]
    standings = {s["seat"]: s for s in ranking["standings"]}
    assert ranking["valid"] == 3
    assert sorted(standings[s]["mean_rank"] for s in ("cloud-a", "cloud-b")) == [1.0, 1.5]
    assert standings["demo-1"]["mean_rank"] == 2.0
    assert standings["demo-1"]["votes"] == 2
    assert [s["seat"] for s in ranking["standings"]][-1] == "demo-1"
    done = events[-1][1]
    assert done["status"] == "done"
    assert done["answer"].startswith("Scripted answer from cloud-a")


def test_remote_tokens_stay_in_a_private_file_and_out_of_the_api(hub: HubProcess) -> None:
    with cloud_seat() as cloud:
        add_remote(hub, name="cloud", url=url_of(cloud), model="gpt", token=cloud.token)
    listing = httpx.get(f"{hub.url}/api/seats").text
    assert cloud.token not in listing
    remotes = hub.data / "remotes.toml"
    assert cloud.token in remotes.read_text()
    assert stat.S_IMODE(remotes.stat().st_mode) == 0o600
    assert cloud.token not in (hub.data / "config.toml").read_text()


def test_health_and_metrics_list_remote_seats_too_but_never_their_address(hub: HubProcess) -> None:
    with cloud_seat() as cloud:
        add_remote(hub, name="cloud", url=url_of(cloud), model="gpt", token=cloud.token)
    health = httpx.get(f"{hub.url}/api/health").json()
    rows = {seat["name"]: seat for seat in health["seats"]}
    assert (rows["cloud"]["kind"], rows["cloud"]["state"]) == ("remote", "ready")
    assert (rows["demo-1"]["kind"], rows["demo-1"]["state"]) == ("local", "healthy")
    assert url_of(cloud) not in httpx.get(f"{hub.url}/api/health").text
    metrics = httpx.get(f"{hub.url}/metrics").text
    assert 'council_seat_up{kind="remote",seat="cloud",state="ready"} 1.0' in metrics


def test_a_remote_seat_with_a_wrong_token_fails_with_the_servers_reason(hub: HubProcess) -> None:
    with cloud_seat() as cloud:
        add_remote(hub, name="cloud", url=url_of(cloud), model="m", token="wrong")
        conversation = new_conversation(hub)
        events = ask_round(hub, conversation, "hi", max_tokens=4, seats=["demo-1", "cloud"])
    (error,) = [data for kind, data in events if kind == "seat_error"]
    assert (error["seat"], error["error"]) == ("cloud", "HTTP 401: invalid API key")
    assert events[-1][1]["status"] == "done"


def test_an_error_the_remote_sends_mid_answer_fails_that_output_with_its_words(
    hub: HubProcess,
) -> None:
    with cloud_seat(failures={"m": "Context size has been exceeded."}) as cloud:
        add_remote(hub, name="cloud", url=url_of(cloud), model="m", token=cloud.token)
        conversation = new_conversation(hub)
        events = ask_round(hub, conversation, "hi", max_tokens=4, seats=["demo-1", "cloud"])
    (error,) = [data for kind, data in events if kind == "seat_error"]
    assert error["seat"] == "cloud"
    assert error["error"] == "cloud failed mid-answer: Context size has been exceeded."
    stored = httpx.get(f"{hub.url}/api/conversations/{conversation}").json()
    outputs = stored["messages"][0]["outputs"]
    (answer,) = [o for o in outputs if o["seat"] == "cloud" and o["stage"] == "answer"]
    assert answer["status"] == "failed"
    assert "Context size has been exceeded" in answer["error"]


def test_remote_seats_can_be_changed_disabled_and_removed(hub: HubProcess) -> None:
    assert (
        add_remote(hub, name="cloud", url="https://api.example.invalid", model="m").status_code
        == 201
    )
    assert add_remote(hub, name="cloud", url="https://x.invalid", model="m").status_code == 400
    assert add_remote(hub, name="demo-1", url="https://x.invalid", model="m").status_code == 400
    bad_url = add_remote(hub, name="leaky", url="https://user:secret@x.invalid", model="m")
    assert bad_url.status_code == 400
    assert "not in the URL" in bad_url.json()["error"]["message"]

    changed = httpx.patch(f"{hub.url}/api/seats/cloud", json={"enabled": False, "ctx_size": 8192})
    assert changed.json()["enabled"] is False
    assert httpx.get(f"{hub.url}/api/seats/cloud").json()["state"] == "disabled"
    conversation = new_conversation(hub)
    events = ask_round(hub, conversation, "hi", max_tokens=4, seats=["demo-1", "cloud"])
    errors = [data for kind, data in events if kind == "seat_error"]
    assert errors[0]["error"] == "cloud is disabled"

    assert httpx.patch(f"{hub.url}/api/seats/demo-1", json={"model": "x"}).status_code == 400
    assert httpx.delete(f"{hub.url}/api/seats/cloud").status_code == 204
    assert httpx.get(f"{hub.url}/api/seats/cloud").status_code == 404
    assert "cloud" not in (hub.data / "remotes.toml").read_text()


def test_a_remote_seat_reaches_private_addresses_only_when_allowed_and_never_the_hub(
    hub: HubProcess,
) -> None:
    with cloud_seat() as cloud:
        body = {"name": "probe", "url": url_of(cloud), "model": "m"}
        private = httpx.post(f"{hub.url}/api/seats", json=body)
        assert private.status_code == 400
        assert "allow_private = true" in private.json()["error"]["message"]
        itself = add_remote(hub, name="loop", url=hub.url, model="council")
        assert itself.status_code == 400
        assert "this hub's own listener" in itself.json()["error"]["message"]
        assert add_remote(hub, name="probe", url=url_of(cloud), model="m").status_code == 201
        moved = httpx.patch(f"{hub.url}/api/seats/probe", json={"url": hub.url})
        assert moved.status_code == 400
    names = [seat["name"] for seat in httpx.get(f"{hub.url}/api/seats").json()["seats"]]
    assert names == ["demo-1", "demo-2", "demo-3", "probe"]


def test_a_seat_whose_address_turns_private_is_refused_when_it_connects(
    start_hub: StartHub, isolated_data: DataFolder
) -> None:
    with cloud_seat() as cloud:
        # Written by hand, so the check when a seat is added never ran: the connection's does.
        save_remotes(isolated_data, [RemoteSeatConfig("cloud", url_of(cloud), "m", cloud.token)])
        hub = start_hub()
        hub.wait_ok()
        conversation = new_conversation(hub)
        events = ask_round(hub, conversation, "hi", max_tokens=4, seats=["demo-1", "cloud"])
        asked = list(cloud.requests)
    (error,) = [data for kind, data in events if kind == "seat_error"]
    assert error["seat"] == "cloud"
    assert error["error"].startswith("cloud was not called: 127.0.0.1 is a loopback")
    assert asked == []
    assert events[-1][1]["status"] == "done"
