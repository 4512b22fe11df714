"""The embedded default: what `council up` seats when there is no config.toml yet.

A stick with real models gets one seat per valid model. A stick with none gets three demo seats
on generated random-weight models with different seeds, so the whole product runs end to end
out of the box, clearly labelled as noise, with a banner saying how to add real models.

Only a missing config.toml is written this way. One that exists but lists no seats is
reported and left alone: a file cut short (a stick pulled out mid-write, an empty file) must
not be "repaired" by replacing the user's seats with the defaults.
"""

from __future__ import annotations

from dataclasses import replace

from council.config import HubConfig, SeatConfig, load_config, save_config
from council.datafolder import DataFolder
from council.errors import ConfigError
from council.models.catalog import scan

DEMO_SEATS = (("demo-1", 1), ("demo-2", 2), ("demo-3", 3))
DEMO_FOLDER = "demo"
ADD_MODELS_HINT = (
    "Only demo models (random weights: their answers are noise). To add real models, copy "
    "GGUF files into {models} and restart council, or list them with `council models list`."
)


def demo_model_path(name: str) -> str:
    return f"{DEMO_FOLDER}/{name}.gguf"


def demo_seats() -> tuple[SeatConfig, ...]:
    return tuple(SeatConfig(name=name, model=demo_model_path(name)) for name, _ in DEMO_SEATS)


def ensure_seats(folder: DataFolder) -> HubConfig:
    """Return the hub config; with no config.toml, write one with the default seats (and make
    any demo models they need)."""
    path = folder.config_file
    config = load_config(folder)
    if config.seats:
        _ensure_demo_models(folder, config.seats)
        return config
    if path.exists():
        raise ConfigError(
            f"{path} lists no [[seats]] (was it cut short?): add a [[seats]] table, or move the "
            "file aside and council writes one with the default seats"
        )
    real = [model for model in scan(folder.models) if model.valid and not model.demo]
    if real:
        seats = tuple(
            SeatConfig(name=seat_name_for(model.path), model=model.path) for model in real
        )
    else:
        seats = demo_seats()
    config = replace(config, seats=seats)
    _ensure_demo_models(folder, seats)
    save_config(folder, config)
    return config


def only_demo(config: HubConfig) -> bool:
    return all(seat.model.startswith(f"{DEMO_FOLDER}/") for seat in config.enabled_seats)


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
