"""Questions with known answers: reasoning-gym's procedural tasks, or a person's own JSONL.

reasoning-gym (pinned) makes each task's items from a seed, offline, the same every time, and
scores an answer with the task's own `score_answer` (1.0 right; some tasks give partial credit
for a near miss, which counts as wrong here: an answer is correct or it is not). A JSONL file
holds one `{"question": …, "answer": …}` object per line, scored by an extractor: `number`
(the values compare), `choice` (the letter), `regex:PATTERN` (group 1, else the match) or
`exact` (the answer line's text, case and surrounding space aside).

Every question is asked with one closing instruction, so that every system is read the same
way: end with a line `Answer: …`. What follows the last such line is the answer; without
one, the last line is (a model that ignores the instruction still gets a fair reading).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from council.deliberation.extract import last_number, make_extractor
from council.errors import BadRequest

INSTRUCTION = "\n\nThink briefly, then end with one line of the form `Answer: <your answer>`."
# "Answer: 5", "**Final answer:** 5", "The answer is 5", "answer = 5": the rest of that line
# "answer" then, within a few words, "is" / "was" / "would be" or a colon: "The answer to the
# question is: No" gives "No", and "a helpful answer. The answer is Yes" gives "Yes".
_STATED = r"\banswer\b[^\n:=]{0,40}?(?:\b(?:is|was|would\s+be)\b\s*[:=]?|[:=])[\s*`]*"
ANSWER_LINE = re.compile(_STATED + r"(\S.*?)\s*$", re.IGNORECASE | re.MULTILINE)
# vote mode reads the same (regex extractor: group 1); numeric tasks vote on numbers instead,
# yes/no tasks on the word
VOTE_EXTRACTOR = "regex:(?im)" + ANSWER_LINE.pattern
BINARY = ("yes", "no", "true", "false")
BINARY_WORD = re.compile(r"\b(yes|no|true|false)\b", re.IGNORECASE)
BINARY_VOTE = "regex:(?i)" + _STATED + r"(yes|no|true|false)\b"
NUMBER = re.compile(r"^[+\-\u2212]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$|^[+\-]?\.\d+$")
MAX_SIZE = 1000
MAX_FILE_ITEMS = 5000
MAX_QUESTION = 20_000
EXTRACTORS = ("number", "choice", "exact")


@dataclass(frozen=True, slots=True)
class Item:
    number: int  # 0-based, stable within a run
    question: str
    gold: str
    entry: dict[str, Any] = field(default_factory=dict)  # what the task's scorer needs


@dataclass(frozen=True, slots=True)
class Task:
    """A named set of items and how to score an answer to one of them."""

    name: str
    items: tuple[Item, ...]
    score: Callable[[str | None, Item], float]
    vote_extractor: str = VOTE_EXTRACTOR

    def prompt(self, item: Item) -> str:
        return item.question + INSTRUCTION

    def extract(self, text: str | None, item: Item) -> str | None:
        """The answer a system gave: its answer line; where the gold answer is a number, the
        number in it; where it is yes/no (or true/false), the first such word in it, written
        as the gold answer writes it."""
        line = answer_of(text)
        if numeric(item.gold):
            return last_number(line or "") or last_number(text or "")
        if item.gold.strip().lower() in BINARY:
            word = BINARY_WORD.search(line or "")
            return _cased(word[1], item.gold) if word else None
        return line


def _cased(word: str, like: str) -> str:
    like = like.strip()
    if like.isupper():
        return word.upper()
    return word.capitalize() if like[:1].isupper() else word.lower()


def numeric(text: str) -> bool:
    """A plain number ("-4", "1,200", "3.5"): such a gold answer is compared as a number."""
    return NUMBER.match(text.strip()) is not None


def answer_of(text: str | None) -> str | None:
    """What the last `Answer:` line says, else the last non-blank line; markdown trimmed."""
    if not text or not text.strip():
        return None
    found = ANSWER_LINE.findall(text)
    line = found[-1] if found else text.strip().splitlines()[-1]
    line = line.strip().strip("*`").strip()
    line = re.sub(r"[.。]+$", "", line).strip()
    return line or None


def reasoning_gym_task(name: str, size: int, seed: int) -> Task:
    _check_size(size)
    import reasoning_gym
    from reasoning_gym.factory import DATASETS

    if name not in DATASETS:
        close = [known for known in sorted(DATASETS) if name.lower() in known][:5]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise BadRequest(f"no reasoning-gym task {name!r}{hint}")
    dataset = reasoning_gym.create_dataset(name, size=size, seed=seed)
    items = tuple(
        Item(number, str(entry["question"]), str(entry["answer"]), _plain(entry))
        for number, entry in enumerate(dataset)
    )

    def score(answer: str | None, item: Item) -> float:
        try:
            return float(dataset.score_answer(answer, item.entry))
        except Exception:  # a scorer that chokes on a strange answer: that answer is wrong
            return 0.0

    vote = VOTE_EXTRACTOR
    if items and all(numeric(item.gold) for item in items):
        vote = "number"
    elif items and all(item.gold.strip().lower() in BINARY for item in items):
        vote = BINARY_VOTE
    return Task(name, items, score, vote)


def _plain(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry as JSON keeps it (stored with the item; the scorer reads the same shape)."""
    return dict(json.loads(json.dumps(entry, default=str)))


def jsonl_task(path: Path, extractor: str, size: int | None = None) -> Task:
    """Items from a JSONL file; a bad line is one error naming its number."""
    if size is not None:
        _check_size(size)
    read = _extractor(extractor)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BadRequest(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise BadRequest(f"{path} is not UTF-8 text") from None
    items: list[Item] = []
    for no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        question, gold = _line(f"{path}:{no}", line)
        if read(gold) is None:
            raise BadRequest(f"{path}:{no}: the {extractor} extractor reads no answer in {gold!r}")
        items.append(Item(len(items), question, gold))
        if len(items) > MAX_FILE_ITEMS:
            raise BadRequest(f"{path} has over {MAX_FILE_ITEMS} questions")
    if not items:
        raise BadRequest(f"{path} holds no questions")
    if size is not None:
        items = items[:size]

    def score(answer: str | None, item: Item) -> float:
        got = read(answer) if answer is not None else None
        return 1.0 if got is not None and got == read(item.gold) else 0.0

    vote = (
        extractor
        if extractor in ("number", "choice") or extractor.startswith("regex:")
        else (VOTE_EXTRACTOR)
    )
    return Task(path.name, tuple(items), score, vote)


def _line(where: str, line: str) -> tuple[str, str]:
    """One JSONL line's question and gold answer, or the reason it has none."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"{where}: not JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise BadRequest(f"{where}: a line must be an object with question and answer")
    question, answer = value.get("question"), value.get("answer")
    if not isinstance(question, str) or not question.strip():
        raise BadRequest(f'{where}: "question" must be non-empty text')
    if not isinstance(answer, str | int | float) or isinstance(answer, bool):
        raise BadRequest(f'{where}: "answer" must be text or a number')
    if len(question) > MAX_QUESTION:
        raise BadRequest(f"{where}: the question is over {MAX_QUESTION} characters")
    return question.strip(), str(answer).strip()


def _extractor(spec: str) -> Callable[[str], str | None]:
    if spec == "exact":
        return lambda text: (answer_of(text) or "").casefold() or None
    try:
        extract = make_extractor(spec)
    except ValueError as exc:
        raise BadRequest(str(exc).replace("number, choice", "number, choice, exact")) from None
    return lambda text: extract(answer_of(text) or "") or extract(text)


def _check_size(size: int) -> None:
    if not 1 <= size <= MAX_SIZE:
        raise BadRequest(f"--size must be 1 to {MAX_SIZE}, not {size}")
