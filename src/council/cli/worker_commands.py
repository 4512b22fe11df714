"""`council worker` (lend this machine's compute) and `council workers` (the hub's list)."""

from __future__ import annotations

import asyncio
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
from council.datafolder import DataFolder, resolve_data_folder

DEFAULT_WORKER_PORT = 8712


@click.command()
@data_option
@click.option(
    "--lan-host",
    default="0.0.0.0",  # noqa: S104 - the TLS listener is the point, and pairing guards it
    show_default=True,
    help="Address the worker's TLS listener binds (rpc-server itself stays on 127.0.0.1).",
)
@click.option(
    "--lan-port",
    type=click.IntRange(1, 65535),
    default=DEFAULT_WORKER_PORT,
    show_default=True,
    help="Port of the TLS listener.",
)
@click.option(
    "--threads", type=click.IntRange(1, 1024), default=1, show_default=True, help="CPU threads."
)
@click.option(
    "--mem",
    type=click.IntRange(1),
    default=None,
    help="MB of memory to offer hubs (default: what is available).",
)
@llama_server_option
@reports_errors
def worker(
    data: Path | None,
    lan_host: str,
    lan_port: int,
    threads: int,
    mem: int | None,
    llama_server: Path | None,
) -> None:
    """Lend this machine's CPU and memory to paired hubs through llama.cpp's RPC backend
    (rpc-server on loopback, reached only through an authenticated TLS tunnel)."""
    from council.engine.binary import find_llama_server
    from council.rpc.worker import run_worker

    folder = _folder(data)
    binary = find_llama_server(folder, llama_server)
    run_worker(
        folder,
        binary,
        host=lan_host,
        port=lan_port,
        threads=threads,
        memory=mem * 1024 * 1024 if mem else None,
        say=say,
    )


@click.group()
def workers() -> None:
    """Machines running `council worker` that this hub's seats may put layers on."""


@workers.command("add")
@click.argument("url")
@click.option("--name", default=None, help="What to call the worker (default: from its host).")
@data_option
@llama_server_option
@json_option
@reports_errors
def workers_add(
    url: str, name: str | None, data: Path | None, llama_server: Path | None, as_json: bool
) -> None:
    """Pair with the worker whose link is URL (it prints one), its CA pinned by the link's
    fingerprint; refuses a worker whose llama.cpp build is not this hub's."""
    from council.engine.binary import find_llama_server
    from council.rpc.worker import build_commit
    from council.rpc.workers import load_workers, pair_worker, save_workers

    folder = _folder(data)
    ours = build_commit(find_llama_server(folder, llama_server))
    known = load_workers(folder)
    added, facts = asyncio.run(pair_worker(known, url, name, ours))
    save_workers(folder, [*known, added])
    if as_json:
        print_json({**added.public(), "commit": facts.get("commit"), "memory": facts.get("memory")})
        return
    memory = facts.get("memory")
    offered = f", {int(memory) // 1024**2} MB offered" if isinstance(memory, int) else ""
    click.echo(f"paired with worker {added.name} ({added.host}:{added.port}{offered})")
    click.echo(f'use it: workers = ["{added.name}"] in a seat of config.toml (and restart the hub)')


@workers.command("list")
@data_option
@json_option
@reports_errors
def workers_list(data: Path | None, as_json: bool) -> None:
    """List the workers, each asked now what it runs and offers."""
    from council.errors import CouncilError
    from council.rpc.workers import hello, load_workers

    async def survey() -> list[dict[str, object]]:
        rows: list[dict[str, object]] = []
        for each in load_workers(_folder(data)):
            row: dict[str, object] = {**each.public(), "state": "reachable", "reason": None}
            try:
                facts = await hello(each)
                row |= {"commit": facts.get("commit"), "memory": facts.get("memory")}
            except CouncilError as exc:
                row |= {"state": "unreachable", "reason": str(exc)}
            rows.append(row)
        return rows

    rows = asyncio.run(survey())
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("no workers: pair one with `./council workers add LINK`")
    for row in rows:
        memory = row.get("memory")
        what = (
            f"llama.cpp {row.get('commit')}, {int(memory) // 1024**2} MB"
            if row["state"] == "reachable" and isinstance(memory, int)
            else f"unreachable: {row['reason']}"
        )
        click.echo(f"{row['name']:<16} {row['address']:<24} {what}")


@workers.command("remove")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before removing.")
@data_option
@reports_errors
def workers_remove(name: str, yes: bool, data: Path | None) -> None:
    """Forget worker NAME and its token."""
    from council.rpc.workers import remove_worker

    if not yes and not click.confirm(f"forget worker {name}?", default=False):
        raise click.ClickException("nothing removed")
    gone = remove_worker(_folder(data), name)
    click.echo(f"forgot worker {gone.name} ({gone.host}:{gone.port})")


def _folder(data: Path | None) -> DataFolder:
    folder = resolve_data_folder(data)
    folder.prepare()
    return folder
