"""Asking the council and reading what it said: `ask`, `history`, `export`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from council.cli.common import (
    MAX_TOKENS,
    data_option,
    json_option,
    llama_server_option,
    print_json,
    reports_errors,
    write,
)


@click.command()
@click.argument("question")
@data_option
@click.option(
    "--mode",
    type=click.Choice(["synthesize", "moa", "vote"]),
    default=None,
    help="How the council deliberates (default: the configured default).",
)
@click.option("--seat", "seats", multiple=True, help="A seat to take part (repeat; default all).")
@click.option("--chair", default=None, help="The seat that writes the final answer.")
@click.option("--conversation", default=None, help="Follow up in this conversation (id or prefix).")
@click.option("--extractor", default=None, help="vote: number, choice[:LETTERS] or regex:PATTERN.")
@click.option(
    "--max-tokens",
    type=click.IntRange(MAX_TOKENS.low, MAX_TOKENS.high),
    default=None,
    help="Longest answer per seat and stage.",
)
@llama_server_option
@json_option
@reports_errors
def ask(
    question: str,
    data: Path | None,
    mode: str | None,
    seats: tuple[str, ...],
    chair: str | None,
    conversation: str | None,
    extractor: str | None,
    max_tokens: int | None,
    llama_server: Path | None,
    as_json: bool,
) -> None:
    """Ask the council a question and watch it deliberate; the conversation is stored."""
    import asyncio

    from council.asking import ask_council

    options = {
        "mode": mode,
        "seats": list(seats) or None,
        "chair": chair,
        "extractor": extractor,
        "max_tokens": max_tokens,
    }
    status = asyncio.run(
        ask_council(
            data, question, options, conversation, llama_server, as_json=as_json, write=write
        )
    )
    if status != "done":
        sys.exit(130 if status == "cancelled" else 1)


@click.command()
@data_option
@click.option("--search", default=None, help="Only conversations mentioning this text.")
@json_option
@reports_errors
def history(data: Path | None, search: str | None, as_json: bool) -> None:
    """List stored conversations, newest first."""
    from council.asking import open_store
    from council.store.conversations import list_conversations

    with open_store(data) as db:
        found = list_conversations(db, search)
    if as_json:
        print_json(found)
        return
    if not found and search:
        click.echo(f"no conversations match {search!r}")
    elif not found:
        click.echo('no conversations yet: ask one with `council ask "..."`')
    for item in found:
        click.echo(
            f"{item['id']}  {item['updated_at'][:16].replace('T', ' ')}  "
            f"{item['messages']:>3} msg  {item['title']}"
        )


@click.command()
@click.argument("conversation_id")
@data_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "json"]),
    default="md",
    show_default=True,
    help="Markdown to read, JSON to import elsewhere.",
)
@reports_errors
def export(conversation_id: str, data: Path | None, fmt: str) -> None:
    """Print a conversation as Markdown or JSON (an id or a unique prefix of one)."""
    from council.asking import open_store
    from council.store import conversations, export

    with open_store(data) as db:
        conversation = conversations.get_conversation(
            db, conversations.resolve_id(db, conversation_id)
        )
    if fmt == "json":
        print_json(export.to_json_document(conversation))
    else:
        click.echo(export.to_markdown(conversation), nl=False)
