"""The errors council raises on purpose, in one small tree.

    CouncilError                 anything council reports as one clear line
    ├── DataFolderError          the data folder is missing, not a folder, or read-only
    ├── ConfigError              config.toml cannot be read or says something impossible
    ├── EngineError
    │   ├── EngineNotFound       no llama-server binary could be resolved
    │   └── EngineBuildError     fetching, verifying, compiling or self-testing llama.cpp failed
    ├── PackageError             a pinned PyPI file could not be downloaded or is not the one pinned
    ├── SeatError
    │   └── InsufficientMemory   the enabled seats do not fit in available RAM
    ├── PortInUse                an explicitly requested port is taken
    ├── HubUnreachable           the CLI lost (or never had) its connection to the hub
    ├── NotFound                 no such conversation, seat or mode (HTTP 404)
    └── BadRequest               a request the council cannot run as given (HTTP 400)

Lower-level errors (OSError, subprocess failures, TOML syntax) are translated into these once,
where they happen, so the CLI can print `str(error)` and exit non-zero without a traceback.
"""


class CouncilError(Exception):
    """Base class: the message is written for the person at the keyboard."""


class DataFolderError(CouncilError):
    pass


class ConfigError(CouncilError):
    pass


class EngineError(CouncilError):
    pass


class EngineNotFound(EngineError):
    pass


class EngineBuildError(EngineError):
    pass


class PackageError(CouncilError):
    pass


class SeatError(CouncilError):
    pass


class InsufficientMemory(SeatError):
    pass


class PortInUse(CouncilError):
    pass


class HubUnreachable(CouncilError):
    pass


class NotFound(CouncilError):
    pass


class BadRequest(CouncilError):
    pass
