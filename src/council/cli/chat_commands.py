"""`council chat`: ask the council question after question, in one conversation, in the terminal."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from council.cli.common import MAX_TOKENS, data_option, llama_server_option, reports_errors, write


@click.command()
@data_option
@click.option(
    "--mode",
    type=click.Choice(["synthesize", "moa", "vote"]),
    default=None,
    help="How the council deliberates (default: the configured default; /mode changes it).",
)
@click.option("--seat", "seats", multiple=True, help="A seat to take part (repeat; default all).")
@click.option("--conversation", default=None, help="Continue this conversation (id or prefix).")
@click.option(
    "--max-tokens",
    type=click.IntRange(MAX_TOKENS.low, MAX_TOKENS.high),
    default=None,
    help="Longest answer per seat and stage.",
)
@llama_server_option
@reports_errors
def chat(
    data: Path | None,
    mode: str | None,
    seats: tuple[str, ...],
    conversation: str | None,
    max_tokens: int | None,
    llama_server: Path | None,
) -> None:
    """Talk with the council: each line is a round, later ones follow up (/help inside)."""
    from council.chatting import ChatState
    from council.chatting import chat as run_chat

    state = ChatState(
        mode=mode, seats=list(seats) or None, conversation=conversation, max_tokens=max_tokens
    )
    status = run_chat(data, llama_server, state, write=write)
    if status:
        sys.exit(status)
