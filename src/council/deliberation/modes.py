"""The three ways a council deliberates, written as plain sequences of stages.

synthesize  every seat answers; every seat reviews the others' answers under shuffled anonymous
            labels and ranks them; the rankings are aggregated; the chair writes the answer.
moa         mixture-of-agents: proposer layers (each layer sees the previous layer's answers),
            then an aggregator (the chair) synthesises.
vote        every seat answers; an extractor reads each final answer; the majority wins. A tie
            goes to the best aggregate rank when a review round is asked for, else the chair.

Each returns a `Verdict`; `run_round` stores it and streams `done`. Whatever happens to one seat
(failure, timeout) is recorded and shown, and the round goes on with the rest. Fewer than two
surviving answers end the round early with the one answer there is, and a note saying so.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from council.deliberation import prompts
from council.deliberation.extract import Tally, make_extractor, tally
from council.deliberation.ranking import Standing, aggregate, parse_ranking
from council.deliberation.rounds import Round, done
from council.types import Mode, OutputStatus, Stage, StageOutput

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class RoundFailed(Exception):
    """No answer could be produced at all; the message says why."""


@dataclass(slots=True)
class Verdict:
    answer: str
    result: dict[str, Any] = field(default_factory=dict)


async def run_mode(round_: Round) -> Verdict:
    mode = round_.options.mode
    if mode is Mode.MOA:
        return await mixture_of_agents(round_)
    if mode is Mode.VOTE:
        return await majority_vote(round_)
    return await synthesize(round_)


async def synthesize(round_: Round) -> Verdict:
    answers = await round_.ask_all(Stage.ANSWER, round_.options.seats, lambda seat: round_.question)
    survivors = _survivors(round_, answers)
    if len(survivors) == 1:
        return Verdict(survivors[0].content, {"chair": None, "notes": round_.notes})
    standings, reviews = await review(round_, survivors)
    chair_text, chair = await _chair(
        round_,
        prompts.chair_prompt(
            round_.question,
            [(o.seat, o.content) for o in survivors],
            [(o.seat, o.content) for o in reviews],
            _standings_text(standings),
        ),
        standings,
    )
    return Verdict(
        chair_text,
        {"chair": chair, "standings": [asdict(s) for s in standings], "notes": round_.notes},
    )


async def review(
    round_: Round, answers: Sequence[StageOutput]
) -> tuple[list[Standing], list[StageOutput]]:
    """Stage 2: anonymous reviews with per-reviewer shuffled labels, then the aggregate."""
    shuffler = random.Random(round_.options.shuffle_seed)  # noqa: S311 - ordering, not secrets
    reviewers = [output.seat for output in answers]
    texts = {output.seat: output.content for output in answers}
    round_.emit("stage_start", stage=Stage.REVIEW.value, layer=0, seats=reviewers)

    async def one(reviewer: str) -> StageOutput:
        pool = [
            seat for seat in reviewers if not (round_.options.exclude_self and seat == reviewer)
        ]
        shuffler.shuffle(pool)
        labels = {
            LETTERS[i]: seat for i, seat in enumerate(pool)
        }  # label → seat, this reviewer only

        def read_ranking(output: StageOutput) -> None:
            parsed = parse_ranking(output.content, list(labels)) if output.content else None
            if output.status is OutputStatus.DONE and parsed is not None:
                ranking = [labels[label] for label in parsed.order] if parsed.order else None
                problem = parsed.problem
            else:
                ranking, problem = None, output.error
            output.details.update({"labels": labels, "ranking": ranking, "problem": problem})

        shown = [(label, texts[seat]) for label, seat in labels.items()]
        prompt = prompts.review_prompt(round_.question, shown)
        output = await round_.ask(Stage.REVIEW, reviewer, prompt, annotate=read_ranking)
        round_.emit("review_done", seat=reviewer, status=output.status.value, **output.details)
        return output

    outputs = await asyncio.gather(*(one(reviewer) for reviewer in reviewers))
    rankings = [o.details["ranking"] for o in outputs if o.details.get("ranking")]
    standings = aggregate(rankings, reviewers)
    round_.emit("ranking", standings=[asdict(s) for s in standings], valid=len(rankings),
                reviews=len(outputs))  # fmt: skip
    return standings, done(outputs)


async def mixture_of_agents(round_: Round) -> Verdict:
    previous: list[StageOutput] = []
    for layer in range(1, max(1, round_.options.layers) + 1):
        prompt = prompts.moa_layer_prompt(round_.question, [(o.seat, o.content) for o in previous])
        outputs = await round_.ask_all(Stage.ANSWER, round_.options.seats, _same(prompt), layer)
        previous = _survivors(round_, outputs, stage=f"layer {layer}")
        if len(previous) == 1:
            return Verdict(previous[0].content, {"chair": None, "notes": round_.notes})
    text, chair = await _chair(
        round_, prompts.aggregate_prompt(round_.question, [(o.seat, o.content) for o in previous])
    )
    return Verdict(text, {"chair": chair, "layers": round_.options.layers, "notes": round_.notes})


async def majority_vote(round_: Round) -> Verdict:
    spec = round_.options.extractor
    extract = make_extractor(spec)
    prompt = prompts.vote_prompt(round_.question, spec)
    round_.emit("stage_start", stage=Stage.ANSWER.value, layer=0, seats=list(round_.options.seats))

    def read_vote(output: StageOutput) -> None:
        if output.status is OutputStatus.DONE:
            output.details["extracted"] = extract(output.content)

    answers = await asyncio.gather(*(
        round_.ask(Stage.ANSWER, seat, prompt, annotate=read_vote) for seat in round_.options.seats
    ))  # fmt: skip
    survivors = done(answers)
    if not survivors:
        raise RoundFailed(_nobody_answered(answers))
    counted = tally({o.seat: o.details["extracted"] for o in survivors})
    round_.emit("vote", **_tally_dict(counted))
    if not counted.leaders:
        raise RoundFailed(f"no seat gave an answer the '{spec}' extractor could read")
    winner, decided_by = counted.leaders[0], "majority"
    standings: list[Standing] = []
    if len(counted.leaders) > 1:
        winner, decided_by, standings = await _break_tie(round_, counted, survivors)
    votes = counted.counts[winner]
    answer = f"{winner}\n\n(votes: {votes} of {len(survivors)}; decided by {decided_by})"
    return Verdict(
        answer,
        {"winner": winner, "decided_by": decided_by, "tally": _tally_dict(counted),
         "standings": [asdict(s) for s in standings], "notes": round_.notes},
    )  # fmt: skip


async def _break_tie(
    round_: Round, counted: Tally, survivors: list[StageOutput]
) -> tuple[str, str, list[Standing]]:
    leaders = set(counted.leaders)
    if round_.options.review_ties and len(survivors) > 1:
        standings, _ = await review(round_, survivors)
        for standing in standings:  # best first
            answer = counted.by_seat.get(standing.seat)
            if answer in leaders and standing.votes:
                return answer, "ranking", standings
    candidates = [o for o in survivors if counted.by_seat[o.seat] in leaders]
    text, chair = await _chair(
        round_,
        prompts.tie_prompt(round_.question, [(o.seat, o.content) for o in candidates],
                           sorted(leaders), round_.options.extractor),
    )  # fmt: skip
    pick = make_extractor(round_.options.extractor)(text)
    if pick in leaders:
        return pick, f"the chair ({chair})", []
    round_.note(f"the chair's pick {pick!r} is not one of the tied answers; taking the first")
    return counted.leaders[0], "first tied answer", []


async def _chair(round_: Round, prompt: str, standings: Sequence[Standing] = ()) -> tuple[str, str]:
    """Ask the chair; if it cannot answer, the best-ranked other seat takes the chair."""
    chair = round_.options.chair
    ranked = [s.seat for s in standings if s.votes] + list(round_.options.seats)
    fallbacks = [seat for seat in dict.fromkeys(ranked) if seat != chair]
    for candidate in [chair, *fallbacks[:1]]:
        round_.emit("stage_start", stage=Stage.CHAIR.value, layer=0, seats=[candidate])
        output = await round_.ask(Stage.CHAIR, candidate, prompt)
        if output.status is OutputStatus.DONE:
            return output.content, candidate
        if candidate == chair and fallbacks:
            round_.note(f"the chair {chair} could not answer ({output.error}); "
                        f"{fallbacks[0]} takes the chair")  # fmt: skip
    raise RoundFailed("neither the chair nor a stand-in could write the final answer")


def _same(prompt: str) -> Callable[[str], str]:
    """Every seat gets this prompt."""
    return lambda seat: prompt


def _survivors(
    round_: Round, outputs: Sequence[StageOutput], stage: str = "stage 1"
) -> list[StageOutput]:
    survivors = done(outputs)
    if not survivors:
        raise RoundFailed(_nobody_answered(outputs))
    if len(survivors) == 1:
        round_.note(f"only {survivors[0].seat} answered in {stage}; with fewer than two answers "
                    "there is nothing to compare, so this is its answer")  # fmt: skip
    return survivors


def _nobody_answered(outputs: Sequence[StageOutput]) -> str:
    reasons = "; ".join(f"{o.seat}: {o.error}" for o in outputs) or "no seats were asked"
    return f"no seat answered ({reasons})"


def _standings_text(standings: Sequence[Standing]) -> str:
    return "\n".join(
        f"{n}. {s.seat} (mean rank {s.mean_rank:.2f}, {s.votes} rankings)"
        for n, s in enumerate((s for s in standings if s.mean_rank is not None), 1)
    )


def _tally_dict(counted: Tally) -> dict[str, Any]:
    return {"counts": counted.counts, "leaders": list(counted.leaders),
            "abstained": list(counted.abstained), "by_seat": counted.by_seat}  # fmt: skip
