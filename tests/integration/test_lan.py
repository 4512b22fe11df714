"""A phone's view: the HTTPS LAN listener (bound to loopback here), pairing and device tokens."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from collections.abc import Callable

import httpx
import openai
import pytest
from cryptography import x509

from council.datafolder import DataFolder
from tests.hubs import HubProcess, free_port

StartHub = Callable[..., HubProcess]


def council(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "council", *args], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip


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
    paired = httpx.post(f"{base}/pair/exchange", json={"code": invite["code"], "name": name},
                        verify=trust)  # fmt: skip
    assert paired.status_code == 200, paired.text
    cookie = paired.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "Secure" in cookie
    assert "SameSite=strict" in cookie
    again = httpx.post(f"{base}/pair/exchange", json={"code": invite["code"], "name": name},
                       verify=trust)  # fmt: skip
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
        "message", "type", "param", "code",
    }  # fmt: skip
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/health")  # an untrusted certificate: the CA must be installed


def test_a_paired_phone_streams_from_a_seat_and_from_the_council_over_tls(
    lan: tuple[HubProcess, str, ssl.SSLContext],
) -> None:
    _, base, trust = lan
    token = pair_device(base, trust)
    with openai.OpenAI(base_url=f"{base}/v1", api_key=token, max_retries=0,
                       http_client=httpx.Client(verify=trust)) as client:  # fmt: skip
        assert "council" in [model.id for model in client.models.list()]
        for model in ("demo-1", "council"):
            chunks = list(client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=6,
                stream=True))  # fmt: skip
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            completion = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=6
            )
            assert completion.choices[0].message.content
    stranger = openai.OpenAI(base_url=f"{base}/v1", api_key="council_wrong", max_retries=0,
                             http_client=httpx.Client(verify=trust))  # fmt: skip
    with stranger, pytest.raises(openai.AuthenticationError):
        stranger.models.list()


def test_a_revoked_device_is_refused_on_its_next_request(
    lan: tuple[HubProcess, str, ssl.SSLContext],
) -> None:
    _, base, trust = lan
    token = pair_device(base, trust, "soon revoked")
    headers = {"authorization": f"Bearer {token}"}
    assert httpx.get(f"{base}/v1/models", headers=headers, verify=trust).status_code == 200
    (device,) = json.loads(council("devices", "list", "--json").stdout)
    assert council("devices", "revoke", device["id"]).returncode == 0
    assert httpx.get(f"{base}/v1/models", headers=headers, verify=trust).status_code == 401


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
