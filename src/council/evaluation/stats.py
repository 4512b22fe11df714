"""The figures of an evaluation: accuracy with a bootstrap interval, and two judge biases.

The 95% interval is a percentile bootstrap (2000 resamples of the items with replacement,
numpy's generator seeded by the run, so a report is the same each time it is shown). Position
bias: of the reviews that gave a ranking, the share that put the first-shown answer (label A)
first, against the chance rate (the mean of 1/k over those reviews, k the answers a reviewer
saw). Self-preference: with `exclude_self` off, the share of reviews that put the reviewer's
own answer first, against the same chance rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

RESAMPLES = 2000


@dataclass(frozen=True, slots=True)
class Rate:
    hits: int
    n: int
    chance: float | None  # None when no review counted

    @property
    def rate(self) -> float | None:
        return self.hits / self.n if self.n else None

    def to_dict(self) -> dict[str, object]:
        return {"hits": self.hits, "n": self.n, "rate": self.rate, "chance": self.chance}


def accuracy(correct: Sequence[bool]) -> float | None:
    return sum(correct) / len(correct) if correct else None


def bootstrap_ci(
    correct: Sequence[bool], seed: int = 0, resamples: int = RESAMPLES
) -> tuple[float, float] | None:
    if not correct:
        return None
    values = np.asarray(correct, dtype=float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(values), size=(resamples, len(values)))
    means = values[draws].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def position_bias(reviews: Sequence[Mapping[str, Any]]) -> Rate:
    """`reviews`: each `{"reviewer", "labels": {"A": seat, …}, "ranking": [seat, …] | None}`."""
    ranked = [r for r in reviews if r.get("ranking") and r.get("labels")]
    hits = sum(r["ranking"][0] == r["labels"].get("A") for r in ranked)
    return Rate(hits, len(ranked), _chance(ranked))


def self_preference(reviews: Sequence[Mapping[str, Any]]) -> Rate:
    """Over reviews that saw their own answer among the labels (exclude_self off)."""
    own = [r for r in reviews if r.get("ranking") and _saw_own(r)]
    hits = sum(r["ranking"][0] == r["reviewer"] for r in own)
    return Rate(hits, len(own), _chance(own))


def _chance(reviews: Sequence[Mapping[str, Any]]) -> float | None:
    if not reviews:
        return None
    return sum(1 / len(r["labels"]) for r in reviews) / len(reviews)


def _saw_own(review: Mapping[str, Any]) -> bool:
    return review.get("reviewer") in (review.get("labels") or {}).values()
