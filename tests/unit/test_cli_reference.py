"""The README's command table and docs/cli.md say what the commands really are."""

from __future__ import annotations

import click

from council.cli import cli
from council.cli.reference import commands, reference
from council.datafolder import project_root

ROOT = project_root()


def command_at(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    context = click.Context(cli, info_name="council")
    for name in path:
        assert isinstance(command, click.Group)
        found = command.get_command(context, name)
        assert found is not None
        command, context = found, click.Context(found, parent=context, info_name=name)
    return command


def runnable() -> list[tuple[str, ...]]:
    """Every command a person runs: groups only when they run on their own (`eval`)."""
    return [
        path
        for path in commands(cli)
        if not isinstance(command := command_at(path), click.Group)
        or command.invoke_without_command
    ]


def readme_rows() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| `./council ")]


def test_the_readme_table_has_a_row_for_every_command_naming_each_of_its_options() -> None:
    rows = [(row, row.removeprefix("| `./council ").split("`")[0].split()) for row in readme_rows()]
    for path in runnable():
        command = command_at(path)
        subcommands = set(command.commands) if isinstance(command, click.Group) else set()
        matching = [
            row
            for row, words in rows
            if tuple(words[: len(path)]) == path
            and (len(words) == len(path) or words[len(path)] not in subcommands)
        ]
        assert len(matching) == 1, f"README's command table has no row for council {path}"
        row = matching[0]
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                flag = max(param.opts, key=len)
                assert flag in row, f"council {' '.join(path)}: {flag} is not in its README row"


def test_the_readme_table_names_no_command_that_does_not_exist() -> None:
    every = {" ".join(path) for path in commands(cli)}
    runs = {" ".join(path) for path in runnable()}
    for row in readme_rows():
        words = row.removeprefix("| `./council ").split("`")[0].split()
        path: list[str] = []
        for word in words:
            if " ".join([*path, word]) not in every:
                break
            path.append(word)
        assert " ".join(path) in runs, row
        rest = words[len(path) :]
        assert not (rest and rest[0].isalpha() and rest[0].islower()), f"no such command: {row}"


def test_docs_cli_md_is_every_commands_help_as_the_commands_print_it() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    generated = text.split("]]] -->\n", 1)[1].split("<!-- [[[end]]] -->", 1)[0]
    assert generated == reference(), "docs/cli.md is stale: run `make docs`"
    for path in commands(cli):
        assert f"\n## council {' '.join(path)}\n" in generated
