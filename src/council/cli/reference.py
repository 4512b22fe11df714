"""`docs/cli.md`: every command's `--help`, generated so that the reference cannot drift.

cog (`cogapp`, what simonw/llm uses for the same job) runs `reference()` inside docs/cli.md;
`make docs` rewrites the file and `make lint` fails when it no longer matches the commands.
The width is fixed so the text does not depend on the terminal that generated it.
"""

from __future__ import annotations

from collections.abc import Iterator

import click

WIDTH = 100


def commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command's path under `group`, groups before their commands, in the order
    `--help` lists them."""
    context = click.Context(group, info_name=" ".join(path) or "council")
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if command is None or command.hidden:
            continue
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))


def help_text(path: tuple[str, ...]) -> str:
    from council.cli import cli

    command: click.Command = cli
    parent = click.Context(cli, info_name="council", terminal_width=WIDTH, max_content_width=WIDTH)
    for name in path:
        assert isinstance(command, click.Group)  # noqa: S101 - paths come from commands()
        found = command.get_command(parent, name)
        assert found is not None  # noqa: S101
        command = found
        parent = click.Context(
            command, parent=parent, info_name=name, terminal_width=WIDTH, max_content_width=WIDTH
        )
    return command.get_help(parent)


def reference() -> str:
    """The Markdown between docs/cli.md's cog markers."""
    from council.cli import cli

    parts = ["## council\n\n```\n" + help_text(()) + "\n```\n"]
    for path in commands(cli):
        title = "council " + " ".join(path)
        parts.append(f"## {title}\n\n```\n{help_text(path)}\n```\n")
    return "\n" + "\n".join(parts) + "\n"
