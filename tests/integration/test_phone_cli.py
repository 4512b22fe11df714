"""`council pair` and `council devices` on the stick, with or without a running hub."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from council.datafolder import DataFolder, running_hub
from council.security import pairing
from council.security.tls import load_or_create_ca
from council.store.db import connect
from tests.hubs import HubProcess, free_port
from tests.hubs import run_council as council


def test_pair_prints_a_one_time_code_whose_url_keeps_secrets_in_the_fragment(
    isolated_data: DataFolder,
) -> None:
    result = council("pair", "--name", "Anna's phone", "--json")
    assert result.returncode == 0, result.stderr
    invite = json.loads(result.stdout)
    assert set(invite) == {"url", "code", "fingerprint", "expires_at"}
    url = urlsplit(invite["url"])
    assert url.scheme == "https"
    assert url.path == "/pair"
    assert url.query == ""  # the code never travels in a request line a server could log
    fragment = parse_qs(url.fragment)
    assert fragment["code"] == [invite["code"]]
    ca = load_or_create_ca(isolated_data.tls)
    assert fragment["fp"] == [ca.fingerprint.replace(":", "").lower()]
    assert len(invite["code"]) >= 22  # at least 128 bits
    assert invite["code"].encode() not in isolated_data.database.read_bytes()

    human = council("pair")
    assert "█" in human.stdout  # the QR code
    assert "/pair#code=" in human.stdout


def test_devices_can_be_listed_renamed_and_revoked_from_the_terminal(
    isolated_data: DataFolder,
) -> None:
    code = json.loads(council("pair", "--json").stdout)["code"]
    db = connect(isolated_data.database)
    paired = pairing.exchange(db, code, "Pixel", "192.168.1.23")
    db.close()
    assert paired.token is not None
    assert paired.token.startswith("council_")

    (device,) = json.loads(council("devices", "list", "--json").stdout)
    assert (device["name"], device["revoked_at"]) == ("Pixel", None)
    assert paired.token not in council("devices", "list").stdout

    renamed = council("devices", "rename", device["id"][:6], "Anna's Pixel")
    assert renamed.returncode == 0
    assert renamed.stdout.strip() == f"renamed {device['id']} to Anna's Pixel"
    revoked = council("devices", "revoke", device["id"][:6])
    assert revoked.stdout.strip() == f"revoked {device['id']} (Anna's Pixel)"
    (after,) = json.loads(council("devices", "list", "--json").stdout)
    assert after["revoked_at"] is not None

    unknown = council("devices", "revoke", "ffffffff")
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("Error: ")
    assert len(unknown.stderr.strip().splitlines()) == 1
    assert paired.token.encode() not in isolated_data.database.read_bytes()


NOT_SERVING = (
    "warning: the hub is not serving phones (start it with `./council up --lan`): "
    "this link works once it does"
)


def test_pair_warns_when_no_hub_serves_phones_and_still_makes_the_code(
    isolated_data: DataFolder, start_hub: Callable[..., HubProcess]
) -> None:
    alone = council("pair", "--json")  # no hub at all
    assert alone.returncode == 0, alone.stderr
    assert alone.stderr.strip() == NOT_SERVING
    code = json.loads(alone.stdout)["code"]
    db = connect(isolated_data.database)
    try:
        assert pairing.exchange(db, code, "Pixel", "192.168.1.23").token is not None  # valid
    finally:
        db.close()
    human = council("pair")
    assert human.returncode == 0
    assert "/pair#code=" in human.stdout
    assert human.stderr.strip() == NOT_SERVING

    local_only = start_hub()  # serving this laptop, not the LAN
    local_only.wait_serving()
    without_lan = council("pair", "--json")
    assert without_lan.returncode == 0, without_lan.stderr
    assert without_lan.stderr.strip() == NOT_SERVING
    local_only.stop()

    port = free_port()
    start_hub(None, "--lan", "--lan-host", "127.0.0.1", "--lan-port", str(port))
    deadline = time.monotonic() + 60
    while "lan_url" not in (running_hub(isolated_data) or {}):
        assert time.monotonic() < deadline, "the hub never recorded its LAN URL"
        time.sleep(0.1)
    served = council("pair", "--json")
    assert served.returncode == 0, served.stderr
    assert "warning" not in served.stderr
    assert json.loads(served.stdout)["url"].startswith(f"https://127.0.0.1:{port}/pair#code=")
