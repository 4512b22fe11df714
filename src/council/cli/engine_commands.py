"""`council engine`: build and inspect llama.cpp."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from council.cli.common import (
    data_option,
    json_option,
    llama_server_option,
    print_json,
    reports_errors,
    say,
)
from council.cli.progress import BuildProgress


@click.group()
def engine() -> None:
    """Build or inspect the llama.cpp engine."""


@engine.command("build")
@click.option(
    "--portable",
    is_flag=True,
    help="Build every x86-64 CPU variant as loadable backends, so one build runs on any laptop.",
)
@click.option("--jobs", "-j", type=click.IntRange(1), default=None, help="Parallel compile jobs.")
@click.option("--force", is_flag=True, help="Rebuild even if this build already exists.")
@reports_errors
def engine_build(portable: bool, jobs: int | None, force: bool) -> None:
    """Build llama-server and its tools from the pinned llama.cpp sources, then self-test it
    on this CPU (a build that crashes here is rebuilt without the instruction sets that trap)."""
    from council.engine.build import build_engine, default_layout

    build_engine(
        default_layout(),
        portable=portable,
        jobs=jobs,
        force=force,
        report=say,
        progress=BuildProgress(),
    )


@engine.command("status")
@data_option
@llama_server_option
@json_option
@reports_errors
def engine_status(data: Path | None, llama_server: Path | None, as_json: bool) -> None:
    """Show which llama-server council would run: its build, features and self-test here."""
    from council.datafolder import resolve_data_folder
    from council.engine.binary import describe, find_llama_server
    from council.engine.firstuse import engine_report

    folder = resolve_data_folder(data)
    folder.ensure_exists()
    binary = find_llama_server(folder, llama_server)
    info = {**describe(binary).to_dict(), **engine_report(binary, folder)}
    if as_json:
        print_json(info)
        return
    for label, value in _engine_lines(info):
        click.echo(f"{label:<12} {value}")


def _engine_lines(info: dict[str, Any]) -> list[tuple[str, str]]:
    cpu = info["cpu"]
    lines = [
        ("binary", f"{info['path']} ({info['source']})"),
        ("version", f"{info['version']} (build {info['build']}, commit {info['commit'] or '?'})"),
        ("variant", info["variant"]),
        ("compiler", info["compiler"] or "unknown"),
        ("features", ", ".join(info["features"]) or "none reported"),
        ("cpu", f"{cpu['model']} (fingerprint {cpu['fingerprint']})"),
    ]
    if info["instructions"] is not None:
        how = " (what -march=native gave)" if info["native"] else " (chosen by the self-test)"
        lines.append(("instructions", " ".join(info["instructions"]) + how))
    from council.engine.selftest import SelfTest

    test = SelfTest.from_dict(info["selftest"])
    if test is not None:
        args = f" with {' '.join(test.args)}" if test.args else ""
        lines.append(("self-test", f"{test.summary()} on this CPU{args}, {test.date}"))
    else:
        when = "runs on the hub's first start here" if info["selftest_checked"] else "not run"
        lines.append(("self-test", f"none on this CPU ({when})"))
    lines += [("dropped", f"{item['name']}: {item['reason']}") for item in info["dropped"]]
    if info["runtime_args"]:
        lines.append(("engine args", " ".join(info["runtime_args"])))
    if info["note"]:
        lines.append(("note", info["note"]))
    return lines
