"""A phone's view: the HTTPS LAN listener (bound to loopback here), pairing and device tokens."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import openai
import pytest
from cryptography import x509

from council.config import HubConfig, save_config
from council.datafolder import DataFolder
from council.defaults import demo_seats
from council.security import pairing
from council.settings import DeviceLimits
from council.store import db as store
from council.store.devices import audit
from tests.hubs import HubProcess, engine_endpoint, engines_frozen, free_port
from tests.hubs import run_council as council

StartHub = Callable[..., HubProcess]


@pytest.fixture
def lan(start_hub: StartHub, isolated_data: DataFolder) -> tuple[HubProcess, str, ssl.SSLContext]:
    port = free_port()
    hub = start_hub(None, "--lan", "--lan-host", "127.0.0.1", "--lan-port", str(port))
    hub.wait_ok()
    trust = ssl.create_default_context(cafile=str(isolated_data.tls / "ca.pem"))
    return hub, f"https://127.0.0.1:{port}", trust


def pair_device(base: str, trust: ssl.SSLContext, name: str = "test phone") -> str:
    invite = json.loads(council("pair", "--json").stdout)
    assert invite["url"].startswith(f"{base}/pair#code=")
    paired = httpx.post(
        f"{base}/pair/exchange", json={"code": invite["code"], "name": name}, verify=trust
    )
    assert paired.status_code == 200, paired.text
    cookie = paired.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "Secure" in cookie
    assert "SameSite=strict" in cookie
    again = httpx.post(
        f"{base}/pair/exchange", json={"code": invite["code"], "name": name}, verify=trust
    )
    assert again.status_code == 403  # single use
    token: str = paired.json()["token"]
    return token


def test_without_a_token_only_pairing_the_ca_and_the_status_word_answer(
    lan: tuple[HubProcess, str, ssl.SSLContext],
) -> None:
    _, base, trust = lan
    assert httpx.get(f"{base}/health", verify=trust).json() == {"status": "ok"}
    assert httpx.get(f"{base}/pair", verify=trust).status_code == 200
    assert httpx.get(f"{base}/ca.pem", verify=trust).text.startswith("-----BEGIN CERTIFICATE")
    for path in ("/v1/models", "/api/health", "/api/conversations", "/", "/static/app.js"):
        refused = httpx.get(f"{base}{path}", verify=trust)
        assert refused.status_code == 401, path
    assert set(httpx.get(f"{base}/v1/models", verify=trust).json()["error"]) == {
        "message",
        "type",
        "param",
        "code",
    }
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/health")  # an untrusted certificate: the CA must be installed


def test_a_paired_phone_streams_from_a_seat_and_from_the_council_over_tls(
    lan: tuple[HubProcess, str, ssl.SSLContext],
) -> None:
    _, base, trust = lan
    token = pair_device(base, trust)
    with openai.OpenAI(
        base_url=f"{base}/v1", api_key=token, max_retries=0, http_client=httpx.Client(verify=trust)
    ) as client:
        assert "council" in [model.id for model in client.models.list()]
        for model in ("demo-1", "council"):
            chunks = list(
                client.chat.completions.create(
                    model=model,
                    messages=[{"role": "user", "content": "hi"}],
                    max_tokens=6,
                    stream=True,
                )
            )
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            completion = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=6
            )
            assert completion.choices[0].message.content
    stranger = openai.OpenAI(
        base_url=f"{base}/v1",
        api_key="council_wrong",
        max_retries=0,
        http_client=httpx.Client(verify=trust),
    )
    with stranger, pytest.raises(openai.AuthenticationError):
        stranger.models.list()


V1_ROUTES = [
    ("GET", "/v1/models"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/completions"),
    ("POST", "/v1/embeddings"),
]


def v1_statuses(base: str, trust: ssl.SSLContext, headers: dict[str, str]) -> set[int]:
    body = {
        "model": "demo-1",
        "prompt": "hi",
        "input": "hi",
        "max_tokens": 2,
        "messages": [{"role": "user", "content": "hi"}],
    }
    return {
        httpx.request(
            method,
            f"{base}{path}",
            headers=headers,
            verify=trust,
            json=body if method == "POST" else None,
        ).status_code
        for method, path in V1_ROUTES
    }


def test_no_token_a_wrong_token_and_a_revoked_token_get_401_on_every_v1_route(
    lan: tuple[HubProcess, str, ssl.SSLContext],
) -> None:
    _, base, trust = lan
    token = pair_device(base, trust, "soon revoked")
    assert v1_statuses(base, trust, bearer(token)) <= {200, 501}  # 501: no embeddings here
    assert v1_statuses(base, trust, {}) == {401}
    assert v1_statuses(base, trust, bearer("council_" + "A" * 43)) == {401}
    (device,) = json.loads(council("devices", "list", "--json").stdout)
    assert council("devices", "revoke", device["id"]).returncode == 0
    assert v1_statuses(base, trust, bearer(token)) == {401}


def test_the_certificate_chains_to_a_name_constrained_ca(
    lan: tuple[HubProcess, str, ssl.SSLContext], isolated_data: DataFolder
) -> None:
    ca = x509.load_pem_x509_certificate((isolated_data.tls / "ca.pem").read_bytes())
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    permitted = {str(name.value) for name in constraints.value.permitted_subtrees or []}
    assert {"localhost", "local", "192.168.0.0/16", "10.0.0.0/8"} <= permitted
    _, base, trust = lan
    info = httpx.get(f"{base}/ca", verify=trust).json()
    assert info["fingerprint"].count(":") == 31


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def revoke_all() -> float:
    """Revoke every device with the CLI (another process); when it returned."""
    for device in json.loads(council("devices", "list", "--json").stdout):
        assert council("devices", "revoke", device["id"]).returncode == 0
    return time.monotonic()


def test_a_phone_reaches_completions_and_embeddings_routes_too(
    lan: tuple[HubProcess, str, ssl.SSLContext],
) -> None:
    hub, base, trust = lan
    token = pair_device(base, trust)
    with openai.OpenAI(
        base_url=f"{base}/v1", api_key=token, max_retries=0, http_client=httpx.Client(verify=trust)
    ) as client:
        for model in ("demo-1", "council"):
            completion = client.completions.create(model=model, prompt="Once", max_tokens=5)
            assert completion.choices[0].text
        with pytest.raises(openai.BadRequestError, match="embeddings"):
            client.embeddings.create(model="council", input="hello")
    # A seat's own answer comes back unchanged, whatever it is (this engine makes no embeddings).
    url, key = engine_endpoint(hub.engines()[0])
    direct = httpx.post(
        f"{url}/v1/embeddings", json={"model": "x", "input": "hello"}, headers=bearer(key)
    )
    proxied = httpx.post(
        f"{base}/v1/embeddings",
        json={"model": "demo-1", "input": "hello"},
        headers=bearer(token),
        verify=trust,
    )
    assert (proxied.status_code, proxied.json()) == (direct.status_code, direct.json())


def test_revoking_a_device_ends_its_open_seat_stream_within_a_second(
    lan: tuple[HubProcess, str, ssl.SSLContext],
) -> None:
    hub, base, trust = lan
    token = pair_device(base, trust)
    body = {
        "model": "demo-1",
        "messages": [{"role": "user", "content": "Tell me everything."}],
        "max_tokens": 1900,
        "ignore_eos": True,
        "stream": True,
    }
    with httpx.stream(
        "POST",
        f"{base}/v1/chat/completions",
        json=body,
        headers=bearer(token),
        verify=trust,
        timeout=30,
    ) as stream:
        lines = stream.iter_lines()
        assert next(line for line in lines if line.startswith("data: "))
        with engines_frozen(hub):  # the engine is mid-answer and stays so
            revoked = revoke_all()
            rest = list(lines)
            ended = time.monotonic()
    assert ended - revoked < 1.0
    last = json.loads([line for line in rest if line.startswith("data: ")][-1][6:])
    assert last["error"]["code"] == "invalid_api_key"
    assert "revoked" in last["error"]["message"]


def test_revoking_a_device_ends_its_open_council_stream_and_the_sdk_raises(
    lan: tuple[HubProcess, str, ssl.SSLContext],
) -> None:
    hub, base, trust = lan
    token = pair_device(base, trust)
    sdk = openai.OpenAI(
        base_url=f"{base}/v1", api_key=token, max_retries=0, http_client=httpx.Client(verify=trust)
    )
    with sdk as client, engines_frozen(hub):
        stream = client.chat.completions.create(
            model="council", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        assert next(iter(stream)).choices[0].delta.role == "assistant"  # the stream is open
        revoked = revoke_all()
        with pytest.raises(openai.APIError, match="revoked"):
            list(stream)
        assert time.monotonic() - revoked < 1.0


def test_over_its_limits_a_device_gets_429_with_retry_after(
    start_hub: StartHub, isolated_data: DataFolder
) -> None:
    limits = DeviceLimits(max_streams=1, requests_per_minute=4)
    save_config(isolated_data, HubConfig(seats=demo_seats(), devices=limits))
    port = free_port()
    hub = start_hub(None, "--lan", "--lan-host", "127.0.0.1", "--lan-port", str(port))
    hub.wait_ok()
    base = f"https://127.0.0.1:{port}"
    trust = ssl.create_default_context(cafile=str(isolated_data.tls / "ca.pem"))
    token = pair_device(base, trust)
    # The council's stream opens at once and, with its engines frozen, stays open.
    body = {"model": "council", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    sdk = openai.OpenAI(
        base_url=f"{base}/v1", api_key=token, max_retries=0, http_client=httpx.Client(verify=trust)
    )
    with sdk as client:
        opened = httpx.stream(
            "POST",
            f"{base}/v1/chat/completions",
            json=body,
            headers=bearer(token),
            verify=trust,
            timeout=30,
        )
        with engines_frozen(hub), opened, pytest.raises(openai.RateLimitError) as busy:
            client.models.list()
        assert "open at once" in busy.value.message
        assert busy.value.response.headers["retry-after"] == "1"
        # The stream has closed: once the hub has seen it go, the device may go on (refused
        # requests are not counted against it).
        deadline = time.monotonic() + 5
        while True:
            try:
                client.models.list()  # the second request this minute
                break
            except openai.RateLimitError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        client.models.list()
        client.models.list()
        with pytest.raises(openai.RateLimitError, match="a minute") as flood:
            client.models.list()  # the fifth in a minute
    assert 1 <= int(flood.value.response.headers["retry-after"]) <= 60
    assert set(flood.value.body) == {"message", "type", "param", "code"}  # type: ignore[arg-type]
    # The page's own reads are not counted: the limits are on work for the engines.
    assert httpx.get(f"{base}/api/health", headers=bearer(token), verify=trust).status_code == 200


def test_a_devices_changes_count_against_its_limit_like_its_questions(
    start_hub: StartHub, isolated_data: DataFolder
) -> None:
    save_config(isolated_data, HubConfig(seats=demo_seats(), devices=DeviceLimits(4, 3)))
    port = free_port()
    hub = start_hub(None, "--lan", "--lan-host", "127.0.0.1", "--lan-port", str(port))
    hub.wait_ok()
    base = f"https://127.0.0.1:{port}"
    trust = ssl.create_default_context(cafile=str(isolated_data.tls / "ca.pem"))
    with httpx.Client(
        base_url=base, verify=trust, headers=bearer(pair_device(base, trust))
    ) as phone:
        mine = phone.post("/api/conversations", json={"title": "one"}).json()["id"]  # the first
        renames = [
            phone.patch(f"/api/conversations/{mine}", json={"title": f"t{n}"}) for n in range(3)
        ]
        assert [r.status_code for r in renames] == [200, 200, 429]
        assert phone.get(f"/api/conversations/{mine}").json()["title"] == "t1"  # reads go on


def test_an_expired_or_guessed_code_fails_and_guessing_locks_the_address_out(
    lan: tuple[HubProcess, str, ssl.SSLContext], isolated_data: DataFolder
) -> None:
    _, base, trust = lan
    with contextlib.closing(store.connect(isolated_data.database)) as db:
        expired = pairing.mint_code(
            db, ttl=timedelta(seconds=1), now=datetime.now(UTC) - timedelta(minutes=1)
        )
    answers = [
        httpx.post(f"{base}/pair/exchange", json={"code": code, "name": "guess"}, verify=trust)
        for code in (expired.code, *(f"council_pair_{n:032d}" for n in range(6)))
    ]
    assert [a.status_code for a in answers[:5]] == [403] * 5
    assert answers[-1].status_code == 429
    assert int(answers[-1].headers["retry-after"]) >= 1


def test_a_forwarded_for_header_is_no_way_around_the_lockout_or_into_the_audit_log(
    lan: tuple[HubProcess, str, ssl.SSLContext], isolated_data: DataFolder
) -> None:
    _, base, trust = lan
    answers = [
        httpx.post(
            f"{base}/pair/exchange",
            json={"code": f"council_pair_{n:032d}", "name": "guess"},
            headers={"x-forwarded-for": f"10.9.8.{n}", "forwarded": f"for=10.9.8.{n}"},
            verify=trust,
        )
        for n in range(6)
    ]
    assert [a.status_code for a in answers] == [403] * 5 + [429]  # one address, one budget
    with contextlib.closing(store.connect(isolated_data.database)) as db:
        events = audit(db)
    assert events
    assert {event["address"] for event in events} == {"127.0.0.1"}


def test_metrics_are_served_to_the_laptop_only_and_count_each_device(
    lan: tuple[HubProcess, str, ssl.SSLContext],
) -> None:
    hub, base, trust = lan
    token = pair_device(base, trust, "metered phone")
    reply = httpx.post(
        f"{base}/v1/chat/completions",
        headers=bearer(token),
        verify=trust,
        json={
            "model": "demo-1",
            "max_tokens": 7,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        },
    )
    assert reply.status_code == 200
    assert httpx.get(f"{base}/metrics", headers=bearer(token), verify=trust).status_code == 403
    metrics = httpx.get(f"{hub.url}/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    (device,) = json.loads(council("devices", "list", "--json").stdout)
    text = metrics.text
    assert f'council_device_info{{device="{device["id"]}",name="metered phone"}} 1.0' in text
    assert f'council_device_tokens_total{{device="{device["id"]}",kind="completion"}} 7.0' in text
    assert 'council_tokens_total{kind="completion",model="demo-1"} 7.0' in text
    assert (
        'council_http_requests_total{listener="lan",method="POST",'
        'route="/v1/chat/completions",status="200"} 1.0'
    ) in text
    assert 'council_v1_first_byte_seconds_count{model="demo-1"} 1.0' in text
    assert 'council_seat_up{kind="local",seat="demo-1",state="healthy"} 1.0' in text


def test_a_phone_is_told_it_is_not_the_owner_and_not_where_the_laptop_keeps_files(
    lan: tuple[HubProcess, str, ssl.SSLContext], isolated_data: DataFolder
) -> None:
    hub, base, trust = lan
    token = pair_device(base, trust)
    phone = httpx.get(f"{base}/api/health", headers=bearer(token), verify=trust).json()
    laptop = httpx.get(f"{hub.url}/api/health").json()
    assert (phone["owner"], laptop["owner"]) == (False, True)
    assert str(isolated_data.root) in laptop["demo_hint"]
    assert str(isolated_data.root) not in phone["demo_hint"]
    for owner_only in ("/api/devices", "/api/pairings", "/metrics"):
        assert (
            httpx.get(f"{base}{owner_only}", headers=bearer(token), verify=trust).status_code == 403
        )


def refusal_of_a_huge_head(sock: Any) -> bytes:
    """Send a header far over the hub's limit and read whatever answer comes back."""
    sock.settimeout(10)
    sock.sendall(b"GET /api/health HTTP/1.1\r\nhost: 127.0.0.1\r\nx-big: " + b"a" * 100_000)
    answer = b""
    with contextlib.suppress(OSError):
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_head_over_the_limit_is_refused_with_431_on_both_listeners(
    lan: tuple[HubProcess, str, ssl.SSLContext],
) -> None:
    hub, base, trust = lan
    port = int(base.rsplit(":", 1)[1])
    local = int(hub.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", local)) as plain:
        on_localhost = refusal_of_a_huge_head(plain)
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        trust.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        on_lan = refusal_of_a_huge_head(tls)
    for answer in (on_localhost, on_lan):
        assert answer.startswith(b"HTTP/1.1 431 ")
        body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert "over 65536 bytes" in body["error"]["message"]
    assert httpx.get(f"{hub.url}/api/health", timeout=5).status_code == 200  # still serving
