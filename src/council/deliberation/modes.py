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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from council.deliberation import grammars, prompts
from council.deliberation.events import EventType
from council.deliberation.extract import Tally, make_extractor, tally
from council.deliberation.ranking import Standing, aggregate, critique, parse_ranking
from council.deliberation.rounds import Round, done
from council.types import Mode, OutputStatus, Stage, StageOutput

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
PromptFor = Callable[[str], Awaitable[str]]  # a stage's prompt for one seat


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
    answers = await round_.ask_all(Stage.ANSWER, round_.options.seats, _same(round_.question))
    survivors = _survivors(round_, answers)
    if len(survivors) == 1:
        return Verdict(survivors[0].content, {"chair": None, "notes": round_.notes})
    standings, reviews = await review(round_, survivors)

    def render(texts: Sequence[str]) -> str:
        shown_answers = [(o.seat, t) for o, t in zip(survivors, texts, strict=False)]
        shown_reviews = [(o.seat, t) for o, t in zip(reviews, texts[len(survivors) :], strict=True)]
        return prompts.chair_prompt(
            round_.question, shown_answers, shown_reviews, _standings_text(standings)
        )

    critiques = [critique(o.content) for o in reviews]

    async def chair_prompt(seat: str) -> str:
        return await round_.fit(seat, [*(o.content for o in survivors), *critiques], render)

    chair_text, chair = await _chair(round_, chair_prompt, standings)
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
    round_.emit(EventType.STAGE_START, stage=Stage.REVIEW.value, layer=0, seats=reviewers)

    async def one(reviewer: str) -> StageOutput:
        pool = [
            seat for seat in reviewers if not (round_.options.exclude_self and seat == reviewer)
        ]
        shuffler.shuffle(pool)
        # Each reviewer gets its own label → seat map, so position bias averages out.
        labels = {LETTERS[i]: seat for i, seat in enumerate(pool)}

        def read_ranking(output: StageOutput) -> None:
            parsed = parse_ranking(output.content, list(labels)) if output.content else None
            by = "grammar" if output.details.pop("followed_up", False) else "text"
            if output.status is OutputStatus.DONE and parsed is not None:
                ranking = [labels[label] for label in parsed.order] if parsed.order else None
                problem = parsed.problem
            else:
                ranking, problem = None, output.error
            output.details.update(
                {
                    "labels": labels,
                    "ranking": ranking,
                    "ranking_by": by if ranking else None,
                    "problem": problem,
                }
            )

        follow_up = grammars.ranking_follow_up(
            list(labels), lambda text: parse_ranking(text, list(labels)).parsed
        )

        prompt = await round_.fit(
            reviewer,
            [texts[seat] for seat in labels.values()],
            lambda shown: prompts.review_prompt(
                round_.question, list(zip(labels, shown, strict=True))
            ),
        )
        output = await round_.ask(
            Stage.REVIEW, reviewer, prompt, annotate=read_ranking, follow_up=follow_up
        )
        round_.emit(
            EventType.REVIEW_DONE, seat=reviewer, status=output.status.value, **output.details
        )
        return output

    outputs = await asyncio.gather(*(one(reviewer) for reviewer in reviewers))
    rankings = [o.details["ranking"] for o in outputs if o.details.get("ranking")]
    standings = aggregate(rankings, reviewers)
    round_.emit(
        EventType.RANKING,
        standings=[asdict(s) for s in standings],
        valid=len(rankings),
        reviews=len(outputs),
    )
    return standings, done(outputs)


async def mixture_of_agents(round_: Round) -> Verdict:
    previous: list[StageOutput] = []
    for layer in range(1, max(1, round_.options.layers) + 1):
        build = _with_answers(round_, previous, prompts.moa_layer_prompt)
        outputs = await round_.ask_all(Stage.ANSWER, round_.options.seats, build, layer)
        previous = _survivors(round_, outputs, stage=f"layer {layer}")
        if len(previous) == 1:
            return Verdict(previous[0].content, {"chair": None, "notes": round_.notes})
    text, chair = await _chair(round_, _with_answers(round_, previous, prompts.aggregate_prompt))
    return Verdict(text, {"chair": chair, "layers": round_.options.layers, "notes": round_.notes})


async def majority_vote(round_: Round) -> Verdict:
    spec = round_.options.extractor
    extract = make_extractor(spec)
    prompt = prompts.vote_prompt(round_.question, spec)
    round_.emit(
        EventType.STAGE_START, stage=Stage.ANSWER.value, layer=0, seats=list(round_.options.seats)
    )

    def read_vote(output: StageOutput) -> None:
        by = "grammar" if output.details.pop("followed_up", False) else "text"
        if output.status is OutputStatus.DONE:
            extracted = output.details["extracted"] = extract(output.content)
            output.details["extracted_by"] = by if extracted is not None else None

    follow_up = grammars.vote_follow_up(spec, lambda text: extract(text) is not None)
    answers = await asyncio.gather(
        *(
            round_.ask(Stage.ANSWER, seat, prompt, annotate=read_vote, follow_up=follow_up)
            for seat in round_.options.seats
        )
    )
    survivors = done(answers)
    if not survivors:
        raise RoundFailed(_nobody_answered(answers))
    counted = tally({o.seat: o.details["extracted"] for o in survivors})
    round_.emit(EventType.VOTE, **_tally_dict(counted))
    if not counted.leaders:
        raise RoundFailed(f"no seat gave an answer the '{spec}' extractor could read")
    winner, decided_by = counted.leaders[0], "majority"
    standings: list[Standing] = []
    if len(counted.leaders) > 1:
        winner, decided_by, standings = await _break_tie(round_, counted, survivors)
    votes, voters = counted.counts[winner], len(survivors)
    if decided_by == "majority" and votes * 2 <= voters:
        decided_by = "plurality"  # the most votes, but not more than half of them
    # The answer is the winner alone (what a client asked for: "the number only" gets one
    # number); the tally travels beside it, in the result.
    return Verdict(
        winner,
        {
            "winner": winner,
            "votes": votes,
            "voters": voters,
            "decided_by": decided_by,
            "tally": _tally_dict(counted),
            "standings": [asdict(s) for s in standings],
            "notes": round_.notes,
        },
    )


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

    def tie_prompt(question: str, answers: Sequence[tuple[str, str]]) -> str:
        return prompts.tie_prompt(question, answers, sorted(leaders), round_.options.extractor)

    text, chair = await _chair(round_, _with_answers(round_, candidates, tie_prompt))
    pick = make_extractor(round_.options.extractor)(text)
    if pick in leaders:
        return pick, f"the chair ({chair})", []
    if pick is None:
        round_.note("the chair named none of the tied answers; taking the first")
    else:
        round_.note(f"the chair's pick “{pick}” is not one of the tied answers; taking the first")
    return counted.leaders[0], "first tied answer", []


async def _chair(
    round_: Round, prompt_for: PromptFor, standings: Sequence[Standing] = ()
) -> tuple[str, str]:
    """Ask the chair; if it cannot answer, the best-ranked seat that can takes the chair."""
    chair = round_.options.chair
    output = await _ask_chair(round_, chair, prompt_for)
    if output.status is OutputStatus.DONE:
        return output.content, chair
    ranked = [s.seat for s in standings if s.votes] + list(round_.options.seats)
    stand_in = next(
        (s for s in dict.fromkeys(ranked) if s != chair and round_.can_answer(s)),
        None,
    )
    if stand_in is None:
        raise RoundFailed(
            f"the chair {chair} could not answer ({output.error}) and no other seat can stand in"
        )
    round_.note(f"the chair {chair} could not answer ({output.error}); {stand_in} takes the chair")
    output = await _ask_chair(round_, stand_in, prompt_for)
    if output.status is OutputStatus.DONE:
        return output.content, stand_in
    raise RoundFailed(f"neither the chair nor {stand_in} could write the final answer")


async def _ask_chair(round_: Round, seat: str, prompt_for: PromptFor) -> StageOutput:
    round_.emit(EventType.STAGE_START, stage=Stage.CHAIR.value, layer=0, seats=[seat])
    return await round_.ask(Stage.CHAIR, seat, await prompt_for(seat))


def _with_answers(
    round_: Round,
    answers: Sequence[StageOutput],
    render: Callable[[str, Sequence[tuple[str, str]]], str],
) -> PromptFor:
    """A prompt builder showing `answers` to each seat, shortened to fit that seat."""

    def shown(texts: Sequence[str]) -> str:
        return render(round_.question, [(o.seat, t) for o, t in zip(answers, texts, strict=True)])

    async def build(seat: str) -> str:
        return await round_.fit(seat, [o.content for o in answers], shown)

    return build


def _same(prompt: str) -> PromptFor:
    """Every seat gets this prompt."""

    async def build(seat: str) -> str:
        return prompt

    return build


def _survivors(
    round_: Round, outputs: Sequence[StageOutput], stage: str = "stage 1"
) -> list[StageOutput]:
    survivors = done(outputs)
    if not survivors:
        raise RoundFailed(_nobody_answered(outputs))
    if len(survivors) == 1:
        round_.note(
            f"only {survivors[0].seat} answered in {stage}; with fewer than two answers "
            "there is nothing to compare, so this is its answer"
        )
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
    return {
        "counts": counted.counts,
        "leaders": list(counted.leaders),
        "abstained": list(counted.abstained),
        "by_seat": counted.by_seat,
    }
