"""`council seats`: list, add, remove, switch on and off, and restart the council's seats."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from council.cli.common import data_option, json_option, print_json, reports_errors
from council.config import MAX_SYSTEM_PROMPT
from council.settings import CONTEXT_SIZE

LIVE = "the running hub"


@click.group()
def seats() -> None:
    """The council's seats: through the running hub when there is one (at once, like the
    page), else by editing config.toml (its comments kept)."""


@seats.command("list")
@data_option
@json_option
@reports_errors
def seats_list(data: Path | None, as_json: bool) -> None:
    """List the seats: the running hub's with their state, else config.toml's."""
    from council.seating import list_seats

    outcome = asyncio.run(list_seats(_folder(data)))
    rows = outcome.detail["seats"]
    if as_json:
        print_json({"live": outcome.live, "seats": rows})
        return
    if not rows:
        click.echo(
            "no seats yet: `./council up` chooses seats for the stick's models, or add one "
            "with `./council seats add MODEL`"
        )
        return
    table = [("SEAT", "KIND", "MODEL", "STATE", "CTX", "TOK/S")]
    for row in rows:
        speed = row.get("tokens_per_second")
        table.append(
            (
                row["name"],
                row["kind"],
                str(row.get("model") or "-"),
                str(row.get("state") or "-"),
                str(row.get("ctx_size") or "-"),
                f"{speed:.1f}" if isinstance(speed, int | float) else "-",
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        click.echo("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    for row in rows:
        if row.get("reason") and row.get("state") not in {"healthy", "ready"}:
            click.echo(f"  {row['name']}: {row['reason']}")
    if not outcome.live:
        click.echo("(no hub is running: this is what config.toml and remotes.toml say)")


@seats.command("add")
@click.argument("model")
@click.option("--name", default=None, help="The seat's name (default: from the model's file).")
@click.option(
    "--ctx",
    "ctx_size",
    type=click.IntRange(0, 1 << 20),
    default=CONTEXT_SIZE,
    show_default=True,
    help="Context size per request (0: the model's trained context).",
)
@click.option(
    "--temperature",
    type=click.FloatRange(0.0, 2.0),
    default=None,
    help="This seat's own sampling temperature (default: the round's).",
)
@click.option(
    "--system",
    "system_prompt",
    default="",
    help=f"This seat's standing instructions (at most {MAX_SYSTEM_PROMPT} characters).",
)
@data_option
@json_option
@reports_errors
def seats_add(
    model: str,
    name: str | None,
    ctx_size: int,
    temperature: float | None,
    system_prompt: str,
    data: Path | None,
    as_json: bool,
) -> None:
    """Seat MODEL (a chat model on the stick: its path, file name or folder under models/)."""
    from council.seating import NewSeat, add_seat

    new = NewSeat(model, name, ctx_size, temperature, system_prompt)
    outcome = asyncio.run(add_seat(_folder(data), new))
    added = outcome.detail
    if as_json:
        print_json({"live": outcome.live, **added})
    elif outcome.live:
        click.echo(
            f"added seat {added['name']} ({added['model']}): its engine is starting "
            "(`./council status` shows when it is healthy)"
        )
    else:
        click.echo(
            f"added seat {added['name']} ({added['model']}) to config.toml: it starts with "
            "the next `./council up`"
        )


@seats.command("rm")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before removing.")
@data_option
@reports_errors
def seats_rm(name: str, yes: bool, data: Path | None) -> None:
    """Remove seat NAME (its model stays on the stick)."""
    from council.seating import find_seat, remove_seat

    folder = _folder(data)
    seat = asyncio.run(find_seat(folder, name))
    question = f"remove seat {name} ({seat['kind']}, {seat.get('model') or '-'})?"
    if not yes and not click.confirm(question, default=False):
        raise click.ClickException("nothing removed")
    outcome = asyncio.run(remove_seat(folder, name))
    click.echo(f"removed seat {name}" + ("" if outcome.live else " from the seat files"))


@seats.command("enable")
@click.argument("name")
@data_option
@reports_errors
def seats_enable(name: str, data: Path | None) -> None:
    """Switch seat NAME on (a local seat's engine starts when the hub runs)."""
    _switch(data, name, enabled=True)


@seats.command("disable")
@click.argument("name")
@data_option
@reports_errors
def seats_disable(name: str, data: Path | None) -> None:
    """Switch seat NAME off: it leaves the council (and its engine stops), its settings stay."""
    _switch(data, name, enabled=False)


def _switch(data: Path | None, name: str, *, enabled: bool) -> None:
    from council.seating import set_enabled

    outcome = asyncio.run(set_enabled(_folder(data), name, enabled))
    where = LIVE if outcome.live else "the seat files (from the next `./council up`)"
    click.echo(f"seat {name} {'enabled' if enabled else 'disabled'} in {where}")


@seats.command("restart")
@click.argument("name")
@data_option
@reports_errors
def seats_restart(name: str, data: Path | None) -> None:
    """Restart seat NAME's engine in the running hub (seats sharing it restart too)."""
    from council.seating import restart_seat

    outcome = asyncio.run(restart_seat(_folder(data), name))
    shared = [seat for seat in outcome.detail["seats"] if seat != name]
    also = f" (with {', '.join(shared)}, which share its engine)" if shared else ""
    click.echo(f"restarting seat {name}{also}: `./council status` shows when it is healthy")


def _folder(data: Path | None) -> Any:
    from council.datafolder import resolve_data_folder

    folder = resolve_data_folder(data)
    folder.ensure_exists()
    return folder
