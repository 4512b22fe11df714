"""The words the council says to its seats, in one place so they can be read and tuned together.

Every stage sees the conversation so far (earlier questions and the council's final answers) as
ordinary chat turns, then one user message for the stage's task. Reviewers see answers under
letters only, in an order shuffled for each reviewer; the chair sees names, reviews and the
aggregate, because its job is to weigh them.
"""

from __future__ import annotations

from collections.abc import Sequence

from council.deliberation.seats import Message

RANKING_HEADER = "FINAL RANKING:"


def history_messages(history: Sequence[tuple[str, str]]) -> list[Message]:
    messages: list[Message] = []
    for question, answer in history:
        messages.append({"role": "user", "content": question})
        messages.append({"role": "assistant", "content": answer})
    return messages


def review_prompt(question: str, answers: Sequence[tuple[str, str]]) -> str:
    """`answers` are (label, text) pairs in the order this reviewer sees them."""
    shown = "\n\n".join(f"Response {label}:\n{text}" for label, text in answers)
    example = "\n".join(f"{n}. Response {label}" for n, (label, _) in enumerate(answers, 1))
    return (
        "You are reviewing anonymous answers to the question below. Judge them on accuracy, "
        "completeness and clarity; the labels say nothing about who wrote them.\n\n"
        f"Question:\n{question}\n\n{shown}\n\n"
        "First write a short critique of each response. Then end your reply with a block "
        f"that starts with the line `{RANKING_HEADER}` and lists every response exactly "
        "once, best first, one per line, in exactly this form:\n\n"
        f"{RANKING_HEADER}\n{example}\n\n"
        "Write nothing after the ranking."
    )


def ranking_follow_up(labels: Sequence[str]) -> str:
    """Asked of a reviewer whose review ended without a ranking council could read."""
    shown = ", ".join(f"Response {label}" for label in labels)
    return (
        f"Now give only your final ranking of {shown}, best first, as the block that starts "
        f"with `{RANKING_HEADER}`."
    )


def chair_prompt(
    question: str,
    answers: Sequence[tuple[str, str]],
    reviews: Sequence[tuple[str, str]],
    standings: str,
) -> str:
    shown_answers = "\n\n".join(f"Answer from {seat}:\n{text}" for seat, text in answers)
    shown_reviews = "\n\n".join(f"Review by {seat}:\n{text}" for seat, text in reviews)
    return (
        "You chair a council of models. Each answered the question below; then each reviewed "
        "the others' answers anonymously and ranked them. Using the answers, the reviews and "
        "the aggregate ranking, write the single best final answer to the question. Answer the "
        "question directly; do not describe the council's process.\n\n"
        f"Question:\n{question}\n\n{shown_answers}\n\n"
        f"{shown_reviews or 'No reviews could be collected.'}\n\n"
        f"Aggregate ranking (best first):\n{standings or 'not available'}"
    )


def moa_layer_prompt(question: str, previous: Sequence[tuple[str, str]]) -> str:
    """A proposer in a later mixture-of-agents layer sees the previous layer's answers."""
    if not previous:
        return question
    shown = "\n\n".join(f"Answer {n}:\n{text}" for n, (_, text) in enumerate(previous, 1))
    return (
        "Here are answers other assistants gave to the question below. Use them as material: "
        "keep what is right, fix what is wrong, and write your own best answer.\n\n"
        f"Question:\n{question}\n\n{shown}"
    )


def aggregate_prompt(question: str, proposals: Sequence[tuple[str, str]]) -> str:
    shown = "\n\n".join(f"Answer {n}:\n{text}" for n, (_, text) in enumerate(proposals, 1))
    return (
        "You have been given answers from several assistants to the question below. Critically "
        "evaluate them, recognising that some may be biased or wrong, and synthesise a single "
        "accurate, well-structured final answer. Do not simply copy one of them.\n\n"
        f"Question:\n{question}\n\n{shown}"
    )


def vote_prompt(question: str, extractor: str) -> str:
    hint = {
        "number": "End your reply with a line `Answer: <number>`.",
        "choice": "End your reply with a line `Answer: <letter>`.",
    }.get(extractor.split(":", 1)[0], "End your reply with a line `Answer: <your answer>`.")
    return f"{question}\n\n{hint}"


def vote_follow_up(extractor: str) -> str:
    """Asked of a voter whose answer ended without an answer line council could read."""
    return f"Now give only your final answer. {vote_prompt('', extractor).strip()}"


def tie_prompt(
    question: str, answers: Sequence[tuple[str, str]], tied: Sequence[str], extractor: str
) -> str:
    shown = "\n\n".join(f"Answer from {seat}:\n{text}" for seat, text in answers)
    return (
        f"The council's vote on the question below is tied between: {', '.join(tied)}. "
        "As chair, read the reasoning and decide which is correct.\n\n"
        f"Question:\n{question}\n\n{shown}\n\n{vote_prompt('', extractor).strip()}"
    )
