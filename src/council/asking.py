"""The library side of `council ask`, `history` and `export`: one function per command."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from council.client import hub_for
from council.datafolder import resolve_data_folder
from council.render import TerminalRenderer
from council.store import conversations
from council.store import db as store_db


@contextmanager
def open_store(data: Path | None) -> Iterator[sqlite3.Connection]:
    """The stick's database, readable whether or not a hub is running (SQLite WAL)."""
    folder = resolve_data_folder(data)
    folder.prepare()
    db = store_db.connect(folder.database)
    try:
        yield db
    finally:
        db.close()


async def ask_council(
    data: Path | None,
    question: str,
    options: dict[str, Any],
    conversation: str | None,
    llama_server: Path | None,
    *,
    as_json: bool,
    write: Callable[[str], None],
) -> str:
    """Run one round through the hub; returns its final status (done, failed, cancelled)."""
    folder = resolve_data_folder(data)
    folder.prepare()
    if conversation is not None:
        with open_store(folder.root) as db:
            conversation = conversations.resolve_id(db, conversation)
    renderer = TerminalRenderer(write, tty=sys.stdout.isatty() and not as_json)
    async with hub_for(folder, llama_server) as hub:
        chosen = {key: value for key, value in options.items() if value is not None}
        conversation_id, message_id = conversation or "", ""
        async for event in hub.ask(conversation, question, chosen):
            conversation_id = event.data.get("conversation_id", conversation_id)
            message_id = event.data.get("message_id", message_id)
            if not as_json:
                renderer(event)
            elif event.type == "done":
                renderer.final = event.data
        if as_json:
            if renderer.final.get("saved") is False:  # the stick failed: what the round said
                message = {"id": message_id, **renderer.final}
            else:
                stored = await hub.conversation(conversation_id)
                message = next(m for m in stored["messages"] if m["id"] == message_id)
            write(json.dumps({"conversation_id": conversation_id, **message}, indent=2) + "\n")
        else:
            write(
                f"\nconversation {conversation_id} (follow up with --conversation "
                f"{conversation_id[:8]})\n"
            )
    return str(renderer.final.get("status", "failed"))
