"""`council peers`: other hubs this one pairs with, whose seats it may call on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from council.cli.common import data_option, json_option, print_json, reports_errors
from council.datafolder import DataFolder, resolve_data_folder


@click.group()
def peers() -> None:
    """Other council hubs on the LAN: pair with one from its `council pair` link."""


@peers.command("add")
@click.argument("url")
@click.option("--name", default=None, help="What to call the peer (default: from its host).")
@click.option(
    "--wait",
    type=click.FloatRange(1, 3600),
    default=300,
    show_default=True,
    help="Seconds to wait for the peer's owner to approve (its `pair --confirm`).",
)
@data_option
@json_option
@reports_errors
def peers_add(url: str, name: str | None, wait: float, data: Path | None, as_json: bool) -> None:
    """Pair with the hub whose `council pair` link is URL (https://HOST:PORT/pair#code=…&fp=…),
    its certificate authority pinned by the link's fingerprint."""
    from council.peering import add_peer

    peer = asyncio.run(add_peer(_folder(data), url, name, wait))
    if as_json:
        print_json(peer)
        return
    click.echo(f"paired with {peer['name']} ({peer['url']}, CA fingerprint {peer['fingerprint']})")
    click.echo(f"its seats: {', '.join(peer['seats']) or 'none yet'}")


@peers.command("list")
@data_option
@json_option
@reports_errors
def peers_list(data: Path | None, as_json: bool) -> None:
    """List the peers, each asked for its seats now (or why it cannot be reached)."""
    from council.peering import list_peers

    rows = asyncio.run(list_peers(_folder(data)))
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("no peers: pair with another hub with `./council peers add LINK`")
    for row in rows:
        seats = ", ".join(row["seats"]) or "no seats"
        state = seats if row["state"] == "reachable" else f"unreachable: {row['reason']}"
        click.echo(f"{row['name']:<16} {row['url']:<32} {state}")


@peers.command("remove")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before removing.")
@data_option
@reports_errors
def peers_remove(name: str, yes: bool, data: Path | None) -> None:
    """Forget peer NAME and its token (revoke this hub on the peer too: `council devices`)."""
    from council.peering import forget_peer
    from council.peers import load_peers

    folder = _folder(data)
    known = {peer.name: peer for peer in load_peers(folder)}
    question = f"forget peer {name} ({known[name].url})?" if name in known else ""
    if question and not yes and not click.confirm(question, default=False):
        raise click.ClickException("nothing removed")
    gone = asyncio.run(forget_peer(folder, name))
    click.echo(
        f"forgot peer {gone['name']}; on {gone['url']} this hub stays a paired device until its "
        "owner revokes it (`council devices revoke`)"
    )


def _folder(data: Path | None) -> DataFolder:
    folder = resolve_data_folder(data)
    folder.prepare()
    return folder
