"""A paired phone is a guest: the README's table of who may do what, checked route by route
against a running hub's two listeners, and what "its own conversations" means."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import httpx

from council.datafolder import DataFolder
from council.server.roles import OWNER_ONLY
from tests.hubs import HubProcess
from tests.integration.test_lan import bearer, lan, pair_device
from tests.owner import as_stranger as as_another_account

__all__ = ["lan"]  # the fixture, used by name

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(
    r"^\| `(?P<method>[A-Z]+) (?P<path>/[^`]*)` "
    r"\| (?P<owner>[^|]+) \| (?P<local>[^|]+) \| (?P<device>[^|]+) \| (?P<stranger>[^|]+) \|$"
)
WHO = ("owner", "local", "device", "stranger")
PLACEHOLDERS = {
    "{id}": "00000000deadbeef",
    "{name}": "nobody",
    "{digest}": "0" * 16,
    "{task}": "1",
    "{comparison}": "123456",
}
Lan = tuple[HubProcess, str, ssl.SSLContext]


def readme_table() -> dict[tuple[str, str], dict[str, str]]:
    rows = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        if match := ROW.match(line):
            who = {key: match[key].strip() for key in WHO}
            rows[(match["method"], match["path"])] = who
    return rows


def send(client: httpx.Client, method: str, path: str) -> httpx.Response:
    for placeholder, value in PLACEHOLDERS.items():
        path = path.replace(placeholder, value)
    body = {} if method in {"POST", "PUT", "PATCH"} else None
    with client.stream(method, path, json=body) as response:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            response.read()  # an event stream never ends: its status and headers are enough
    return response


def refused_to_guests(response: httpx.Response) -> bool:
    return response.status_code == 403 and OWNER_ONLY in response.text


def refused_to_others(response: httpx.Response) -> bool:
    """What the localhost listener tells a caller without the owner's token or session: 401,
    or (a page a browser opens) a redirect to the login page."""
    redirected = response.status_code == 303 and response.headers["location"] == "/login"
    return response.status_code == 401 or redirected


def not_a_route(response: httpx.Response) -> bool:
    """Routing found nothing (Starlette's own 404), as opposed to a handler's "no such id"."""
    return response.status_code == 404 and response.json()["error"]["message"] == "Not Found"


def listed_routes(client: httpx.Client) -> set[tuple[str, str]]:
    paths = client.get("/api/openapi.json").json()["paths"]
    return {(method.upper(), path) for path, methods in paths.items() for method in methods}


def test_every_route_of_both_listeners_is_in_the_readmes_table(lan: Lan) -> None:
    hub, base, trust = lan
    token = pair_device(base, trust)
    table = readme_table()
    with httpx.Client(base_url=base, verify=trust, headers=bearer(token)) as phone:
        on_the_lan = listed_routes(phone)
    with httpx.Client(base_url=hub.url) as laptop:
        at_the_laptop = listed_routes(laptop)
    assert on_the_lan | at_the_laptop == set(table)


def test_each_route_answers_the_owner_a_device_and_a_stranger_as_the_table_says(
    lan: Lan, isolated_data: DataFolder
) -> None:
    hub, base, trust = lan
    token = pair_device(base, trust)
    defaults_before = httpx.get(f"{hub.url}/api/council/defaults").json()
    seats_before = httpx.get(f"{hub.url}/api/seats").json()
    wrong: list[str] = []
    with (
        httpx.Client(base_url=hub.url, timeout=30) as owner,
        httpx.Client(base_url=base, verify=trust, headers=bearer(token), timeout=30) as phone,
        httpx.Client(base_url=base, verify=trust, timeout=30) as stranger,
    ):
        for (method, path), who in readme_table().items():
            as_phone = send(phone, method, path)
            if who["device"] in {"yes", "own"}:
                if as_phone.status_code == 401 or refused_to_guests(as_phone):
                    wrong.append(f"device {method} {path}: {as_phone.status_code}")
            elif who["device"] == "—":
                if not not_a_route(as_phone):
                    wrong.append(f"device {method} {path} found: {as_phone.status_code}")
            elif not refused_to_guests(as_phone):
                wrong.append(f"device {method} {path} not refused: {as_phone.status_code}")
            as_stranger = send(stranger, method, path)
            if (as_stranger.status_code == 401) != (who["stranger"] in {"no", "—"}):
                wrong.append(f"stranger {method} {path}: {as_stranger.status_code}")
            with as_another_account():
                as_local = send(owner, method, path)
            if refused_to_others(as_local) != (who["local"] in {"no", "—"}):
                wrong.append(f"another account {method} {path}: {as_local.status_code}")
            as_owner = send(owner, method, path)
            if not_a_route(as_owner) != (who["owner"] == "—") or as_owner.status_code in {401, 403}:
                wrong.append(f"owner {method} {path}: {as_owner.status_code}")
    assert wrong == []
    # What the phone was refused changed nothing: the same defaults and seats, no remotes file.
    assert httpx.get(f"{hub.url}/api/council/defaults").json() == defaults_before
    assert httpx.get(f"{hub.url}/api/seats").json()["seats"] == seats_before["seats"]
    assert not (isolated_data.root / "remotes.toml").exists()


def test_a_device_cannot_add_a_seat_or_point_the_council_elsewhere(
    lan: Lan, isolated_data: DataFolder
) -> None:
    hub, base, trust = lan
    token = pair_device(base, trust)
    config_before = (isolated_data.root / "config.toml").read_bytes()
    remote = {"name": "evil", "url": "https://attacker.test", "model": "m"}
    with httpx.Client(base_url=base, verify=trust, headers=bearer(token)) as phone:
        for method, path, body in (
            ("POST", "/api/seats", remote),
            ("PATCH", "/api/seats/demo-1", {"enabled": False}),
            ("DELETE", "/api/seats/demo-1", None),
            ("PUT", "/api/council/defaults", {"seats": ["demo-1"], "chair": "demo-1"}),
        ):
            refused = phone.request(method, path, json=body)
            assert refused.status_code == 403, (method, path)
            assert refused.json() == {"error": {"status": 403, "message": OWNER_ONLY}}
    seats = [seat["name"] for seat in httpx.get(f"{hub.url}/api/seats").json()["seats"]]
    assert seats == ["demo-1", "demo-2", "demo-3"]
    assert (isolated_data.root / "config.toml").read_bytes() == config_before
    assert not (isolated_data.root / "remotes.toml").exists()


def test_a_device_sees_only_the_conversations_it_started(lan: Lan) -> None:
    hub, base, trust = lan
    phone_headers = bearer(pair_device(base, trust, "phone"))
    other_headers = bearer(pair_device(base, trust, "tablet"))
    owners = httpx.post(f"{hub.url}/api/conversations", json={"title": "owner's plans"}).json()
    with (
        httpx.Client(base_url=base, verify=trust, headers=phone_headers, timeout=60) as phone,
        httpx.Client(base_url=base, verify=trust, headers=other_headers) as tablet,
    ):
        mine = phone.post("/api/conversations", json={"title": "phone's"}).json()
        asked = phone.post("/api/messages", json={"question": "Hello?", "max_tokens": 4})
        assert asked.status_code == 200
        started = asked.headers["x-council-conversation"]
        listed = {c["id"] for c in phone.get("/api/conversations").json()["conversations"]}
        assert listed == {mine["id"], started}
        assert tablet.get("/api/conversations").json()["conversations"] == []
        for other in (owners["id"], mine["id"]):
            seen_by = phone if other == owners["id"] else tablet
            for method, path, body in (
                ("GET", f"/api/conversations/{other}", None),
                ("GET", f"/api/conversations/{other}/export", None),
                ("PATCH", f"/api/conversations/{other}", {"title": "mine now"}),
                ("POST", f"/api/conversations/{other}/messages", {"question": "hi"}),
                ("DELETE", f"/api/conversations/{other}", None),
            ):
                hidden = seen_by.request(method, path, json=body)
                assert hidden.status_code == 404, (method, path)
                assert hidden.json()["error"]["message"] == f"no conversation {other!r}"
        assert phone.get(f"/api/conversations/{mine['id']}").json()["title"] == "phone's"
        assert phone.delete(f"/api/conversations/{mine['id']}").status_code == 204
    everything = httpx.get(f"{hub.url}/api/conversations").json()["conversations"]
    assert {c["id"] for c in everything} == {owners["id"], started}  # the owner sees them all
    assert httpx.get(f"{hub.url}/api/conversations/{owners['id']}").json()["title"] == (
        "owner's plans"
    )


def test_a_council_answer_over_v1_is_kept_among_the_devices_own_conversations(lan: Lan) -> None:
    _, base, trust = lan
    with httpx.Client(
        base_url=base, verify=trust, headers=bearer(pair_device(base, trust))
    ) as phone:
        answer = phone.post(
            "/v1/chat/completions",
            json={
                "model": "council",
                "max_tokens": 4,
                "messages": [{"role": "user", "content": "Hi"}],
            },
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        (conversation,) = phone.get("/api/conversations").json()["conversations"]
    assert conversation["title"] == "Hi"


def test_moving_a_remote_seat_drops_its_token_unless_a_new_one_is_given(
    hub: HubProcess, isolated_data: DataFolder
) -> None:
    added = httpx.post(
        f"{hub.url}/api/seats",
        json={"name": "cloud", "url": "https://api.example.test", "model": "m", "token": "sk-1"},
    )
    assert added.json()["has_token"] is True
    moved = httpx.patch(f"{hub.url}/api/seats/cloud", json={"url": "https://elsewhere.test"})
    assert moved.json()["has_token"] is False
    assert "sk-1" not in (isolated_data.root / "remotes.toml").read_text()
