"""The localhost listener lets in the laptop's owner only: the holder of owner.token, or a
browser logged in with a one-time login link. Another account on the laptop gets nothing."""

from __future__ import annotations

import re
import stat
from collections.abc import Callable

import httpx
import openai

from council.datafolder import DataFolder
from council.security.owner import cookie_name
from tests.hubs import HubProcess
from tests.hubs import run_council as council
from tests.owner import as_stranger

StartHub = Callable[..., HubProcess]


def printed_login_link(hub: HubProcess) -> str:
    found = re.search(r"log in to the page \(a one-time link\): (\S+)", hub.text())
    assert found, hub.text()
    return found[1]


def test_another_account_gets_401_everywhere_and_a_browser_is_sent_to_log_in(
    hub: HubProcess,
) -> None:
    with as_stranger():
        api = httpx.get(f"{hub.url}/api/conversations", timeout=10)
        v1 = httpx.post(f"{hub.url}/v1/chat/completions", json={"model": "council"}, timeout=10)
        wrong = httpx.get(
            f"{hub.url}/api/seats", headers={"authorization": "Bearer council_owner_x"}, timeout=10
        )
        page = httpx.get(hub.url, timeout=10)
        login = httpx.get(f"{hub.url}/login", timeout=10)
    assert api.status_code == 401
    assert "log in as this laptop's owner" in api.json()["error"]["message"]
    assert v1.status_code == 401
    assert set(v1.json()["error"]) == {"message", "type", "param", "code"}  # OpenAI's shape
    assert wrong.status_code == 401
    assert page.status_code == 303
    assert page.headers["location"] == "/login"
    assert login.status_code == 200
    assert "council login" in login.text


def test_the_owner_token_is_an_owner_only_file_that_outlives_a_restart_and_never_shows(
    start_hub: StartHub, isolated_data: DataFolder
) -> None:
    first = start_hub()
    first.wait_ok()
    token = first.owner_token
    path = isolated_data.root / "owner.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with openai.OpenAI(base_url=f"{first.url}/v1", api_key=token, max_retries=0) as sdk:
        assert "council" in [model.id for model in sdk.models.list()]
    assert first.stop() == 0
    second = start_hub()
    second.wait_ok()
    assert second.owner_token == token
    log = (isolated_data.logs / "council.log").read_text(errors="replace")
    assert token not in second.text() + first.text() + log


def test_a_login_link_logs_one_browser_in_once_and_council_login_mints_another(
    hub: HubProcess,
) -> None:
    code = printed_login_link(hub).split("#code=", 1)[1]
    port = int(hub.url.rsplit(":", 1)[1])
    with as_stranger():
        logged_in = httpx.post(f"{hub.url}/login", json={"code": code}, timeout=10)
        again = httpx.post(f"{hub.url}/login", json={"code": code}, timeout=10)
        guessed = httpx.post(f"{hub.url}/login", json={"code": "x" * 32}, timeout=10)
        cookie = logged_in.headers["set-cookie"]
        session = logged_in.cookies[cookie_name(port)]
        with httpx.Client(base_url=hub.url, cookies={cookie_name(port): session}) as browser:
            assert browser.get("/api/conversations").status_code == 200
            assert browser.get("/").status_code == 200
    assert logged_in.status_code == 204
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert again.status_code == 403
    assert "used up or expired" in again.json()["error"]["message"]
    assert guessed.status_code == 403
    fresh = council("login", "--no-browser")
    assert fresh.returncode == 0, fresh.stderr
    link = fresh.stdout.strip()
    assert link.startswith(f"{hub.url}/login#code=")
    with as_stranger():
        code = link.split("#code=", 1)[1]
        assert httpx.post(f"{hub.url}/login", json={"code": code}, timeout=10).status_code == 204


def test_council_login_without_a_running_hub_says_so_in_one_line() -> None:
    result = council("login", "--no-browser")
    assert result.returncode == 3  # no hub: what status and stop say too
    assert result.stderr.strip().count("\n") == 0
    assert "council is not running on " in result.stderr


def test_no_owner_auth_lets_every_account_in_and_says_so(start_hub: StartHub) -> None:
    hub = start_hub(None, "--no-owner-auth")
    hub.wait_ok()
    assert "--no-owner-auth: every account on this laptop can use this hub" in hub.text()
    assert "log in to the page" not in hub.text()
    with as_stranger():
        assert httpx.get(f"{hub.url}/api/conversations", timeout=10).status_code == 200
