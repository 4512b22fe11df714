"""The hub itself: `up` (in the foreground or `--detach`ed), `status`, `stop`, `login`."""

from __future__ import annotations

from pathlib import Path

import click

from council.cli.common import (
    data_option,
    json_option,
    llama_server_option,
    print_json,
    reports_errors,
    say,
)
from council.settings import DEFAULT_LAN_PORT


@click.command()
@data_option
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port for the local web page (default 8710; a busy default picks another).",
)
@llama_server_option
@click.option("--no-browser", is_flag=True, help="Do not open the page in a browser.")
@click.option("--lan", is_flag=True, help="Also serve phones over HTTPS on the LAN.")
@click.option(
    "--lan-host",
    default="0.0.0.0",  # noqa: S104 - the LAN listener is opt-in and behind device pairing
    show_default=True,
    help="Address the LAN listener binds.",
)
@click.option(
    "--lan-port",
    type=click.IntRange(1, 65535),
    default=DEFAULT_LAN_PORT,
    show_default=True,
    help="Port of the LAN listener.",
)
@click.option(
    "--tls-cert",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Your own LAN certificate (PEM, with its chain).",
)
@click.option(
    "--tls-key",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="The key of --tls-cert (PEM).",
)
@click.option(
    "--no-owner-auth",
    is_flag=True,
    help="Let every account on this laptop use the hub, no login (a single-user machine).",
)
@click.option(
    "--detach",
    is_flag=True,
    help="Run in the background (lines to logs/council.log); return once it serves.",
)
# The detached hub's own process: its lines go to the log only (nobody reads its terminal).
@click.option("--log-only", is_flag=True, hidden=True)
@reports_errors
def up(
    data: Path | None,
    port: int | None,
    llama_server: Path | None,
    no_browser: bool,
    lan: bool,
    lan_host: str,
    lan_port: int,
    tls_cert: Path | None,
    tls_key: Path | None,
    no_owner_auth: bool,
    detach: bool,
    log_only: bool,
) -> None:
    """Start the seats' engines and serve the hub on http://127.0.0.1:8710."""
    import asyncio

    from council.hub import Hub, UpOptions

    if detach:
        forwarded = [
            *(["--port", str(port)] if port else []),
            *(["--llama-server", str(llama_server.absolute())] if llama_server else []),
            *(["--lan", "--lan-host", lan_host, "--lan-port", str(lan_port)] if lan else []),
            *(["--tls-cert", str(tls_cert.absolute())] if tls_cert else []),
            *(["--tls-key", str(tls_key.absolute())] if tls_key else []),
            *(["--no-owner-auth"] if no_owner_auth else []),
        ]
        _detach(data, forwarded, open_browser=not no_browser)
        return
    options = UpOptions(
        data=data,
        port=port,
        llama_server=llama_server,
        open_browser=not no_browser,
        lan=lan,
        lan_host=lan_host,
        lan_port=lan_port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        owner_auth=not no_owner_auth,
        terminal_log=not log_only,
    )
    asyncio.run(Hub(options, say=_nowhere if log_only else say).serve())


def _nowhere(line: str) -> None:
    """A detached hub's lines: it logs them itself, and nobody reads its terminal."""


def _detach(data: Path | None, forwarded: list[str], *, open_browser: bool) -> None:
    import webbrowser

    from council.control import start_detached
    from council.datafolder import resolve_data_folder
    from council.hub import has_display

    folder = resolve_data_folder(data)
    folder.prepare()
    click.echo("starting council in the background…")
    started = start_detached(folder, forwarded)
    seats = started.health.get("seats") or []
    healthy = sum(1 for seat in seats if seat.get("state") == "healthy")
    click.echo(f"council is serving {started.url} in the background (pid {started.pid})")
    if started.login:
        click.echo(f"log in to the page (a one-time link): {started.login}")
    click.echo(f"{healthy} of {len(seats)} seats healthy")
    for seat in seats:
        if seat.get("state") not in {"healthy", "ready"}:
            click.echo(f"  seat {seat['name']} {seat['state']}: {seat.get('reason') or ''}")
    click.echo("logs: `./council logs -f` · status: `./council status` · stop: `./council stop`")
    if open_browser and has_display():
        webbrowser.open(started.login or started.url)


@click.command()
@data_option
@json_option
@reports_errors
def status(data: Path | None, as_json: bool) -> None:
    """Show the running hub: its seats and engines, rounds, devices online, pulls (exit
    status 3 when no hub runs on this stick)."""
    import asyncio

    from council.control import hub_status, render_status
    from council.datafolder import resolve_data_folder
    from council.errors import HubNotRunning

    folder = resolve_data_folder(data)
    folder.ensure_exists()
    try:
        found = asyncio.run(hub_status(folder))
    except HubNotRunning:
        if as_json:
            print_json({"running": False, "data": str(folder.root)})
        raise
    if as_json:
        print_json({"running": True, **found})
    else:
        click.echo(render_status(found))


@click.command()
@data_option
@click.option(
    "--timeout",
    type=click.FloatRange(1, 600),
    default=30,
    show_default=True,
    help="Seconds to wait for a clean stop before killing it.",
)
@reports_errors
def stop(data: Path | None, timeout: float) -> None:
    """Stop the running hub cleanly: rounds end, engines stop, the store is closed (exit
    status 3 when no hub runs on this stick)."""
    from council.control import stop_hub
    from council.datafolder import resolve_data_folder

    folder = resolve_data_folder(data)
    folder.ensure_exists()
    stop_hub(folder, timeout, say)


@click.command()
@data_option
@click.option("--no-browser", is_flag=True, help="Print the link only.")
@reports_errors
def login(data: Path | None, no_browser: bool) -> None:
    """Print (and open) a one-time link that logs a browser in to the running hub's page."""
    import asyncio
    import webbrowser

    from council.client import login_link
    from council.datafolder import resolve_data_folder
    from council.hub import has_display

    url = asyncio.run(login_link(resolve_data_folder(data)))
    click.echo(url)
    if not no_browser and has_display():
        webbrowser.open(url)
