"""The owner's device routes (`/api/devices`, `/api/pair`, `/api/pairings`) on a real store, and
their absence from the LAN listener's app."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest
from starlette.testclient import TestClient

from council.datafolder import DataFolder
from council.errors import PairingFailed
from council.security import pairing
from council.server.app import create_app
from council.server.devices_api import DevicesApi
from council.server.gate import DeviceSessions
from council.server.lan import LanContext
from council.settings import DeviceLimits
from council.store import devices as store
from council.store.access import Store
from council.store.db import connect

LAN_URL = "https://192.168.1.5:8711"
PHONE = "192.168.1.23"


class Health:
    def health(self) -> dict[str, object]:
        return {"status": "ok", "seats": []}


class Hub:
    """The localhost app with the device routes, as `council up --lan` builds it."""

    def __init__(self, folder: DataFolder, lan_url: str | None) -> None:
        self.served = Store(folder.database)  # what the hub's routes use, off the loop
        self.db = connect(folder.database)  # the test's own look at the same stick
        self.revoked: list[str] = []
        self.api = DevicesApi(self.served, folder, lambda: lan_url, self.revoked.append)
        self.client = TestClient(create_app(Health(), devices=self.api))


@pytest.fixture
def hub(isolated_data: DataFolder) -> Iterator[Hub]:
    made = Hub(isolated_data, LAN_URL)
    with made.client:
        yield made
    made.db.close()
    made.served.close()


def paired(db: sqlite3.Connection, name: str = "Pixel") -> store.Device:
    minted = pairing.mint_code(db)
    result = pairing.exchange(db, minted.code, name, PHONE)
    assert result.device_id is not None
    return store.get_device(db, result.device_id)


def fragment(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(url.split("#", 1)[1]).items()}


def test_devices_are_listed_with_revoked_ones_and_where_phones_reach_the_hub(hub: Hub) -> None:
    empty = hub.client.get("/api/devices")
    assert empty.status_code == 200
    assert empty.json() == {"devices": [], "lan": {"url": LAN_URL, "serving": True}}
    assert empty.headers["cache-control"] == "no-store"
    first, second = paired(hub.db, "Pixel"), paired(hub.db, "iPad")
    store.revoke_device(hub.db, second.id)
    listed = hub.client.get("/api/devices").json()["devices"]
    assert [(d["id"], d["name"], d["revoked_at"] is not None) for d in listed] == [
        (first.id, "Pixel", False),
        (second.id, "iPad", True),
    ]
    assert set(listed[0]) == {
        "id",
        "name",
        "created_at",
        "last_seen_at",
        "last_address",
        "revoked_at",
    }
    assert listed[0]["last_address"] == PHONE


def test_without_lan_the_list_says_phones_cannot_reach_the_hub(isolated_data: DataFolder) -> None:
    hub = Hub(isolated_data, None)
    with hub.client:
        assert hub.client.get("/api/devices").json()["lan"] == {"url": None, "serving": False}
        made = hub.client.post("/api/pair", json={})  # minting still works: --lan may follow
        assert made.status_code == 200
        assert made.json()["url"].startswith("https://")
    hub.db.close()
    hub.served.close()


def test_a_device_is_renamed_by_its_id_or_a_prefix(hub: Hub) -> None:
    device = paired(hub.db)
    renamed = hub.client.patch(f"/api/devices/{device.id}", json={"name": "  Work phone "})
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Work phone"
    by_prefix = hub.client.patch(f"/api/devices/{device.id[:6]}", json={"name": "Mine\u202e"})
    assert by_prefix.json() == {**renamed.json(), "name": "Mine"}  # control characters go
    assert store.get_device(hub.db, device.id).name == "Mine"
    for bad in ({}, {"name": ""}, {"name": "   "}, {"name": 7}):
        refused = hub.client.patch(f"/api/devices/{device.id}", json=bad)
        assert refused.status_code == 400, bad
        assert refused.json()["error"]["status"] == 400
    assert hub.client.patch(f"/api/devices/{device.id}", content=b"[").status_code == 400


def test_revoking_stops_the_token_and_tells_the_hub(hub: Hub) -> None:
    minted = pairing.mint_code(hub.db)
    result = pairing.exchange(hub.db, minted.code, "Pixel", PHONE)
    assert result.token is not None
    assert result.device_id is not None
    revoked = hub.client.delete(f"/api/devices/{result.device_id[:8]}")
    assert revoked.status_code == 200
    assert revoked.json()["id"] == result.device_id
    assert revoked.json()["revoked_at"] is not None
    assert hub.revoked == [result.device_id]
    assert pairing.authenticate(hub.db, result.token, PHONE) is None
    again = hub.client.delete(f"/api/devices/{result.device_id}")  # revoking twice changes nothing
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    events = [event["event"] for event in hub.client.get("/api/devices/audit").json()["events"]]
    assert events.count("revoked") == 1


def test_unknown_devices_and_claims_are_404_json(hub: Hub) -> None:
    paired(hub.db)
    for method, path in (
        ("PATCH", "/api/devices/ffff0000"),
        ("DELETE", "/api/devices/ffff0000"),
        ("DELETE", "/api/devices/nope"),
        ("POST", "/api/pairings/123456/confirm"),
        ("POST", "/api/pairings/123456/reject"),
    ):
        response = hub.client.request(method, path, json={"name": "x"})
        assert response.status_code == 404, path
        assert response.json()["error"]["status"] == 404
    short = hub.client.delete("/api/devices/ab")  # too short to stand for one device
    assert short.status_code == 400
    assert (
        short.json()["error"]["message"]
        == "'ab' is too short: give at least 4 characters of the id"
    )
    assert hub.revoked == []


def test_pairing_answers_a_url_with_the_code_and_fingerprint_and_a_qr_image(hub: Hub) -> None:
    made = hub.client.post("/api/pair", json={"name": "Kitchen tablet", "ttl": 60})
    assert made.status_code == 200
    assert made.headers["cache-control"] == "no-store"
    body = made.json()
    assert set(body) == {"url", "code", "fingerprint", "expires_at", "comparison", "qr", "ttl"}
    assert body["ttl"] == 60
    assert body["url"].startswith(f"{LAN_URL}/pair#code=")
    assert "&fp=" in body["url"]
    assert fragment(body["url"]) == {"code": body["code"], "fp": body["fingerprint"]}
    assert body["comparison"] is None
    assert body["qr"].startswith("data:image/svg+xml;base64,")
    svg = base64.b64decode(body["qr"].split(",", 1)[1])
    assert svg.startswith(b"<svg")
    assert body["code"].encode() not in svg  # the code is drawn, not written out
    result = pairing.exchange(hub.db, body["code"], "anything", PHONE)
    assert result.paired
    assert result.name == "Kitchen tablet"  # the owner's name wins
    defaults = hub.client.post("/api/pair").json()  # no body: five minutes, no confirmation
    assert (defaults["comparison"], defaults["ttl"]) == (None, 300)
    assert defaults["code"] != body["code"]


@pytest.mark.parametrize(
    "body",
    [
        {"ttl": 10},
        {"ttl": 3601},
        {"ttl": "300"},
        {"ttl": 300.5},
        {"ttl": True},
        {"confirm": "yes"},
        {"name": 5},
    ],
)
def test_pairing_refuses_bad_input_with_400(hub: Hub, body: dict[str, object]) -> None:
    refused = hub.client.post("/api/pair", json=body)
    assert refused.status_code == 400
    assert refused.json()["error"]["status"] == 400
    assert pairing.pending(hub.db) == []


def test_a_claimed_confirmation_code_waits_until_the_owner_approves_it(hub: Hub) -> None:
    made = hub.client.post("/api/pair", json={"confirm": True}).json()
    assert made["comparison"] is not None
    assert len(made["comparison"]) == 6
    assert hub.client.get("/api/pairings").json() == {"pending": []}
    waiting = pairing.exchange(hub.db, made["code"], "Pixel", PHONE)
    assert not waiting.paired
    listed = hub.client.get("/api/pairings")
    assert listed.headers["cache-control"] == "no-store"
    [claim] = listed.json()["pending"]
    assert (claim["name"], claim["address"], claim["comparison"]) == (
        "Pixel",
        PHONE,
        made["comparison"],
    )
    approved = hub.client.post(f"/api/pairings/{made['comparison']}/confirm")
    assert approved.status_code == 200
    assert approved.json() == {"confirmed": "Pixel"}
    assert hub.client.get("/api/pairings").json() == {"pending": []}
    result = pairing.exchange(hub.db, made["code"], "Pixel", PHONE)  # the phone's next poll
    assert result.paired
    names = [device["name"] for device in hub.client.get("/api/devices").json()["devices"]]
    assert names == ["Pixel"]


def test_a_rejected_claim_spends_the_code(hub: Hub) -> None:
    made = hub.client.post("/api/pair", json={"confirm": True, "name": "Mine"}).json()
    pairing.exchange(hub.db, made["code"], "Intruder", "192.168.1.66")
    rejected = hub.client.post(f"/api/pairings/{made['comparison']}/reject")
    assert rejected.status_code == 200
    assert rejected.json() == {"rejected": "Mine"}
    assert hub.client.get("/api/pairings").json() == {"pending": []}
    with pytest.raises(PairingFailed):
        pairing.exchange(hub.db, made["code"], "Intruder", "192.168.1.66")
    assert hub.client.get("/api/devices").json()["devices"] == []
    again = hub.client.post(f"/api/pairings/{made['comparison']}/confirm")
    assert again.status_code == 404


def test_the_audit_log_is_newest_first_and_limited(hub: Hub) -> None:
    device = paired(hub.db)
    hub.client.patch(f"/api/devices/{device.id}", json={"name": "Renamed"})
    events = hub.client.get("/api/devices/audit").json()["events"]
    assert [event["event"] for event in events] == ["renamed", "paired", "code_minted"]
    assert set(events[0]) == {"id", "at", "event", "device_id", "address", "detail"}
    assert len(hub.client.get("/api/devices/audit?limit=1").json()["events"]) == 1
    for bad in ("0", "-1", "x", "1001"):
        assert hub.client.get(f"/api/devices/audit?limit={bad}").status_code == 400


def test_the_lan_app_gives_a_paired_phone_none_of_the_owner_routes(
    isolated_data: DataFolder,
) -> None:
    db = connect(isolated_data.database)
    minted = pairing.mint_code(db)
    token = pairing.exchange(db, minted.code, "Pixel", PHONE).token
    device = store.list_devices(db)[0]
    sessions = DeviceSessions(DeviceLimits)
    served = Store(isolated_data.database)
    lan = LanContext(served, None, pairing.AttemptLimiter(), lambda: "ok", sessions)
    owner = DevicesApi(served, isolated_data, lambda: LAN_URL)
    # Not mounted (404), or mounted as the hub does and refused to the guest (403).
    for app in (create_app(Health(), lan=lan), create_app(Health(), lan=lan, devices=owner)):
        with TestClient(app, headers={"authorization": f"Bearer {token}"}) as phone:
            assert phone.get("/health").status_code == 200
            assert phone.get("/api/health").status_code == 200  # the token is good
            for method, path in (
                ("GET", "/api/devices"),
                ("GET", "/api/devices/audit"),
                ("PATCH", f"/api/devices/{device.id}"),
                ("DELETE", f"/api/devices/{device.id}"),
                ("POST", "/api/pair"),
                ("GET", "/api/pairings"),
                ("POST", "/api/pairings/123456/confirm"),
                ("POST", "/api/pairings/123456/reject"),
            ):
                response = phone.request(method, path, json={"name": "x", "confirm": True})
                assert response.status_code in {403, 404}, (method, path)
        with TestClient(app) as stranger:
            assert stranger.get("/api/devices").status_code == 401
            assert stranger.post("/api/pair", json={}).status_code == 401
    assert store.get_device(db, device.id).revoked_at is None
    assert store.get_device(db, device.id).name == "Pixel"
    db.close()
    served.close()
