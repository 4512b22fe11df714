"""The errors council raises on purpose, in one small tree; each class knows its HTTP answer.

    CouncilError                 500 anything council reports as one clear line
    ├── DataFolderError          503 the data folder is missing, not a folder, or read-only
    ├── ConfigError              500 config.toml cannot be read or says something impossible
    ├── StoreError               503 council.db cannot be read or written (damaged, locked, …)
    │   ├── StickFull            507 the stick has no room left for a write
    │   └── StickReadOnly        503 the stick (or council.db) turned read-only
    ├── EngineError              503
    │   ├── EngineNotFound       503 no llama-server binary could be resolved
    │   └── EngineBuildError     503 fetching, checking, compiling or self-testing llama.cpp failed
    ├── PackageError             503 a pinned PyPI file was not fetched or is not the pinned one
    ├── SeatError                503 a seat cannot take the request (starting, failed, stopped)
    │   └── InsufficientMemory   503 the enabled seats do not fit in available RAM
    ├── NoAnswer                 502 a seat or the council took the request and gave no answer
    ├── ModelSourceError         502 Hugging Face (or its mirror) failed, refused or is unreachable
    ├── HandshakeError           502 a worker's tunnel handshake was cut short or malformed
    ├── PortInUse                500 an explicitly requested port is taken
    ├── HubUnreachable           502 the CLI lost (or never had) its connection to the hub
    │   └── HubNotRunning        503 no hub serves this data folder (the CLI exits 3)
    ├── BadRequest               400 a request the council cannot run as given
    │   ├── PayloadTooLarge      413 a request body over its limit
    │   ├── HeadersTooLarge      431 a request line and headers over their limit
    │   └── RequestTimeout       408 a request's head did not arrive in time
    ├── Unauthorized             401 no (or no longer a) valid device token
    ├── Forbidden                403 the caller may not do this
    │   └── PairingFailed        403 a bad pairing code, never saying which check failed
    ├── NotFound                 404 no such conversation, seat, model or file
    ├── Conflict                 409 the request clashes with the state it finds
    │   └── PullCancelled        409 a pull was stopped on purpose (its partial file stays)
    └── TooManyRequests          429 slow down (`retry_after` seconds, when known)

Lower-level errors (OSError, subprocess failures, TOML syntax) are translated into these once,
where they happen, so the CLI can print `str(error)` and exit non-zero without a traceback.
`server/http.py` renders any of them as a response by the class attributes below (found along
the `__mro__`, so a subclass inherits its parent's answer), in council's shape on `/api` and in
OpenAI's on `/v1`; `client.py` turns a status back into a class with `error_for_status`.
"""

from __future__ import annotations

from typing import ClassVar


class CouncilError(Exception):
    """Base class: the message is written for the person at the keyboard."""

    status: ClassVar[int] = 500
    kind: ClassVar[str] = "server_error"  # OpenAI's error `type`
    code: ClassVar[str | None] = None  # OpenAI's error `code`
    exit_code: ClassVar[int] = 1  # the CLI's exit status


class DataFolderError(CouncilError):
    status = 503


class ConfigError(CouncilError):
    pass


class StoreError(CouncilError):
    status = 503


class StickFull(StoreError):
    status = 507
    code = "insufficient_storage"


class StickReadOnly(StoreError):
    code = "read_only_storage"


class EngineError(CouncilError):
    status = 503


class EngineNotFound(EngineError):
    pass


class EngineBuildError(EngineError):
    pass


class PackageError(CouncilError):
    status = 503


class SeatError(CouncilError):
    status = 503


class InsufficientMemory(SeatError):
    pass


class NoAnswer(CouncilError):
    status = 502


class ModelSourceError(CouncilError):
    status = 502


class HandshakeError(CouncilError):
    """A worker's tunnel handshake (rpc/handshake.py) was cut short, late or malformed."""

    status = 502


class PortInUse(CouncilError):
    pass


class HubUnreachable(CouncilError):
    status = 502


class HubNotRunning(HubUnreachable):
    """A command that needs the running hub found none; the CLI exits 3 (as `systemctl
    is-active` does for a unit that is not running), so a script can tell it from a failure."""

    status = 503
    exit_code = 3


class BadRequest(CouncilError):
    status = 400
    kind = "invalid_request_error"


class PayloadTooLarge(BadRequest):
    status = 413


class HeadersTooLarge(BadRequest):
    status = 431


class RequestTimeout(BadRequest):
    status = 408


class Unauthorized(CouncilError):
    status = 401
    kind = "invalid_request_error"
    code = "invalid_api_key"


class Forbidden(CouncilError):
    status = 403
    kind = "invalid_request_error"


FAILED_PAIRING = "invalid or expired pairing code"


class PairingFailed(Forbidden):
    """The one answer a phone gets for any bad code: it never says which check failed."""

    def __init__(self) -> None:
        super().__init__(FAILED_PAIRING)


class NotFound(CouncilError):
    status = 404
    kind = "invalid_request_error"


class Conflict(CouncilError):
    status = 409
    kind = "invalid_request_error"


class PullCancelled(Conflict):
    pass


class TooManyRequests(CouncilError):
    status = 429
    kind = "requests"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# The class a client raises for a status it reads back: the one class the tree gives each status.
_CANONICAL: tuple[type[CouncilError], ...] = (
    BadRequest,
    Unauthorized,
    PayloadTooLarge,
    HeadersTooLarge,
    RequestTimeout,
    Forbidden,
    NotFound,
    Conflict,
    TooManyRequests,
    NoAnswer,
    SeatError,
    StickFull,
)
_BY_STATUS = {cls.status: cls for cls in _CANONICAL}


def error_for_status(status: int) -> type[CouncilError]:
    """The class behind an HTTP error status: a 4xx the tree does not name is a `BadRequest`."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return BadRequest if 400 <= status < 500 else CouncilError
