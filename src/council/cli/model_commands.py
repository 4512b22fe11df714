"""`council models`: the GGUF files on the stick."""

from __future__ import annotations

from pathlib import Path

import click

from council.cli.common import (
    data_option,
    json_option,
    llama_server_option,
    prepared_folder,
    print_json,
    reports_errors,
    size_text,
)
from council.cli.progress import PullProgress
from council.settings import SEED


@click.group()
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
        print_json([model.to_dict() for model in found])
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

    folder = prepared_folder(data)
    request = PullRequest.parse(
        spec,
        file=file_name,
        revision=revision,
        force=force,
        memory=parse_size(memory, "--memory") if memory else None,
    )
    progress = PullProgress(quiet=as_json)
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
        print_json(result.to_dict())
        return
    if result.already:
        click.echo(f"{result.model} is already on the stick (same SHA-256): nothing to pull")
        return
    resumed = f", resumed at {size_text(result.resumed_from)}" if result.resumed_from else ""
    click.echo(f"pulled {result.model} ({size_text(result.size)}, SHA-256 verified{resumed})")
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
        print_json(facts)
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
        ("size", size_text(info.size_bytes)),
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

    folder = prepared_folder(data)
    found = find(folder.models, name)
    paths = set(found.info.shards or (found.info.path,))
    seated = [seat.name for seat in load_config(folder).seats if seat.model in paths]
    if seated:
        remove(folder.models, found, seated)  # raises: a seated model stays
    size = size_text(found.info.size_bytes)
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

    folder = prepared_folder(data)

    def find_tool(tool: str) -> Path | None:
        return find_llama_server(folder, llama_server).sibling(tool)

    result = split_model(folder, model, max_size, find_tool)
    if as_json:
        print_json(result.to_dict())
        return
    click.echo(f"split {result.model} into {len(result.shards)} shards:")
    for shard, size in zip(result.shards, result.sizes, strict=True):
        click.echo(f"  {shard}  ({size / 1024**2:.1f} MB)")
    click.echo(f"the original stays; delete {result.model} if you only need the shards")
