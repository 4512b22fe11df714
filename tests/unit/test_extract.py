from __future__ import annotations

import re

import pytest

from council.deliberation.extract import (
    Tally,
    choice_letter,
    last_number,
    make_extractor,
    regex_extractor,
    tally,
)

ONE_MB = 1_000_000

# --- last_number: what counts as a number, and how it is written back ----------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,234.50", "1234.5"),
        ("-3", "-3"),
        ("3.0", "3"),
        ("3.", "3"),
        ("$1,200", "1200"),
        ("€1,200,000", "1200000"),
        ("12%", "12"),
        ("1e3", "1000"),
        ("1E3", "1000"),
        ("2.5e2", "250"),
        ("1e-3", "0.001"),
        ("6.02e23", "602000000000000000000000"),
        ("-0", "0"),
        ("-0.0", "0"),
        ("+5", "5"),
        ("0007", "7"),
        ("0.50", "0.5"),
        (".5", "0.5"),
        ("\u22127", "-7"),
        ("x = -5", "-5"),
        ("(42)", "42"),
        ("**42**", "42"),
        ("#3", "3"),
        ("3/4", "4"),
    ],
)
def test_a_number_is_normalised(text: str, expected: str) -> None:
    assert last_number(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gpt4 says 7", "7"),
        ("It is 7, said gpt4", "7"),
        ("the 4o model says 9", "9"),
        ("It came 3rd of 5", "5"),
        ("It weighs 5kg and costs 2", "2"),
        ("H2O boils at 100", "100"),
        ("GPT-4 thinks 12", "12"),
        ("COVID-19 began in 2019", "2019"),
        ("version 1.2.3 fixed 8 bugs", "8"),
        ("see v1.2.3", None),
        ("x_1 is 4", "4"),
    ],
)
def test_digits_inside_words_and_versions_are_not_numbers(text: str, expected: str | None) -> None:
    assert last_number(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3-4", "4"),
        ("5 - 3", "3"),
        ("(3) - 2", "2"),
        ("x+4", "4"),
        ("it is -4", "-4"),
        ("2^-3", "-3"),
    ],
)
def test_a_minus_after_a_number_is_an_operator_not_a_sign(text: str, expected: str) -> None:
    assert last_number(text) == expected


def test_a_comma_is_a_thousands_separator_only_in_groups_of_three() -> None:
    assert last_number("12,34") == "34"
    assert last_number("1,2,3") == "3"
    assert last_number("1234,567") == "567"
    assert last_number("12,345,678") == "12345678"


def test_an_exponent_of_more_than_three_digits_is_not_a_number() -> None:
    assert last_number("1e1234") is None
    assert last_number("value 7, or 1e999") is not None


@pytest.mark.parametrize(
    "text", ["", "no digits here", "½", "\u0663", "\uff11\uff12", "e5", "-", "."]
)
def test_text_without_an_ascii_number_gives_none(text: str) -> None:
    assert last_number(text) is None


# --- last_number: which number is the answer -------------------------------------------------


def test_without_a_marker_the_last_number_wins() -> None:
    assert last_number("We have 3 apples and 4 pears, so 7 fruit.") == "7"


@pytest.mark.parametrize(
    "text",
    [
        "The answer is 42. Check: 6 * 7 = 42, and 43 is wrong.",
        "Answer: 42\n\nVerification took 3 steps.",
        "**Answer:** 42 (from 6 times 7)",
        "Final answer: 42. Other candidates were 41 and 43.",
        "The answer is **42**, not 41.",
        "answer = 42; step 9 done",
        "So the answer would be 42, I think, after 5 checks.",
    ],
)
def test_an_answer_phrase_beats_later_numbers(text: str) -> None:
    assert last_number(text) == "42"


def test_within_an_answer_line_the_first_number_counts() -> None:
    assert last_number("The answer is 5 apples, not 6") == "5"


def test_within_an_answer_line_the_number_after_the_last_equals_sign_counts() -> None:
    assert last_number("Answer: 2 + 3 = 5") == "5"
    assert last_number("Answer: x = 2 * 3 = 6 units") == "6"


def test_the_last_answer_phrase_with_a_number_wins() -> None:
    text = "A naive answer is 10. Correcting for overlap, the answer is 12. Done in 3 steps."
    assert last_number(text) == "12"


def test_an_answer_phrase_reads_only_to_the_end_of_its_line() -> None:
    assert last_number("The answer is 12,\n345 after all") == "12"


def test_an_answer_phrase_without_a_number_on_its_line_falls_back_to_the_last_number() -> None:
    assert last_number("The answer is unclear.\nEstimates range from 3 to 9") == "9"
    assert last_number("The answer is below.\n\nIt is 12, from 3 and 4") == "4"


def test_a_boxed_number_beats_everything() -> None:
    text = r"So \boxed{17}. The answer is 18, and also 19."
    assert last_number(text) == "17"


def test_the_last_boxed_number_wins() -> None:
    assert last_number(r"First \boxed{3}, then corrected: \boxed{4}. Step 5.") == "4"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"\boxed{1,234}", "1234"),
        (r"\boxed{x = 5}", "5"),
        (r"\boxed{\text{42 apples}}", "42"),
        (r"\boxed {-3}", "-3"),
        (r"\boxed{\frac{1}{2}}", "1"),
        (r"\boxed{} and 9", "9"),
        (r"\boxed{unknown} and 9", "9"),
        (r"\boxed{7", "7"),
    ],
)
def test_a_boxed_answer_is_read_inside_its_braces(text: str, expected: str) -> None:
    assert last_number(text) == expected


def test_a_box_holding_no_number_gives_way_to_an_earlier_box_that_does() -> None:
    assert last_number(r"\boxed{12} ... \boxed{N/A}") == "12"


def test_answer_phrases_in_other_words_are_not_markers() -> None:
    assert last_number("answers: 3. Then the total is 8") == "8"
    assert last_number("Answering 3 questions gives 8") == "8"


def test_a_number_spread_over_a_newline_is_two_numbers() -> None:
    assert last_number("1,234\n.5") == "0.5"


# --- choice_letter ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "The answer is (B)",
        "The answer is B",
        "The answer is B.",
        "The answer is: B",
        "The correct answer is **B**.",
        "Answer: B",
        "Answer: (B)",
        "Answer: [B]",
        "**Answer:** B",
        "**Answer: B**",
        "answer: b",
        "answer is (b)",
        "The answer is option B",
        "The answer is option b",
        "The correct option is B",
        "The correct choice is B",
        "I choose option b",
        "I choose B",
        "I'd go with B.",
        "I pick (b)",
        "I select B because it is right",
        r"\boxed{B}",
        r"\boxed{b}",
        r"\boxed{\text{B}}",
        r"\boxed{(B)}",
        "Long reasoning...\n\n**B**",
        "Long reasoning...\n\nB",
        "Long reasoning...\n\n(B)",
        "Long reasoning...\n\nB.",
        "Long reasoning...\n\nFinal answer: B\n",
        "The answer is B because the others are wrong.",
        "The answer is B, because the others are wrong.",
    ],
)
def test_a_confident_statement_gives_its_letter(text: str) -> None:
    assert choice_letter(text) == "B"


@pytest.mark.parametrize(
    "text",
    [
        "A good answer is hard to find.",
        "A good answer is…",
        "A careful reader would pick up on that.",
        "Reasoning first.\nA\nis what I would say if unsure.",
    ],
)
def test_the_article_a_is_never_an_answer(text: str) -> None:
    assert choice_letter(text) is None


def test_a_line_holding_nothing_but_a_letter_is_an_answer() -> None:
    assert choice_letter("A") == "A"
    assert choice_letter("Reasoning first.\n\n  A  \n") == "A"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "I am not sure.",
        "The answer is a bit subtle.",
        "The answer is both.",
        "The answer is Both of them.",
        "The answer depends on context; see B for details.",
        "Option B is tempting but wrong.",
        "B is tempting. C is wrong.",
        "Answer: E",
        "Answer: I think C",
        "answer: none of these",
        "I choose not to answer.",
        r"\boxed{42}",
    ],
)
def test_no_confident_statement_gives_none(text: str) -> None:
    assert choice_letter(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "The answer is B or C",
        "The answer is B/C",
        "The answer is (B) or (C)",
        "The answer is B and C",
        "The answer is B, C is wrong",
    ],
)
def test_a_hedged_statement_gives_none(text: str) -> None:
    assert choice_letter(text) is None


def test_a_final_hedge_overrides_an_earlier_firm_answer() -> None:
    assert choice_letter("Answer: B.\nOn second thought the answer is B or C.") is None


def test_the_last_statement_wins() -> None:
    assert choice_letter("The answer is (B). On reflection, I choose C.") == "C"
    assert choice_letter(r"\boxed{D} ... wait, the answer is A.") == "A"
    assert choice_letter("The answer is A.\n\n**D**") == "D"


def test_a_lower_case_letter_in_running_text_counts_only_when_set_apart() -> None:
    assert choice_letter("the answer is a.") == "A"
    assert choice_letter("the answer is a\n") == "A"
    assert choice_letter("the answer is **a** since") == "A"
    assert choice_letter("the answer is a since") is None


def test_a_letter_outside_the_choices_is_no_answer() -> None:
    assert choice_letter("Answer: E") is None
    assert choice_letter("Answer: E", "ABCDE") == "E"


def test_choices_may_be_given_in_lower_case() -> None:
    assert choice_letter("Answer: (e)", "abcde") == "E"


@pytest.mark.parametrize("choices", ["", "A1", "AB C", "ÄB", "-"])
def test_bad_choices_are_refused(choices: str) -> None:
    with pytest.raises(ValueError, match="choices must be ASCII letters"):
        choice_letter("Answer: A", choices)


def test_an_unrelated_last_line_does_not_count_as_a_bare_letter() -> None:
    assert choice_letter("My view:\nA bold claim") is None


def test_a_statement_on_crlf_lines_is_read() -> None:
    assert choice_letter("Reasoning\r\nAnswer: C\r\n") == "C"
    assert choice_letter("Reasoning\r\n**C**\r\n") == "C"


# --- regex_extractor -------------------------------------------------------------------------


def test_a_regex_returns_its_last_match() -> None:
    assert regex_extractor(r"\d+")("1 and 2 and 3") == "3"


def test_a_regex_with_groups_returns_group_one() -> None:
    assert regex_extractor(r"ID: (\w+) (\w+)")("ID: a b, ID: c d") == "c"


def test_a_regex_result_is_stripped() -> None:
    assert regex_extractor(r"Verdict:(.*)")("Verdict:   guilty  ") == "guilty"


def test_a_regex_that_never_matches_gives_none() -> None:
    assert regex_extractor(r"\d+")("no digits") is None


def test_an_empty_match_gives_none() -> None:
    assert regex_extractor(r"Verdict:(.*)")("Verdict:   ") is None
    assert regex_extractor(r"x*")("abc") is None


def test_a_group_that_did_not_take_part_gives_none() -> None:
    assert regex_extractor(r"(yes)|no")("yes then no") is None
    assert regex_extractor(r"(yes)|no")("no then yes") == "yes"


def test_an_invalid_regex_is_a_clear_value_error() -> None:
    with pytest.raises(ValueError, match=re.escape("invalid regex '(': missing )")):
        regex_extractor("(")


# --- make_extractor --------------------------------------------------------------------------


def test_make_extractor_knows_number() -> None:
    assert make_extractor("number")("The answer is 1,000") == "1000"


def test_make_extractor_knows_choice() -> None:
    assert make_extractor("choice")("Answer: (C)") == "C"
    assert make_extractor("choice")("Answer: (E)") is None


def test_make_extractor_knows_choice_with_letters() -> None:
    assert make_extractor("choice:ABCDE")("Answer: (E)") == "E"
    assert make_extractor("choice:ab")("Answer: (C)") is None


def test_make_extractor_knows_regex_and_keeps_the_rest_verbatim() -> None:
    extract = make_extractor("regex:verdict: (\\w+)")
    assert extract("verdict: yes. verdict: no") == "no"
    assert make_extractor("regex:a:b")("xa:b") == "a:b"


def test_make_extractor_reads_the_kind_case_insensitively() -> None:
    assert make_extractor(" Number ")("7") == "7"


@pytest.mark.parametrize("spec", ["x", "", "numbers", "number:3", "vote", "regex", "choices"])
def test_an_unknown_spec_names_the_valid_ones(spec: str) -> None:
    message = f"unknown extractor {spec!r}: use number, choice, choice:LETTERS or regex:PATTERN"
    with pytest.raises(ValueError, match=re.escape(message)):
        make_extractor(spec)


def test_the_unknown_spec_message_reads_exactly_as_documented() -> None:
    message = "unknown extractor 'x': use number, choice, choice:LETTERS or regex:PATTERN"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        make_extractor("x")


@pytest.mark.parametrize("spec", ["choice:", "choice:A1", "choice: "])
def test_choice_with_bad_letters_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="choices must be ASCII letters"):
        make_extractor(spec)


def test_regex_with_a_bad_pattern_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid regex"):
        make_extractor("regex:[")


def test_regex_with_no_pattern_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a pattern"):
        make_extractor("regex:")


# --- tally -----------------------------------------------------------------------------------


def test_the_majority_answer_leads() -> None:
    result = tally({"a": "5", "b": "5", "c": "6"})
    assert result == Tally(
        counts={"5": 2, "6": 1},
        leaders=("5",),
        abstained=(),
        by_seat={"a": "5", "b": "5", "c": "6"},
    )


def test_a_tie_has_several_leaders_in_answer_order() -> None:
    result = tally({"a": "B", "b": "A", "c": "B", "d": "A", "e": "C"})
    assert result.leaders == ("A", "B")
    assert list(result.counts.items()) == [("A", 2), ("B", 2), ("C", 1)]


def test_counts_are_ordered_by_votes_then_answer() -> None:
    result = tally({"s1": "z", "s2": "y", "s3": "z", "s4": "x"})
    assert list(result.counts) == ["z", "x", "y"]


def test_seats_without_an_answer_abstain_in_input_order() -> None:
    result = tally({"b": None, "a": "7", "c": None})
    assert result.abstained == ("b", "c")
    assert result.counts == {"7": 1}
    assert result.leaders == ("7",)


def test_a_blank_answer_is_an_abstention() -> None:
    result = tally({"a": "", "b": "   ", "c": "x"})
    assert result.abstained == ("a", "b")
    assert result.by_seat == {"a": None, "b": None, "c": "x"}


def test_nobody_answering_leaves_no_leaders() -> None:
    result = tally({"a": None, "b": None})
    assert result == Tally(counts={}, leaders=(), abstained=("a", "b"), by_seat=result.by_seat)


def test_an_empty_council_tallies_to_nothing() -> None:
    assert tally({}) == Tally(counts={}, leaders=(), abstained=(), by_seat={})


def test_answers_are_compared_exactly() -> None:
    assert tally({"a": "B", "b": "b"}).leaders == ("B", "b")


def test_tally_composes_with_an_extractor() -> None:
    texts = {
        "alpha": "Adding them up, the answer is 1,200.",
        "beta": r"Total: \boxed{1200}",
        "gamma": "I get 1200.0 in the end",
        "delta": "I cannot tell.",
    }
    result = tally({seat: last_number(text) for seat, text in texts.items()})
    assert result.leaders == ("1200",)
    assert result.counts == {"1200": 3}
    assert result.abstained == ("delta",)


# --- adversarial sizes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "1" * ONE_MB,
        "1," * (ONE_MB // 2),
        "1.1." * (ONE_MB // 4),
        "answer: " * (ONE_MB // 8),
        "the answer is " * (ONE_MB // 14),
        "\\boxed{" * (ONE_MB // 7),
        "\\boxed{{{{" * (ONE_MB // 10),
        "gpt4 " * (ONE_MB // 5),
        "A " * (ONE_MB // 2),
        "The answer is (B) " * (ONE_MB // 18),
        "-" * ONE_MB + "5",
        " " * ONE_MB + "-5",
        "." * ONE_MB,
        "*" * ONE_MB,
        "e" * ONE_MB,
        "1e" * (ONE_MB // 2),
        "I choose " * (ONE_MB // 9),
        "\n" * ONE_MB,
    ],
    ids=lambda text: repr(text[:16]),
)
@pytest.mark.timeout(60)  # linear work takes well under a second; backtracking takes hours
def test_a_megabyte_of_adversarial_text_is_handled_quickly(text: str) -> None:
    last_number(text)
    choice_letter(text)
    choice_letter(text, "ABCDEFGHIJ")


def test_a_million_digit_number_comes_back_whole() -> None:
    digits = "9" * ONE_MB
    assert last_number(f"The answer is {digits}.") == digits


def test_a_long_boxed_number_is_read_past_the_marker_window() -> None:
    digits = "123456789" * 100
    assert last_number(rf"\boxed{{{digits}}} and 5") == digits


@pytest.mark.timeout(60)  # a quadratic rescan of the answer lines would not finish in time
def test_an_answer_line_with_no_number_before_a_megabyte_of_words_is_quick() -> None:
    text = "Answer: none\n" * 20 + "words " * (ONE_MB // 6) + "7"
    assert last_number(text) == "7"


def test_a_megabyte_before_the_answer_does_not_hide_it() -> None:
    assert last_number("x " * (ONE_MB // 2) + "Answer: 3") == "3"
    assert choice_letter("x " * (ONE_MB // 2) + "Answer: (C)") == "C"
