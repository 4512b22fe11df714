"""What every `council` command shares: the common options, the error boundary, output."""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from council.errors import CouncilError
from council.settings import (
    RoundDefaults,
    ranges,
)

MAX_TOKENS = ranges(RoundDefaults)["max_tokens"]

F = TypeVar("F", bound=Callable[..., Any])

data_option = click.option(
    "--data",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Data folder (default: $COUNCIL_DATA, else council-data/ beside council).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
llama_server_option = click.option(
    "--llama-server",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Use this llama-server binary (default: $COUNCIL_LLAMA_SERVER, the data folder, "
    "the project build, then PATH).",
)


class NoHub(click.ClickException):
    """The command needs the running hub and there is none (errors.HubNotRunning)."""

    exit_code = 3


def reports_errors(function: F) -> F:
    """Turn council's own errors into one clear line and the error's exit status (1; 3 when
    the command needs a running hub and none is)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except CouncilError as exc:
            failed = NoHub if exc.exit_code == NoHub.exit_code else click.ClickException
            raise failed(str(exc)) from None
        except sqlite3.Error as exc:  # a damaged or full store found after it was opened
            from council.store.db import store_error

            raise click.ClickException(str(store_error(exc))) from None

    return wrapper  # type: ignore[return-value]


def prepared_folder(data: Path | None) -> Any:
    from council.datafolder import resolve_data_folder

    folder = resolve_data_folder(data)
    folder.prepare()
    return folder


def size_text(n: int) -> str:
    from council.units import human_size

    return human_size(n)


def say(line: str) -> None:
    click.echo(line)


def say_err(line: str) -> None:
    click.echo(line, err=True)


def write(text: str) -> None:
    click.echo(text, nl=False)


def print_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2))
