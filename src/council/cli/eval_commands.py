"""`council eval`: measured answer quality."""

from __future__ import annotations

import json
from pathlib import Path

import click

from council.cli.common import (
    MAX_TOKENS,
    data_option,
    json_option,
    llama_server_option,
    print_json,
    reports_errors,
    say_err,
)
from council.cli.progress import EvalProgress


@click.group("eval", invoke_without_command=True)
@click.option("--task", "tasks", multiple=True, help="A reasoning-gym task (repeat for several).")
@click.option(
    "--file",
    "questions",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help='Your own questions: JSONL of {"question": …, "answer": …}.',
)
@click.option(
    "--extractor",
    default="exact",
    show_default=True,
    help="How --file answers compare: number, choice, regex:PATTERN or exact.",
)
@click.option("--size", type=int, default=20, show_default=True, help="Items per task.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the task's items.")
@click.option(
    "--systems",
    default=None,
    help="Comma-separated: seat:NAME, seats, self-consistency, synthesize, moa, vote "
    "(default: all).",
)
@click.option(
    "--max-tokens",
    type=click.IntRange(MAX_TOKENS.low, MAX_TOKENS.high),
    default=256,
    show_default=True,
    help="Longest answer per seat and stage.",
)
@data_option
@llama_server_option
@json_option
@click.pass_context
@reports_errors
def eval_command(
    ctx: click.Context,
    tasks: tuple[str, ...],
    questions: Path | None,
    extractor: str,
    size: int,
    seed: int,
    systems: str | None,
    max_tokens: int,
    data: Path | None,
    llama_server: Path | None,
    as_json: bool,
) -> None:
    """Measure the council against each seat alone on questions with known answers (stored;
    the same command resumes a run that was interrupted)."""
    if ctx.invoked_subcommand is not None:
        return
    import asyncio

    from council.evaluating import EvalRequest, evaluate
    from council.evaluation.report import render

    chosen = tuple(s.strip() for s in (systems or "").split(",") if s.strip())
    requests = [
        EvalRequest(task=name, size=size, seed=seed, systems=chosen, max_tokens=max_tokens)
        for name in tasks
    ]
    if questions is not None:
        requests.append(
            EvalRequest(
                file=questions,
                extractor=extractor,
                size=size,
                systems=chosen,
                max_tokens=max_tokens,
            )
        )
    if not requests:
        raise click.UsageError("say what to ask: --task NAME (reasoning-gym) or --file FILE")
    reports = []
    for request in requests:
        progress = EvalProgress(quiet=as_json)
        try:
            report = asyncio.run(
                evaluate(data, request, llama_server, progress=progress, say=say_err)
            )
        finally:
            progress.close()
        reports.append(report)
        if not as_json:
            click.echo(render(report))
    if as_json:
        print_json(reports[0] if len(reports) == 1 else reports)


@eval_command.command("list")
@data_option
@json_option
@reports_errors
def eval_list(data: Path | None, as_json: bool) -> None:
    """List the stored evaluation runs, newest first."""
    from council.evaluating import list_runs
    from council.evaluation.report import render_runs

    runs = list_runs(data)
    click.echo(json.dumps(runs, indent=2) if as_json else render_runs(runs))


@eval_command.command("show")
@click.argument("run")
@data_option
@json_option
@reports_errors
def eval_show(run: str, data: Path | None, as_json: bool) -> None:
    """Show one run's table again (--json: every item and answer too)."""
    from council.evaluating import show
    from council.evaluation.report import render

    report = show(data, run)
    click.echo(json.dumps(report, indent=2) if as_json else render(report))
