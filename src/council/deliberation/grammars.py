"""Structured parts of an answer that a local engine is made to give: a review's ranking, a
vote's answer line.

A small model writes a fair critique and then forgets the FINAL RANKING block, or numbers it
wrong; a vote's answer line goes missing the same way. Where the seat is llama-server, which
obeys a GBNF grammar (its `grammar` request field), a review whose text yields no ranking gets
one short second request in the same conversation: "now give the ranking", under a grammar
that admits exactly one permutation of the labels that reviewer was shown, so the reply always
parses. The prompt of the first request is still in the engine's slot cache, so the second one
costs the few tokens it writes. Asking for the block after a free critique, rather than
constraining the end of the first answer, leaves the critique as the model writes it (a
grammar over a whole answer would have to spell out "any text without the header", which
GBNF cannot say) and costs nothing when the model complied (measured in
benchmarks/shared_engine.py). The reply is appended to the answer, so what is stored reads as
one review, and the output records how its ranking was had (`ranking_by`: text or grammar).

Remote seats and browser tabs are asked in plain text only; their answers are read by the
text parser alone.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from council.deliberation import prompts

# Labels up to which the permutations are spelled out: 6! = 720 alternatives is a grammar
# llama-server compiles in milliseconds; 7! would be 5040, and councils are not that big.
MAX_GRAMMAR_LABELS = 6


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A short second request for what the first answer did not yield."""

    needed: Callable[[str], bool]  # given the answer's text: is the follow-up needed?
    prompt: str
    grammar: str
    max_tokens: int


def _literal(text: str) -> str:
    return json.dumps(text)  # a GBNF string literal escapes as a JSON string does


def ranking_grammar(labels: Sequence[str]) -> str | None:
    """A GBNF grammar for `FINAL RANKING:` and exactly one permutation of `labels`, one
    `n. Response X` per line; None where there are too many labels to spell out."""
    if not labels or len(labels) > MAX_GRAMMAR_LABELS:
        return None
    orders = [
        "\n".join(f"{n}. Response {label}" for n, label in enumerate(order, 1))
        for order in itertools.permutations(labels)
    ]
    header = _literal(prompts.RANKING_HEADER + "\n")
    return f"root ::= {header} ( {' | '.join(map(_literal, orders))} )"


def ranking_follow_up(labels: Sequence[str], parsed: Callable[[str], bool]) -> FollowUp | None:
    grammar = ranking_grammar(labels)
    if grammar is None:
        return None
    return FollowUp(
        needed=lambda text: not parsed(text),
        prompt=prompts.ranking_follow_up(labels),
        grammar=grammar,
        # A token per character at worst (the demo models' vocabulary is bytes).
        max_tokens=len(prompts.RANKING_HEADER) + 16 * len(labels) + 4,
    )


_NUMBER = r'"-"? [0-9]{1,15} ("." [0-9]{1,10})?'


def answer_grammar(spec: str) -> str | None:
    """A GBNF grammar for the `Answer: …` line of a vote extractor, where one can say it:
    number and choice; a regex extractor's pattern is the operator's, not a grammar."""
    kind, colon, argument = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "number" and not colon:
        return f'root ::= "Answer: " {_NUMBER}'
    if kind == "choice":
        letters = argument.strip() if colon else "ABCD"
        return f'root ::= "Answer: " ( {" | ".join(_literal(letter) for letter in letters)} )'
    return None


def vote_follow_up(spec: str, extracted: Callable[[str], bool]) -> FollowUp | None:
    grammar = answer_grammar(spec)
    if grammar is None:
        return None
    return FollowUp(
        needed=lambda text: not extracted(text),
        prompt=prompts.vote_follow_up(spec),
        grammar=grammar,
        max_tokens=40,  # "Answer: " and the longest number the grammar admits, a byte a token
    )
