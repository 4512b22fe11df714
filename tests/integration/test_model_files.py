"""`/models/<digest>/<name>`: the stick's model files by content, as a browser seat fetches them.

Every test runs against the real hub (three demo models on the test stick) over real HTTP.
"""

from __future__ import annotations

import hashlib
import sqlite3
import ssl
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from council.datafolder import DataFolder
from tests.hubs import HubProcess, free_port
from tests.integration.test_lan import pair_device

IMMUTABLE = "public, max-age=31536000, immutable"


def served_models(hub: HubProcess, timeout: float = 30) -> list[dict[str, Any]]:
    """/api/models once every valid model has a URL (hashing runs after the hub serves)."""
    deadline = time.monotonic() + timeout
    while True:
        models: list[dict[str, Any]] = httpx.get(f"{hub.url}/api/models").json()["models"]
        if all(model["url"] for model in models if model["valid"]):
            return models
        assert time.monotonic() < deadline, models
        time.sleep(0.05)


def first_model(hub: HubProcess, folder: DataFolder) -> tuple[str, bytes]:
    model = served_models(hub)[0]
    return f"{hub.url}{model['url']}", (folder.models / model["path"]).read_bytes()


def test_every_model_is_listed_with_a_url_named_by_its_digest_and_file_name(
    hub: HubProcess, isolated_data: DataFolder
) -> None:
    models = served_models(hub)
    assert len(models) == 3
    for model in models:
        data = (isolated_data.models / model["path"]).read_bytes()
        name = model["path"].rsplit("/", 1)[-1]
        assert model["url"] == f"/models/{hashlib.sha256(data).hexdigest()[:16]}/{name}"
        assert model["urls"] == [model["url"]]


def test_a_full_get_returns_the_file_with_immutable_caching_and_its_sha256_as_a_strong_etag(
    hub: HubProcess, isolated_data: DataFolder
) -> None:
    url, data = first_model(hub, isolated_data)
    response = httpx.get(url, headers={"accept-encoding": "gzip, br"})
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert response.headers["cache-control"] == IMMUTABLE
    assert response.headers["accept-ranges"] == "bytes"
    assert "content-encoding" not in response.headers
    assert httpx.get(url).headers["etag"] == response.headers["etag"]


def test_head_answers_the_headers_of_a_get_without_the_body(
    hub: HubProcess, isolated_data: DataFolder
) -> None:
    url, data = first_model(hub, isolated_data)
    response = httpx.head(url)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["etag"] == httpx.get(url).headers["etag"]
    assert response.headers["cache-control"] == IMMUTABLE


def test_a_single_range_and_a_suffix_range_return_206_with_those_bytes(
    hub: HubProcess, isolated_data: DataFolder
) -> None:
    url, data = first_model(hub, isolated_data)
    middle = httpx.get(url, headers={"range": "bytes=100-1123"})
    assert middle.status_code == 206
    assert middle.content == data[100:1124]
    assert middle.headers["content-range"] == f"bytes 100-1123/{len(data)}"
    assert middle.headers["content-length"] == "1024"
    tail = httpx.get(url, headers={"range": "bytes=-500"})
    assert tail.status_code == 206
    assert tail.content == data[-500:]


def test_if_range_with_the_current_etag_gets_the_range_and_a_stale_one_the_whole_file(
    hub: HubProcess, isolated_data: DataFolder
) -> None:
    url, data = first_model(hub, isolated_data)
    etag = httpx.head(url).headers["etag"]
    fresh = httpx.get(url, headers={"range": "bytes=0-9", "if-range": etag})
    assert (fresh.status_code, fresh.content) == (206, data[:10])
    stale = httpx.get(url, headers={"range": "bytes=0-9", "if-range": f'"{"0" * 64}"'})
    assert (stale.status_code, stale.content) == (200, data)


def test_if_none_match_with_the_etag_answers_304_without_a_body(
    hub: HubProcess, isolated_data: DataFolder
) -> None:
    url, _ = first_model(hub, isolated_data)
    etag = httpx.head(url).headers["etag"]
    response = httpx.get(url, headers={"if-none-match": f'"other", {etag}'})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert httpx.get(url, headers={"if-none-match": '"other"'}).status_code == 200


def test_a_range_beyond_the_end_answers_416_with_the_size(
    hub: HubProcess, isolated_data: DataFolder
) -> None:
    url, data = first_model(hub, isolated_data)
    response = httpx.get(url, headers={"range": f"bytes={len(data)}-{len(data) + 10}"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(data)}"


@pytest.mark.parametrize(
    "path",
    [
        "/models/{digest}/..%2F..%2Fconfig.toml",
        "/models/{digest}/%2E%2E%2Fcouncil.db",
        "/models/..%2F..%2Fconfig.toml/{name}",
        "/models/{digest}/../../config.toml",
        "/models/0123456789abcdef/{name}",
        "/models/{digest}/other.gguf",
        "/models/{digest}/{name}.part",
        "/models/{digest}",
    ],
)
def test_paths_that_are_not_a_hashed_catalog_file_answer_404(
    hub: HubProcess, isolated_data: DataFolder, path: str
) -> None:
    digest, name = served_models(hub)[0]["url"].split("/")[2:]
    response = httpx.get(f"{hub.url}{path.format(digest=digest, name=name)}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["status"] == 404


def test_a_file_changed_after_hashing_is_not_served_under_its_old_digest(
    hub: HubProcess, isolated_data: DataFolder
) -> None:
    model = served_models(hub)[0]
    path = isolated_data.models / model["path"]
    path.write_bytes(path.read_bytes())  # same bytes, new mtime: it must be hashed again
    assert httpx.get(f"{hub.url}{model['url']}").status_code == 404
    assert served_models(hub)[0]["url"] == model["url"]  # hashed again: same content, same URL
    assert httpx.get(f"{hub.url}{model['url']}").status_code == 200


def test_a_second_start_takes_the_digests_from_the_database_and_hashes_nothing(
    start_hub: Callable[..., HubProcess], isolated_data: DataFolder
) -> None:
    first = start_hub()
    first.wait_serving()
    urls = [model["url"] for model in served_models(first)]
    etags = [httpx.head(f"{first.url}{url}").headers["etag"] for url in urls]
    first.stop()
    with sqlite3.connect(isolated_data.database) as db:
        hashed_at = db.execute("SELECT path, hashed_at FROM model_digests ORDER BY path").fetchall()
    assert len(hashed_at) == 3

    second = start_hub()
    second.wait_serving()
    assert [model["url"] for model in served_models(second, timeout=5)] == urls
    assert [httpx.head(f"{second.url}{url}").headers["etag"] for url in urls] == etags
    with sqlite3.connect(isolated_data.database) as db:
        again = db.execute("SELECT path, hashed_at FROM model_digests ORDER BY path").fetchall()
    assert again == hashed_at  # not one row rewritten


def test_on_the_lan_listener_a_model_file_needs_a_device_token(
    start_hub: Callable[..., HubProcess], isolated_data: DataFolder
) -> None:
    port = free_port()
    hub = start_hub(None, "--lan", "--lan-host", "127.0.0.1", "--lan-port", str(port))
    hub.wait_ok()
    base = f"https://127.0.0.1:{port}"
    trust = ssl.create_default_context(cafile=str(isolated_data.tls / "ca.pem"))
    model = served_models(hub)[0]
    data = (isolated_data.models / model["path"]).read_bytes()
    assert httpx.get(f"{base}{model['url']}", verify=trust).status_code == 401

    token = pair_device(base, trust)
    response = httpx.get(
        f"{base}{model['url']}", headers={"authorization": f"Bearer {token}"}, verify=trust
    )
    assert response.status_code == 200
    assert response.content == data  # over TLS: FileResponse's own reads, not sendfile
    headers = {"authorization": f"Bearer {token}", "range": "bytes=-16"}
    ranged = httpx.get(f"{base}{model['url']}", headers=headers, verify=trust)
    assert (ranged.status_code, ranged.content) == (206, data[-16:])


def test_a_pulled_files_digest_comes_from_its_source_record_while_the_file_is_unchanged(
    start_hub: Callable[..., HubProcess], isolated_data: DataFolder
) -> None:
    from council.models.demo import write_demo_model
    from council.models.sources import Source, write_source

    (isolated_data.models / "pulled").mkdir()
    path = write_demo_model(isolated_data.models / "pulled" / "tiny-F16.gguf", seed=9)
    stat = path.stat()
    # A digest the file does not have: served under it, the file was never read to hash it.
    claimed = "ab" * 32
    record = Source(
        "o/tiny",
        "c" * 40,
        "tiny-F16.gguf",
        claimed,
        stat.st_size,
        stat.st_mtime_ns,
        "http://127.0.0.1:1",
        "2026-12-07T00:00:00.000Z",
    )
    write_source(path, record)
    hub = start_hub()
    hub.wait_ok()
    urls = {model["path"]: model["url"] for model in served_models(hub)}
    assert urls["pulled/tiny-F16.gguf"] == f"/models/{claimed[:16]}/tiny-F16.gguf"
    assert "o/tiny@ccccccc" in {
        m["source"] for m in httpx.get(f"{hub.url}/api/models").json()["models"]
    }
