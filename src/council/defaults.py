"""The seats council chooses for a stick nobody has configured, and what it says about the rest.

A stick with no config.toml is seated by the stick's models: one seat per chat model; a single
chat model gets three seats that differ in sampling (a council of one model's samples is a
strong baseline, and they share one engine); a stick with no chat model gets three seats of
the starter model (models/starter.py, fetched once into the build cache); where that cannot be
had (offline, never fetched), three demo seats on generated random-weight models, labelled as
noise. Those seats are written with `generated = true`: while every seat is generated, a
restart re-reads the stick, so a model copied into models/ is seated and a deleted one is
dropped. Once the person has chosen a seat, council never changes their seats, and start-up
lists the models that are on the stick but not seated.

A config.toml that exists but lists no seats is reported and left alone: a file cut short (a
stick pulled out mid-write, an empty file) must not be "repaired" by replacing the user's
seats with the defaults.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from council.config import HubConfig, SeatConfig, load_config, save_config
from council.datafolder import DataFolder
from council.errors import ConfigError, DataFolderError, PackageError
from council.models import starter
from council.models.catalog import ModelInfo, scan
from council.models.table import BASE_MODEL

log = logging.getLogger("council")

DEMO_SEATS = (("demo-1", 1), ("demo-2", 2), ("demo-3", 3))
DEMO_FOLDER = "demo"
# Three samplers of one model, told apart by name: (suffix, temperature, seed).
SAMPLED = (("careful", 0.2, 1), ("balanced", 0.7, 2), ("bold", 1.1, 3))
STARTER_SEAT_PREFIX = "smollm2"
ADD_MODELS_HINT = (
    "Only demo models (random weights: their answers are noise). To add real models, copy "
    "GGUF files into {models} and restart council, or list them with `council models list`."
)
STARTER_HINT = (
    "The starter model (SmolLM2-135M-Instruct) is tiny: real words, weak answers. Add a bigger "
    "model: copy a GGUF file into {models} and restart council."
)


def demo_model_path(name: str) -> str:
    return f"{DEMO_FOLDER}/{name}.gguf"


def demo_seats(*, generated: bool = False) -> tuple[SeatConfig, ...]:
    return tuple(
        SeatConfig(name=name, model=demo_model_path(name), generated=generated)
        for name, _ in DEMO_SEATS
    )


def sampled_seats(prefix: str, model: str) -> tuple[SeatConfig, ...]:
    """Three generated seats of one model, a careful, a balanced and a bold sampler."""
    return tuple(
        SeatConfig(
            name=f"{prefix[: 63 - len(suffix)]}-{suffix}",
            model=model,
            temperature=temperature,
            seed=seed,
            # One slot each: the three share an engine, so together they answer three at once,
            # and a KV cache per slot is most of a small model's memory.
            slots=1,
            generated=True,
        )
        for suffix, temperature, seed in SAMPLED
    )


def chat_models(models: list[ModelInfo]) -> list[ModelInfo]:
    """The models worth seating by default: loadable, real, with a chat template, and not the
    starter (which seats only a stick that has nothing better)."""
    return [
        model
        for model in models
        if model.valid
        and not model.demo
        and model.has_chat_template
        and not model.path.startswith(f"{starter.FOLDER}/")
    ]


@dataclass(frozen=True, slots=True)
class Choice:
    seats: tuple[SeatConfig, ...]
    note: str | None = None  # why council chose these rather than better ones


def choose_seats(folder: DataFolder, models: list[ModelInfo]) -> Choice:
    """The generated seats for the stick's models as they are now."""
    chat = chat_models(models)
    if len(chat) == 1:
        return Choice(sampled_seats(seat_name_for(chat[0].path), chat[0].path))
    if chat:
        return Choice(
            tuple(
                SeatConfig(name=seat_name_for(model.path), model=model.path, generated=True)
                for model in chat
            )
        )
    try:
        model = starter.seat_starter(folder.models)
    except (PackageError, OSError) as exc:
        note = f"the starter model could not be had ({exc}); demo seats instead"
        return Choice(demo_seats(generated=True), note)
    return Choice(sampled_seats(STARTER_SEAT_PREFIX, model))


def ensure_seats(folder: DataFolder) -> HubConfig:
    """The hub config. With no config.toml, or one whose seats are all generated, the seats are
    (re)chosen for the stick's models and written; demo models the seats need are made."""
    path = folder.config_file
    config = load_config(folder)
    if not config.seats and path.exists():
        raise ConfigError(
            f"{path} lists no [[seats]] (was it cut short?): add a [[seats]] table, or move the "
            "file aside and council writes one with the default seats"
        )
    if config.seats and not all(seat.generated for seat in config.seats):
        try:
            _ensure_demo_models(folder, config.seats)
        except OSError as exc:
            raise DataFolderError(
                f"cannot write the demo models to {folder.models}: {exc.strerror or exc}"
            ) from None
        return config
    choice = choose_seats(folder, scan(folder.models))
    if choice.note:
        log.warning("%s", choice.note)
    try:
        if {s.model for s in choice.seats} != {s.model for s in config.seats}:
            # Only a change of models replaces them: a generated seat edited by hand stays.
            config = replace(config, seats=choice.seats)
            _ensure_demo_models(folder, config.seats)
            save_config(folder, config)
        else:
            _ensure_demo_models(folder, config.seats)
    except OSError as exc:
        raise DataFolderError(
            f"cannot write the default seats to {folder.root}: {exc.strerror or exc}"
        ) from None
    return config


def only_demo(config: HubConfig) -> bool:
    return all(seat.model.startswith(f"{DEMO_FOLDER}/") for seat in config.enabled_seats)


def only_starter(config: HubConfig) -> bool:
    seats = config.enabled_seats
    return bool(seats) and all(s.model.startswith(f"{starter.FOLDER}/") for s in seats)


GUEST_MODELS_PLACE = "the stick's models/ folder"  # a phone is not told the laptop's paths


def seats_hint(config: HubConfig, models: str) -> str | None:
    """The banner for a stick seated only by demo or starter models: what to do about it, with
    `models` naming where model files go."""
    if only_demo(config):
        return ADD_MODELS_HINT.format(models=models)
    if only_starter(config):
        return STARTER_HINT.format(models=models)
    return None


def stick_report(config: HubConfig, models: list[ModelInfo]) -> list[str]:
    """What start-up says about the models folder: files that cannot be used (with the reason),
    base models, and chat models the person's seats leave out."""
    lines = [f"models/{m.path} cannot be used: {m.reason}" for m in models if not m.valid]
    lines += [
        f"models/{m.path}: {BASE_MODEL} (not seated)"
        for m in models
        if m.valid and not m.demo and not m.has_chat_template
    ]
    if config.seats and not all(seat.generated for seat in config.seats):
        seated = {seat.model for seat in config.seats}
        lines += [
            f"models/{m.path} is on the stick but not seated: seat it in the page's Seats panel "
            f'or add [[seats]] name = "{seat_name_for(m.path)}", model = "{m.path}" to config.toml'
            for m in chat_models(models)
            if m.path not in seated
        ]
    return lines


def _ensure_demo_models(folder: DataFolder, seats: tuple[SeatConfig, ...]) -> None:
    seeds = dict(DEMO_SEATS)
    for seat in seats:
        path = seat.model_path(folder)
        stem = path.stem
        if seat.model == demo_model_path(stem) and not path.exists():
            from council.models.demo import write_demo_model  # numpy: only when one is missing

            path.parent.mkdir(parents=True, exist_ok=True)
            write_demo_model(path, seed=seeds.get(stem, 0), name=stem)


def seat_name_for(model_path: str) -> str:
    stem = model_path.rsplit("/", 1)[-1].removesuffix(".gguf")
    cleaned = "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in stem).strip("-.")
    return (cleaned or "seat")[:64]
