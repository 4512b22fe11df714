"""One error boundary: every council error reads the same status on `/api` and on `/v1`."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from council import errors
from council.errors import CouncilError, PairingFailed, TooManyRequests, error_for_status
from council.server.http import EXCEPTION_HANDLERS, INTERNAL, sse_error_frame
from tests.running import run


def every_error_class() -> list[type[CouncilError]]:
    found, pending = [], [CouncilError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending += cls.__subclasses__()
    return sorted(found, key=lambda cls: cls.__name__)


def make(cls: type[CouncilError]) -> CouncilError:
    return cls() if cls is PairingFailed else cls(f"a {cls.__name__} happened")


BY_NAME = {cls.__name__: cls for cls in every_error_class()}


async def raising(request: Request) -> Response:
    name = request.path_params["name"]
    if name == "bug":
        raise RuntimeError("a bug with a secret path /home/owner/council-data")
    raise make(BY_NAME[name])


APP = Starlette(
    routes=[Route("/api/raise/{name}", raising), Route("/v1/raise/{name}", raising)],
    exception_handlers=EXCEPTION_HANDLERS,
)


def get(path: str) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=APP, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.get(path)

    return run(send())


def test_the_tree_covers_the_errors_the_server_raises() -> None:
    names = set(BY_NAME)
    assert {"PayloadTooLarge", "PairingFailed", "Unauthorized", "Conflict", "NoAnswer"} <= names
    assert all(cls.__module__ == errors.__name__ for cls in BY_NAME.values())


@pytest.mark.parametrize("cls", every_error_class(), ids=lambda cls: cls.__name__)
def test_each_error_class_renders_the_same_status_on_api_and_v1(cls: type[CouncilError]) -> None:
    api, v1 = get(f"/api/raise/{cls.__name__}"), get(f"/v1/raise/{cls.__name__}")
    message = str(make(cls))
    assert api.status_code == v1.status_code == cls.status
    assert api.json() == {"error": {"status": cls.status, "message": message}}
    assert v1.json() == {
        "error": {"message": message, "type": cls.kind, "param": None, "code": cls.code}
    }
    assert api.headers["cache-control"] == v1.headers["cache-control"] == "no-store"


def test_a_subclass_answers_like_its_parent_unless_it_says_otherwise() -> None:
    assert errors.EngineNotFound.status == errors.EngineError.status == 503
    assert errors.PairingFailed.status == errors.Forbidden.status == 403
    assert errors.PayloadTooLarge.status == 413
    assert errors.PayloadTooLarge.kind == errors.BadRequest.kind == "invalid_request_error"


def test_a_bug_is_a_json_500_that_keeps_its_details_to_the_log() -> None:
    api, v1 = get("/api/raise/bug"), get("/v1/raise/bug")
    assert api.status_code == v1.status_code == 500
    assert api.json() == {"error": {"status": 500, "message": INTERNAL}}
    expected = {"message": INTERNAL, "type": "server_error", "param": None, "code": None}
    assert v1.json()["error"] == expected
    assert "secret" not in api.text + v1.text


def test_a_401_says_how_to_authenticate_and_an_unknown_wait_is_not_guessed() -> None:
    answer = get("/v1/raise/TooManyRequests")
    assert "retry-after" not in answer.headers
    assert get("/api/raise/Unauthorized").headers["www-authenticate"] == 'Bearer realm="council"'


def test_retry_after_is_rounded_up_to_whole_seconds() -> None:
    async def slow_down(request: Request) -> Response:
        raise TooManyRequests("wait", retry_after=2.2)

    app = Starlette(routes=[Route("/api/x", slow_down)], exception_handlers=EXCEPTION_HANDLERS)

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.get("/api/x")

    answer = run(send())
    assert (answer.status_code, answer.headers["retry-after"]) == (429, "3")


@pytest.mark.parametrize("cls", every_error_class(), ids=lambda cls: cls.__name__)
def test_a_client_reading_a_status_back_gets_a_class_with_that_status(
    cls: type[CouncilError],
) -> None:
    assert error_for_status(cls.status).status == cls.status


def test_statuses_the_tree_does_not_name_still_read_as_client_or_server_errors() -> None:
    assert error_for_status(418) is errors.BadRequest
    assert error_for_status(500) is CouncilError
    assert error_for_status(404) is errors.NotFound


def test_a_stream_that_cannot_finish_ends_with_openai_s_error_object() -> None:
    frame = sse_error_frame(errors.NoAnswer("the seat stopped"))
    assert frame == (
        b'data: {"error": {"message": "the seat stopped", "type": "server_error", '
        b'"param": null, "code": null}}\n\n'
    )
