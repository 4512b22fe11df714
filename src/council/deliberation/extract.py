"""Pulling a checkable final answer out of a seat's text, and counting the votes.

Vote mode asks every seat the same question and takes the majority answer. Free text can't be
compared, so an extractor reduces each text to a short canonical string, or None when the
text commits to nothing. Extractors follow the conventions language models use to state an
answer, and they prefer to abstain rather than guess: an abstaining seat costs one vote, but
a misread one adds a vote for an answer nobody gave.

Numbers (`last_number`)
    Where the answer is stated explicitly, it wins: first the last ``\\boxed{…}`` that holds a
    number, then the last "answer is / answer: / answer =" phrase (also "final answer",
    "answer was", "answer would be") with a number later on its line. If neither holds a
    number, the last number anywhere in the text is used. Within a box or an answer line the
    first number counts ("The answer is 5 apples, not 6" gives 5), unless the span contains
    ``=``, in which case the first number after the last ``=`` counts ("Answer: 2 + 3 = 5"
    gives 5).

    A number is ASCII digits with an optional sign (``-``, ``+``, or the Unicode minus sign),
    thousands separators in groups of three (``1,234``), a decimal part (``3.5``, ``.5``), and
    an exponent of at most three digits (``1e3``). A comma is never a decimal point, so ``12,34``
    reads as 12 and 34. Currency signs and ``%`` are left out ("$1,200" gives 1200, "12%" gives
    12). Digits glued to letters are part of a word and are not numbers: ``gpt4``, ``4o``,
    ``3rd``, ``5kg``, ``H2O``, and also ``GPT-4`` and ``COVID-19``, where a hyphen joins the
    digits to a word. After a number or a closing bracket, a minus is an operator, not a sign
    (``3-4`` and ``5 - 3`` hold no negative number); a plus sign is simply dropped. Dotted
    versions such as ``1.2.3`` are not numbers. Fractions (``1/2``, ``½``, ``\\frac``)
    are not evaluated.

    The result is normalised so that equal values compare equal as strings: no sign for zero,
    no ``+``, no thousands separators, no leading zeros, no trailing fractional zeros, and no
    exponent ("1,234.50" gives "1234.5", "3.0" gives "3", "1e3" gives "1000", "-0" gives "0").

Choice letters (`choice_letter`)
    Several statement forms are recognised, and the one that occurs LAST in the text wins,
    because models revise ("The answer is (B)… on reflection, I choose C"):

    * ``\\boxed{B}``, ``\\boxed{\\text{B}}``, ``\\boxed{(B)}``
    * "answer/option/choice is …", "answer: …", "answer = …" followed by the letter, possibly in
      parentheses or brackets, in bold, or after "option"/"choice"/"letter"
    * "I choose / I pick / I select / I'd go with / going with" followed by the same
    * a last non-blank line that holds only the letter: ``**D**``, ``(D)``, ``D.``,
      ``Answer: D``

    The letter must not be glued to other letters ("answer is Both" is not B). A lower-case letter
    in running text counts only when it is set apart (in parentheses or bold, after "option", or
    followed by punctuation or the end of the line), so "the answer is a bit subtle" is not A.
    Upper case "A" at the start of a sentence ("A good answer is…") is never a statement at all.
    A hedge ("B or C", "B/C", "B and C", "B, C") blocks the statement: if it is the last one,
    the result is None rather than an earlier, abandoned choice. That also silences "The answer
    is B, C is wrong", since abstaining is the safer mistake. Letters outside `choices` are not
    statements: "Answer: I think C" gives None, not I.

Regular expressions (`regex_extractor`)
    The last match of the pattern. When the pattern has groups, group 1 is the answer, otherwise
    the whole match. The answer is stripped, and an empty one counts as no answer. The pattern is
    the operator's own, so its running time is the operator's business.

All built-in patterns are bounded or anchored to a line, so their work is linear in the length
of the text.
"""

from __future__ import annotations

import functools
import re
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

__all__ = [
    "Extractor",
    "Tally",
    "choice_letter",
    "last_number",
    "make_extractor",
    "regex_extractor",
    "tally",
]

Extractor = Callable[[str], str | None]

# How many explicit answer markers are examined, newest first. A text that states its answer
# more often than this is spamming, and the newest statements are the ones that matter.
_MARKERS_EXAMINED = 16
_SPAN = 300  # characters after an answer marker that may hold the answer

_NUMBER = re.compile(
    r"(?P<sign>[-+\u2212]?)"
    r"(?:(?P<int>[0-9]{1,3}(?:,[0-9]{3})++|[0-9]++)(?P<frac>\.[0-9]++)?|(?P<bare_frac>\.[0-9]++))"
    r"(?:[eE](?P<exp>[-+]?[0-9]{1,3})(?![0-9]))?"
)
_BOXED = re.compile(r"\\boxed\s*+\{")
_ANSWER_PHRASE = re.compile(
    r"\b(?:final\s++)?answer\b[ \t*_]{0,6}(?:is\b|was\b|would\s++be\b|should\s++be\b|[:=])",
    re.IGNORECASE,
)


def _word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def _numbers(text: str, start: int = 0, stop: int | None = None) -> Iterator[str]:
    """Every number in `text` that is not part of a word or a version string, normalised.

    With `start` and `stop`, only numbers starting in that range count, but each is read whole
    and judged by the characters around it in the full text.
    """
    return (_normalise(match, negative) for match, negative in _number_matches(text, start, stop))


def _number_matches(
    text: str, start: int = 0, stop: int | None = None
) -> Iterator[tuple[re.Match[str], bool]]:
    """The matches `_numbers` accepts, each with whether its sign makes it negative."""
    stop = len(text) if stop is None else stop
    # The search window ends a little after `stop`, so that a range holding no number cannot
    # send the search through the rest of a huge text; a number that runs past the window is
    # matched again in full.
    window = min(len(text), stop + 64)
    for found in _NUMBER.finditer(text, start, window):
        if found.start() >= stop:
            return
        match = found
        if found.end() == window < len(text):
            match = _NUMBER.match(text, found.start()) or found
        begin, end = match.span()
        sign = match["sign"]
        before = text[begin - 1] if begin else ""
        if _word_char(before):
            if not sign:
                continue  # glued to a word: "gpt4"
            if sign != "+" and not before.isdigit():
                continue  # a hyphenated name: "GPT-4", "COVID-19"
            sign = ""  # an operator: "3-4", "x+4"
        elif sign and _follows_operand(text, begin):
            sign = ""  # subtraction with spaces: "5 - 3"
        elif before == "." and begin >= 2 and text[begin - 2].isdigit():
            continue  # the tail of a version: "1.2.3"
        after = text[end : end + 2]
        if after[:1] and _word_char(after[0]):
            continue
        if after[:1] == "." and after[1:2].isdigit():
            continue
        yield match, sign in ("-", "\u2212")


def _follows_operand(text: str, index: int) -> bool:
    """Whether a number or a closing bracket comes just before `index`, across a few spaces."""
    stop = max(0, index - 4)
    while index > stop and text[index - 1] in " \t":
        index -= 1
    return index > 0 and (text[index - 1].isdigit() or text[index - 1] in ")]")


def _normalise(match: re.Match[str], negative: bool) -> str:
    whole = (match["int"] or "").replace(",", "")
    fraction = (match["frac"] or match["bare_frac"] or ".")[1:]
    exponent = int(match["exp"] or 0)
    digits = whole + fraction
    point = len(whole) + exponent  # where the decimal point falls within `digits`
    if point <= 0:
        digits = "0" * (1 - point) + digits
        point = 1
    elif point > len(digits):
        digits += "0" * (point - len(digits))
    integral = digits[:point].lstrip("0") or "0"
    fractional = digits[point:].rstrip("0")
    text = f"{integral}.{fractional}" if fractional else integral
    return f"-{text}" if negative and text != "0" else text


def _answer_in(text: str, start: int, stop: int) -> str | None:
    """The number a box or answer line states: the first, or the first after the last =."""
    equals = text.rfind("=", start, stop)
    if equals >= 0:
        found = next(_numbers(text, equals + 1, stop), None)
        if found is not None:
            return found
    return next(_numbers(text, start, stop), None)


def _boxed_spans(text: str) -> Iterator[tuple[int, int]]:
    """Where the last few ``\\boxed{…}`` hold their contents, newest first; braces may nest."""
    starts = deque((m.end() for m in _BOXED.finditer(text)), maxlen=_MARKERS_EXAMINED)
    for start in reversed(starts):
        depth = 1
        end = start
        limit = min(len(text), start + _SPAN)
        while end < limit:
            if text[end] == "{":
                depth += 1
            elif text[end] == "}":
                depth -= 1
                if depth == 0:
                    break
            end += 1
        yield start, end


def _answer_line_spans(text: str) -> Iterator[tuple[int, int]]:
    """Where the text after the last few answer phrases lies, up to the end of its line."""
    ends = deque((m.end() for m in _ANSWER_PHRASE.finditer(text)), maxlen=_MARKERS_EXAMINED)
    for start in reversed(ends):
        newline = text.find("\n", start, start + _SPAN)
        yield start, newline if newline >= 0 else min(len(text), start + _SPAN)


def last_number(text: str) -> str | None:
    """The number the text gives as its answer, normalised; None when it holds no number.

    See the module docstring for which number is chosen and what counts as a number.
    """
    for start, stop in (*_boxed_spans(text), *_answer_line_spans(text)):
        found = _answer_in(text, start, stop)
        if found is not None:
            return found
    last = None
    for last in _number_matches(text):  # noqa: B007 - only the last one is wanted
        pass
    return None if last is None else _normalise(*last)


@dataclass(frozen=True, slots=True)
class _ChoicePatterns:
    boxed: re.Pattern[str]
    statement: re.Pattern[str]
    alone: re.Pattern[str]
    hedge: re.Pattern[str]


@functools.lru_cache(maxsize=32)
def _choice_patterns(choices: str) -> _ChoicePatterns:
    letter = f"(?P<letter>[{choices}{choices.lower()}])(?![A-Za-z0-9])"
    return _ChoicePatterns(
        boxed=re.compile(
            rf"\\boxed\s*+\{{\s*+(?:\\text(?:bf)?\s*+\{{\s*+)?[(\[]?\s*+{letter}\s*+[)\]]?\s*+\}}"
        ),
        statement=re.compile(
            r"(?i:\b(?:answer|option|choice)\b[ \t*_]{0,6}(?:is\b|would\s++be\b|[:=])"
            r"|\b(?:choose|chose|pick|picked|select|selected|go\s++with|going\s++with)\b)"
            r"[ \t*_:]{0,6}(?P<keyword>(?i:option|choice|letter)[ \t]++)?[(\[]?[ \t*_]{0,3}"
            rf"{letter}(?=(?P<after>[^\n]{{0,40}}))"
        ),
        alone=re.compile(
            r"[\s>*_]*+(?:(?i:answer|final\s++answer|option|choice)[ \t*_]*+[:=]?[ \t*_]*+)?"
            rf"[(\[]?[ \t*_]*+{letter}[ \t*_]*+[)\]]?[ \t*_.!]*+"
        ),
        hedge=re.compile(
            rf"[ \t*_)\]]*+(?:/|,|\b(?i:or|and)\b)[ \t*_(\[]*+[{choices}](?![A-Za-z0-9])"
        ),
    )


# What follows a lower-case letter that stands apart from the sentence: "answer is b." / "(b)".
_SET_APART = re.compile(r"[*_)\]]*+(?:[.,;:!?)]|[ \t]*+$)")


def choice_letter(text: str, choices: str = "ABCD") -> str | None:
    """The option letter the text commits to, upper case; None without a confident statement.

    `choices` is the set of valid letters, in any case. Which statements count is described in
    the module docstring. Raises ValueError when `choices` is empty or holds anything other than
    ASCII letters.
    """
    patterns = _choice_patterns(_check_choices(choices))
    # (position, letter); None for a hedged statement, which overrides earlier ones.
    candidates: list[tuple[int, str | None]] = [
        (match.start(), match["letter"].upper()) for match in patterns.boxed.finditer(text)
    ]
    for match in patterns.statement.finditer(text):
        letter, after = match["letter"], match["after"]
        if patterns.hedge.match(after):
            candidates.append((match.start(), None))
            continue
        set_apart = match["keyword"] or text[match.start("letter") - 1] in "*_(["
        if letter.islower() and not set_apart and not _SET_APART.match(after):
            continue
        candidates.append((match.start(), letter.upper()))
    last_line = _last_line(text)
    if last_line is not None:
        start, line = last_line
        alone = patterns.alone.fullmatch(line)
        if alone is not None:
            candidates.append((start, alone["letter"].upper()))
    if not candidates:
        return None
    return max(candidates, key=lambda candidate: candidate[0])[1]


def _last_line(text: str) -> tuple[int, str] | None:
    end = len(text.rstrip())
    if end == 0:
        return None
    start = max(text.rfind("\n", 0, end), text.rfind("\r", 0, end)) + 1
    return start, text[start:end]


def _check_choices(choices: str) -> str:
    letters = "".join(dict.fromkeys(choices.upper()))
    if not letters or not all("A" <= char <= "Z" for char in letters):
        raise ValueError(f"choices must be ASCII letters, got {choices!r}")
    return letters


def regex_extractor(pattern: str) -> Extractor:
    """An extractor returning the last match of `pattern` (group 1 if it has groups), stripped.

    Raises ValueError naming the pattern and the fault when it does not compile.
    """
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise ValueError(f"invalid regex {pattern!r}: {error}") from None

    def extract(text: str) -> str | None:
        last = None
        for last in compiled.finditer(text):  # noqa: B007 - only the last one is wanted
            pass
        if last is None:
            return None
        found = last.group(1) if compiled.groups else last.group(0)
        if found is None:
            return None
        return found.strip() or None

    return extract


def make_extractor(spec: str) -> Extractor:
    """The extractor a vote-mode spec names: number, choice, choice:LETTERS or regex:PATTERN.

    The kind is read case-insensitively. Everything after ``regex:`` is the pattern, spaces
    included. Raises ValueError for an unknown kind, bad letters or a bad pattern.
    """
    kind, colon, argument = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "number" and not colon:
        return last_number
    if kind == "choice" and not colon:
        return choice_letter
    if kind == "choice":
        letters = _check_choices(argument.strip())
        return functools.partial(choice_letter, choices=letters)
    if kind == "regex" and colon:
        if not argument:
            raise ValueError("regex extractor needs a pattern: regex:PATTERN")
        return regex_extractor(argument)
    raise ValueError(
        f"unknown extractor {spec!r}: use number, choice, choice:LETTERS or regex:PATTERN"
    )


@dataclass(frozen=True, slots=True)
class Tally:
    """The vote: answers by count, the leading answers, and who gave none.

    `counts` is ordered by votes descending, then answer. `leaders` holds every answer with
    the top count in the same order, several on a tie; breaking the tie is the caller's job.
    `abstained` and `by_seat` keep the seats' input order.
    """

    counts: dict[str, int]
    leaders: tuple[str, ...]
    abstained: tuple[str, ...]
    by_seat: dict[str, str | None]


def tally(answers: Mapping[str, str | None]) -> Tally:
    """Count extracted answers (seat → answer). None or an empty/blank answer is an abstention.

    Answers are compared exactly as given: the extractors already normalise them.
    """
    by_seat: dict[str, str | None] = {
        seat: answer if answer is not None and answer.strip() else None
        for seat, answer in answers.items()
    }
    votes: dict[str, int] = {}
    for answer in by_seat.values():
        if answer is not None:
            votes[answer] = votes.get(answer, 0) + 1
    counts = dict(sorted(votes.items(), key=lambda item: (-item[1], item[0])))
    top = max(counts.values(), default=0)
    return Tally(
        counts=counts,
        leaders=tuple(answer for answer, count in counts.items() if count == top),
        abstained=tuple(seat for seat, answer in by_seat.items() if answer is None),
        by_seat=by_seat,
    )
