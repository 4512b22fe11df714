"""What `council status` prints of a hub's `/api/status` answer."""

from __future__ import annotations

from typing import Any

from council.control import render_status

STATUS: dict[str, Any] = {
    "pid": 4242,
    "version": "0.1.0",
    "url": "http://127.0.0.1:8710",
    "lan_url": "https://192.168.1.20:8711",
    "data": "/media/stick/council-data",
    "started_at": "2026-12-07T10:00:00.000Z",
    "uptime": 7384.2,
    "status": "degraded",
    "stick": None,
    "seats": [
        {
            "name": "qwen",
            "kind": "local",
            "model": "qwen/qwen2.5-3b-q4_k_m.gguf",
            "state": "healthy",
            "reason": None,
            "engine_pid": 5151,
            "engine_port": 40111,
            "slots": 1,
            "engine_slots": 3,
            "slots_busy": 1,
            "tokens_per_second": 21.456,
            "memory_bytes": 2_400_000_000,
        },
        {
            "name": "broken",
            "kind": "local",
            "model": "gone.gguf",
            "state": "failed",
            "reason": "model file not found: models/gone.gguf",
            "engine_pid": None,
            "engine_port": None,
            "slots": 1,
            "engine_slots": 1,
            "slots_busy": None,
            "tokens_per_second": None,
            "memory_bytes": None,
        },
        {"name": "cloud", "kind": "remote", "model": "gpt-x", "state": "healthy"},
        {"name": "spare", "kind": "local", "model": "spare.gguf", "state": "disabled"},
    ],
    "rounds": [
        {
            "message_id": "9f8e7d6c5b4a",
            "conversation_id": "0123456789ab",
            "mode": "vote",
            "seats": ["qwen", "cloud"],
            "device_id": "phone1",
            "seconds": 75.4,
        }
    ],
    "devices": [
        {
            "id": "phone1",
            "name": "Ana's phone",
            "address": "192.168.1.31",
            "last_seen_at": "2026-12-07T12:03:00.000Z",
            "open_requests": 1,
        }
    ],
    "pulls": [
        {
            "name": "big.gguf",
            "file": None,
            "repo": "org/big",
            "done": 50,
            "total": 200,
            "state": "running",
        }
    ],
}


def test_status_names_the_hub_its_address_on_the_lan_and_how_long_it_has_run() -> None:
    first, data, state = render_status(STATUS).splitlines()[:3]
    assert first == (
        "council 0.1.0 · pid 4242 · up 2 h 03 min · http://127.0.0.1:8710"
        " · phones: https://192.168.1.20:8711"
    )
    assert data == "data: /media/stick/council-data"
    assert state == "status: degraded"


def test_each_seat_is_a_row_with_its_engine_slots_speed_and_memory() -> None:
    lines = render_status(STATUS).splitlines()
    header = lines[4]
    assert header.split() == [
        "SEAT",
        "KIND",
        "MODEL",
        "STATE",
        "ENGINE",
        "SLOTS",
        "TOK/S",
        "MEMORY",
    ]
    qwen = lines[5]
    assert qwen.split()[:4] == ["qwen", "local", "qwen/qwen2.5-3b-q4_k_m.gguf", "healthy"]
    assert "pid 5151 :40111" in qwen
    assert qwen.split()[-4:] == ["1/3", "21.5", "2.4", "GB"]
    assert lines[6].split()[:5] == ["broken", "local", "gone.gguf", "failed", "-"]
    assert "?/1" in lines[6]  # the engine did not say how busy it is
    assert lines[7].split() == ["cloud", "remote", "gpt-x", "healthy", "-", "-", "-", "-"]
    assert lines[8].split() == ["spare", "local", "spare.gguf", "disabled", "-", "-", "-", "-"]


def test_a_seat_that_is_not_answering_has_its_whole_reason_under_the_table() -> None:
    assert "  broken: model file not found: models/gone.gguf" in render_status(STATUS)


def test_rounds_devices_and_pulls_follow_the_seats() -> None:
    text = render_status(STATUS)
    assert "rounds running: 1\n  9f8e7d6c  vote  qwen, cloud  1 min 15 s · device phone1" in text
    assert (
        "devices online: 1\n  Ana's phone (192.168.1.31, seen 2026-12-07 12:03:00, 1 request"
        in text
    )
    assert "pulls: 1\n  big.gguf  25% of" in text


def test_an_idle_hub_says_none_for_each() -> None:
    idle = {**STATUS, "rounds": [], "devices": [], "pulls": [], "lan_url": None, "uptime": 42}
    text = render_status(idle)
    assert text.splitlines()[0] == "council 0.1.0 · pid 4242 · up 42 s · http://127.0.0.1:8710"
    for line in ("rounds running: none", "devices online: none", "pulls: none"):
        assert line in text.splitlines()
