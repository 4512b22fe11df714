"""Reading what the hub and the engines wrote: `logs`."""

from __future__ import annotations

from pathlib import Path

import click

from council.cli.common import data_option, reports_errors, say, say_err, write


@click.command()
@click.argument("seat", required=False)
@click.option(
    "--follow", "-f", is_flag=True, help="Keep printing lines as they are written (Ctrl-C stops)."
)
@click.option(
    "--lines",
    "-n",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="How many of the last lines to show.",
)
@data_option
@reports_errors
def logs(seat: str | None, follow: bool, lines: int, data: Path | None) -> None:
    """Show the hub's log (logs/council.log), or with SEAT the log of the engine that serves
    that seat (seats sharing an engine share its log)."""
    from council.datafolder import resolve_data_folder
    from council.errors import NotFound
    from council.logs import NO_HUB_LOG, hub_log, last_lines, seat_log
    from council.logs import follow as follow_log

    folder = resolve_data_folder(data)
    folder.ensure_exists()
    path = hub_log(folder) if seat is None else seat_log(folder, seat)
    shown = path.relative_to(folder.root) if path.is_relative_to(folder.root) else path
    if not follow:
        if not path.is_file():
            raise NotFound(
                NO_HUB_LOG
                if seat is None
                else f"no log yet for seat {seat!r} ({shown}: its engine has not started)"
            )
        for line in last_lines(path, lines):
            say(line)
        return
    try:
        for text in follow_log(path, lines, waiting=lambda: say_err(f"waiting for {shown}…")):
            write(text)
    except KeyboardInterrupt:  # Ctrl-C is how following ends
        pass
