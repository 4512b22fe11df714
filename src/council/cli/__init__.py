"""The `council` command: each subcommand parses its options and calls one library function.

The commands live in modules by what they act on; this one gathers them under one group.
"""

from __future__ import annotations

import click

from council import __version__
from council.cli import (
    chat_commands,
    conversation_commands,
    device_commands,
    engine_commands,
    eval_commands,
    hub_commands,
    log_commands,
    model_commands,
    peer_commands,
    seat_commands,
    worker_commands,
)


@click.group()
@click.version_option(__version__, prog_name="council")
def cli() -> None:
    """council: a private AI hub on a USB stick."""


for command in (
    hub_commands.up,
    hub_commands.status,
    hub_commands.stop,
    hub_commands.login,
    log_commands.logs,
    conversation_commands.ask,
    chat_commands.chat,
    conversation_commands.history,
    conversation_commands.export,
    seat_commands.seats,
    peer_commands.peers,
    worker_commands.workers,
    worker_commands.worker,
    model_commands.models,
    engine_commands.engine,
    device_commands.pair,
    device_commands.devices,
    eval_commands.eval_command,
):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="council")  # click ends quietly (exit 1) when a pipe closes: `logs | head`
