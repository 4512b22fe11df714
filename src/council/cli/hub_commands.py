"""Starting the hub and reaching it: `up`, `login`."""

from __future__ import annotations

from pathlib import Path

import click

from council.cli.common import (
    data_option,
    llama_server_option,
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
) -> None:
    """Start the seats' engines and serve the hub on http://127.0.0.1:8710."""
    import asyncio

    from council.hub import Hub, UpOptions

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
    )
    asyncio.run(Hub(options, say=say).serve())


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
