"""The `council` command: each subcommand parses its options and calls one library function.

The commands live in modules by what they act on; this one gathers them under one group.
"""

from __future__ import annotations

import click

from council import __version__
from council.cli import (
    conversation_commands,
    device_commands,
    engine_commands,
    eval_commands,
    hub_commands,
    model_commands,
)


@click.group()
@click.version_option(__version__, prog_name="council")
def cli() -> None:
    """council: a private AI hub on a USB stick."""


for command in (
    hub_commands.up,
    hub_commands.login,
    conversation_commands.ask,
    conversation_commands.history,
    conversation_commands.export,
    model_commands.models,
    engine_commands.engine,
    device_commands.pair,
    device_commands.devices,
    eval_commands.eval_command,
):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="council")
