"""The `council` command: each subcommand parses its options and calls one library function."""

from __future__ import annotations

import functools
import json
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from council import __version__
from council.errors import CouncilError
from council.settings import (
    DEFAULT_LAN_PORT,
    PAIRING_TTL,
    PAIRING_TTL_DEFAULT,
    SEED,
    RoundDefaults,
    ranges,
)

MAX_TOKENS = ranges(RoundDefaults)["max_tokens"]

F = TypeVar("F", bound=Callable[..., Any])

data_option = click.option(
    "--data",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Data folder (default: $COUNCIL_DATA, else council-data/ beside council).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
llama_server_option = click.option(
    "--llama-server",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Use this llama-server binary (default: $COUNCIL_LLAMA_SERVER, the data folder, "
    "the project build, then PATH).",
)


def reports_errors(function: F) -> F:
    """Turn council's own errors into one clear line and exit status 1."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except CouncilError as exc:
            raise click.ClickException(str(exc)) from None
        except sqlite3.Error as exc:  # a damaged or full store found after it was opened
            from council.store.db import store_error

            raise click.ClickException(str(store_error(exc))) from None

    return wrapper  # type: ignore[return-value]


@click.group()
@click.version_option(__version__, prog_name="council")
def cli() -> None:
    """council: a private AI hub on a USB stick."""


@cli.command()
@data_option
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port for the local web page (default 8710; a busy default picks another).",
)
@llama_server_option
@click.option("--no-browser", is_flag=True, help="Do not open the page in a browser.")
@click.option("--lan", is_flag=True, help="Also serve phones over HTTPS on the LAN.")
@click.option(
    "--lan-host",
    default="0.0.0.0",  # noqa: S104 - the LAN listener is opt-in and behind device pairing
    show_default=True,
    help="Address the LAN listener binds.",
)
@click.option(
    "--lan-port",
    type=click.IntRange(1, 65535),
    default=DEFAULT_LAN_PORT,
    show_default=True,
    help="Port of the LAN listener.",
)
@click.option(
    "--tls-cert",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Your own LAN certificate (PEM, with its chain).",
)
@click.option(
    "--tls-key",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="The key of --tls-cert (PEM).",
)
@click.option(
    "--no-owner-auth",
    is_flag=True,
    help="Let every account on this laptop use the hub, no login (a single-user machine).",
)
@reports_errors
def up(
    data: Path | None,
    port: int | None,
    llama_server: Path | None,
    no_browser: bool,
    lan: bool,
    lan_host: str,
    lan_port: int,
    tls_cert: Path | None,
    tls_key: Path | None,
    no_owner_auth: bool,
) -> None:
    """Start the seats' engines and serve the hub on http://127.0.0.1:8710."""
    import asyncio

    from council.hub import Hub, UpOptions

    options = UpOptions(
        data=data,
        port=port,
        llama_server=llama_server,
        open_browser=not no_browser,
        lan=lan,
        lan_host=lan_host,
        lan_port=lan_port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        owner_auth=not no_owner_auth,
    )
    asyncio.run(Hub(options, say=_say).serve())


@cli.group()
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
        report=_say,
        progress=_BuildProgress(),
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
        _print_json(info)
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


@cli.group()
def models() -> None:
    """List, pull, show and remove the models on the stick; fetch the starter, write a demo
    model, or split one for browsers."""


@models.command("list")
@data_option
@json_option
@reports_errors
def models_list(data: Path | None, as_json: bool) -> None:
    """List the GGUF files under <data>/models with their metadata."""
    from council.datafolder import resolve_data_folder
    from council.models.catalog import scan
    from council.models.table import render_models

    folder = resolve_data_folder(data)
    folder.ensure_exists()
    found = scan(folder.models)
    if as_json:
        _print_json([model.to_dict() for model in found])
    else:
        click.echo(render_models(found, folder.models))


@models.command("starter")
@reports_errors
def models_starter() -> None:
    """Fetch the starter model (SmolLM2-135M-Instruct, Apache-2.0) into the build cache once,
    so a stick prepared here seats it offline."""
    from council.models.starter import starter_model

    path = starter_model()
    click.echo(f"starter model: {path} (licence: {path.with_name('SmolLM2-LICENSE')})")


@models.command("demo")
@data_option
@click.option("--name", default="demo", show_default=True, help="File name (without .gguf).")
@click.option(
    "--seed",
    type=click.IntRange(SEED.low, SEED.high),
    default=0,
    show_default=True,
    help="Random seed of the weights.",
)
@reports_errors
def models_demo(data: Path | None, name: str, seed: int) -> None:
    """Write a small random-weight demo model (its output is noise) for trying council out."""
    from council.datafolder import resolve_data_folder
    from council.defaults import DEMO_FOLDER
    from council.models.demo import write_demo_model

    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise click.BadParameter("a plain file name, without folders", param_hint="--name")
    folder = resolve_data_folder(data)
    folder.prepare()
    target = folder.models / DEMO_FOLDER / f"{name}.gguf"
    target.parent.mkdir(parents=True, exist_ok=True)
    path = write_demo_model(target, seed=seed, name=name)
    click.echo(f"wrote demo model {path} (random weights, seed {seed}: its output is noise)")


@models.command("pull")
@click.argument("spec", metavar="REPO[:QUANT]")
@click.option("--file", "file_name", default=None, help="Pull exactly this file of the repo.")
@click.option(
    "--revision", default="main", show_default=True, help="Branch, tag or commit to pull from."
)
@click.option(
    "--memory",
    default=None,
    help="Fit the choice to this much memory, like 8G (default: what is available here).",
)
@click.option("--force", is_flag=True, help="Pull a model even if it is too big for the memory.")
@data_option
@json_option
@reports_errors
def models_pull(
    spec: str,
    file_name: str | None,
    revision: str,
    memory: str | None,
    force: bool,
    data: Path | None,
    as_json: bool,
) -> None:
    """Pull a GGUF model from Hugging Face (HF_ENDPOINT for a mirror, HF_TOKEN for gated repos)
    into <data>/models/<repo-name>/: the largest quantization that fits unless you name one,
    resumed where a killed pull stopped, checked against the repo's SHA-256."""
    from council.models.split import parse_size
    from council.pull.choice import render_plan
    from council.pull.hf import HubSource
    from council.pull.pulling import PullRequest, Reporter, pull
    from council.settings import Environment

    folder = _folder(data)
    request = PullRequest.parse(
        spec,
        file=file_name,
        revision=revision,
        force=force,
        memory=parse_size(memory, "--memory") if memory else None,
    )
    progress = _PullProgress(quiet=as_json)
    reporter = Reporter(
        plan=lambda plan: None if as_json else click.echo(render_plan(plan)),
        file=progress.begin,
        progress=progress,
    )
    try:
        result = pull(folder, HubSource(Environment.read()), request, reporter)
    finally:
        progress.close()
    if as_json:
        _print_json(result.to_dict())
        return
    if result.already:
        click.echo(f"{result.model} is already on the stick (same SHA-256): nothing to pull")
        return
    resumed = f", resumed at {_size(result.resumed_from)}" if result.resumed_from else ""
    click.echo(f"pulled {result.model} ({_size(result.size)}, SHA-256 verified{resumed})")
    click.echo(f"seat it: the page's Seats panel, or add a seat with model = {result.model!r}")


@models.command("show")
@click.argument("name")
@data_option
@json_option
@reports_errors
def models_show(name: str, data: Path | None, as_json: bool) -> None:
    """Show one model: its GGUF header facts, where it came from, the memory a seat needs."""
    from council.datafolder import resolve_data_folder
    from council.engine.memory import estimate
    from council.models.manage import details, find
    from council.settings import CONTEXT_SIZE

    folder = resolve_data_folder(data)
    folder.ensure_exists()
    found = find(folder.models, name)
    info = found.info
    memory = estimate(info.path, info.size_bytes, info.kv_bytes_per_token, CONTEXT_SIZE)
    facts = {**details(found), "memory_estimate": memory.total, "memory_ctx_size": CONTEXT_SIZE}
    if as_json:
        _print_json(facts)
        return
    origin = found.source
    rows = [
        ("model", info.path),
        ("valid", "yes" if info.valid else f"no: {info.reason}"),
        ("name", info.name or "-"),
        ("arch", info.architecture or "-"),
        ("params", f"{info.parameters:,}" if info.parameters is not None else "-"),
        ("quant", info.quantization or "-"),
        ("context", str(info.context_length or "-")),
        ("layers", str(info.block_count or "-")),
        ("chat", "yes (has a chat template)" if info.has_chat_template else "no: base model"),
        ("size", _size(info.size_bytes)),
        ("files", "\n             ".join(str(path) for path in found.files)),
        ("memory", memory.describe().removeprefix(f"{info.path} ")),
    ]
    if origin is not None:
        rows += [
            ("source", f"{origin.endpoint}/{origin.repo} ({origin.file})"),
            ("revision", origin.revision),
            ("sha256", origin.sha256),
            ("pulled", origin.pulled_at),
        ]
    for label, value in rows:
        click.echo(f"{label:<12} {value}")


@models.command("rm")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before deleting.")
@data_option
@reports_errors
def models_rm(name: str, yes: bool, data: Path | None) -> None:
    """Delete a model from the stick (its shards and source records too); refuses a seated one."""
    from council.config import load_config
    from council.models.manage import find, remove

    folder = _folder(data)
    found = find(folder.models, name)
    paths = set(found.info.shards or (found.info.path,))
    seated = [seat.name for seat in load_config(folder).seats if seat.model in paths]
    if seated:
        remove(folder.models, found, seated)  # raises: a seated model stays
    size = _size(found.info.size_bytes)
    if not yes and not click.confirm(f"delete {found.info.path} ({size})?", default=False):
        raise click.ClickException("nothing deleted")
    removed = remove(folder.models, found, ())
    click.echo(f"deleted {found.info.path} ({size}, {len(removed)} files)")


@models.command("split")
@click.argument("model")
@data_option
@click.option(
    "--max-size",
    default="512M",
    show_default=True,
    help="Largest shard, in M or G (wllama loads at most 2 GB per file).",
)
@llama_server_option
@json_option
@reports_errors
def models_split(
    model: str, data: Path | None, max_size: str, llama_server: Path | None, as_json: bool
) -> None:
    """Write MODEL's shards beside it (llama-gguf-split), for browsers that load ≤ 2 GB a file."""
    from council.engine.binary import find_llama_server
    from council.models.split import split_model

    folder = _folder(data)

    def find_tool(tool: str) -> Path | None:
        return find_llama_server(folder, llama_server).sibling(tool)

    result = split_model(folder, model, max_size, find_tool)
    if as_json:
        _print_json(result.to_dict())
        return
    click.echo(f"split {result.model} into {len(result.shards)} shards:")
    for shard, size in zip(result.shards, result.sizes, strict=True):
        click.echo(f"  {shard}  ({size / 1024**2:.1f} MB)")
    click.echo(f"the original stays; delete {result.model} if you only need the shards")


@cli.command()
@data_option
@click.option("--no-browser", is_flag=True, help="Print the link only.")
@reports_errors
def login(data: Path | None, no_browser: bool) -> None:
    """Print (and open) a one-time link that logs a browser in to the running hub's page."""
    import asyncio
    import webbrowser

    from council.client import login_link
    from council.datafolder import resolve_data_folder
    from council.hub import has_display

    url = asyncio.run(login_link(resolve_data_folder(data)))
    click.echo(url)
    if not no_browser and has_display():
        webbrowser.open(url)


@cli.command()
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
            data, question, options, conversation, llama_server, as_json=as_json, write=_write
        )
    )
    if status != "done":
        sys.exit(130 if status == "cancelled" else 1)


@cli.command()
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
        _print_json(found)
        return
    if not found:
        click.echo('no conversations yet: ask one with `council ask "..."`')
    for item in found:
        click.echo(
            f"{item['id']}  {item['updated_at'][:16].replace('T', ' ')}  "
            f"{item['messages']:>3} msg  {item['title']}"
        )


@cli.command()
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
        _print_json(export.to_json_document(conversation))
    else:
        click.echo(export.to_markdown(conversation), nl=False)


@cli.command()
@data_option
@click.option("--name", default=None, help="The device's name (else the phone names itself).")
@click.option(
    "--ttl",
    type=click.IntRange(PAIRING_TTL.low, PAIRING_TTL.high),
    default=PAIRING_TTL_DEFAULT,
    show_default=True,
    help="Seconds the code stays valid.",
)
@click.option(
    "--confirm",
    is_flag=True,
    help="Hold the pairing until you approve it here; both sides show a code.",
)
@json_option
@reports_errors
def pair(data: Path | None, name: str | None, ttl: int, confirm: bool, as_json: bool) -> None:
    """Mint a one-time pairing code and show it as a QR code for a phone to scan."""
    import time

    from council.asking import open_store
    from council.phone import await_confirmation, invite, qr_text

    with open_store(data) as db:
        folder = _folder(data)
        made = invite(db, folder, name=name, ttl=ttl, confirm=confirm)
        if as_json:
            _print_json(made.to_dict())
            return
        click.echo(qr_text(made.url))
        click.echo(f"Scan with the phone's camera, or open:\n  {made.url}")
        click.echo(
            f"The code works once, until {made.expires_at}. CA fingerprint (SHA-256): "
            f"{made.fingerprint}"
        )
        if made.comparison is None:
            return
        click.echo(f"Waiting for the phone; it will show {made.comparison}.")

        def ask(claim: Any) -> bool:
            who = f"{claim.name or 'A device'} at {claim.address}"
            question = f"{who} wants to pair and shows {claim.comparison}. Approve?"
            return click.confirm(question, default=False)

        paired = await_confirmation(db, made.comparison, ask, deadline=time.monotonic() + ttl)
        click.echo(f"paired {paired}" if paired else "not paired")


@cli.group("eval", invoke_without_command=True)
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
        progress = _EvalProgress(quiet=as_json)
        try:
            report = asyncio.run(
                evaluate(data, request, llama_server, progress=progress, say=_say_err)
            )
        finally:
            progress.close()
        reports.append(report)
        if not as_json:
            click.echo(render(report))
    if as_json:
        _print_json(reports[0] if len(reports) == 1 else reports)


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


@cli.group()
def devices() -> None:
    """Paired devices: list, rename, revoke (works whether or not the hub runs)."""


@devices.command("list")
@data_option
@json_option
@reports_errors
def devices_list(data: Path | None, as_json: bool) -> None:
    """List paired devices, revoked ones included."""
    from council.asking import open_store
    from council.store.devices import list_devices

    with open_store(data) as db:
        found = list_devices(db)
    if as_json:
        _print_json([device.to_dict() for device in found])
        return
    if not found:
        click.echo("no paired devices: pair one with `council pair`")
    for device in found:
        seen = (device.last_seen_at or "never")[:16].replace("T", " ")
        state = f"revoked {device.revoked_at[:16].replace('T', ' ')}" if device.revoked_at else ""
        click.echo(
            f"{device.id}  {device.name:<24} last seen {seen} "
            f"{device.last_address or ''}  {state}".rstrip()
        )


@devices.command("revoke")
@click.argument("device_id")
@data_option
@reports_errors
def devices_revoke(device_id: str, data: Path | None) -> None:
    """Revoke a device: its token stops working on its next request."""
    from council.asking import open_store
    from council.store.devices import revoke_device

    with open_store(data) as db:
        device = revoke_device(db, device_id)
    click.echo(f"revoked {device.id} ({device.name})")


@devices.command("rename")
@click.argument("device_id")
@click.argument("name")
@data_option
@reports_errors
def devices_rename(device_id: str, name: str, data: Path | None) -> None:
    """Rename a device."""
    from council.asking import open_store
    from council.store.devices import rename_device

    with open_store(data) as db:
        device = rename_device(db, device_id, name)
    click.echo(f"renamed {device.id} to {device.name}")


def _folder(data: Path | None) -> Any:
    from council.datafolder import resolve_data_folder

    folder = resolve_data_folder(data)
    folder.prepare()
    return folder


def _size(n: int) -> str:
    from council.units import human_size

    return human_size(n)


class _PullProgress:
    """tqdm's bar on a terminal (bytes, rate, ETA); a plain line every 10 s in a log."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.bar: Any = None
        self.name = ""
        self.last = 0.0

    def begin(self, remote: Any, no: int, count: int) -> None:
        import time

        self.close()
        self.name = remote.path if count == 1 else f"{remote.path} ({no}/{count})"
        self.last = time.monotonic()
        if self.tty and not self.quiet:
            from tqdm import tqdm

            self.bar = tqdm(
                total=remote.size, unit="B", unit_scale=True, desc=self.name, file=sys.stderr
            )

    def __call__(self, done: int, total: int) -> None:
        import time

        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            return
        now = time.monotonic()
        if now - self.last >= 10 or done == total:
            self.last = now
            click.echo(
                f"{self.name}: {_size(done)} of {_size(total)} ({100 * done // max(total, 1)}%)",
                err=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class _BuildProgress:
    """One updating line on a terminal; a line per 10% when the output is a log."""

    def __init__(self) -> None:
        self.last = -10
        self.tty = sys.stdout.isatty()

    def __call__(self, percent: int, step: str) -> None:
        if self.tty:
            click.echo(f"\r[{percent:3d}%] {step[:70]:<70}", nl=percent >= 100)
        elif percent >= self.last + 10:
            self.last = percent
            click.echo(f"[{percent:3d}%] {step}")


def _say(line: str) -> None:
    click.echo(line)


def _say_err(line: str) -> None:
    click.echo(line, err=True)


class _EvalProgress:
    """A bar per system on a terminal, with its running accuracy; a line per system in a log."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.bar: Any = None
        self.system = ""

    def __call__(self, system: str, done: int, total: int, accuracy: float | None) -> None:
        if self.quiet:
            return
        shown = "-" if accuracy is None else f"{100 * accuracy:.0f}%"
        if system != self.system:
            self.close()
            self.system = system
            if self.tty:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=system, unit="item", file=sys.stderr)
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            self.bar.set_postfix_str(f"accuracy {shown}")
        elif done == total:
            click.echo(f"{system}: {done} items, accuracy {shown}", err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _write(text: str) -> None:
    click.echo(text, nl=False)


def _print_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2))


def main() -> None:
    cli(prog_name="council")
