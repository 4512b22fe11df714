"""The Evaluations panel in Debian's Chromium against a real hub: the runs `council eval` stored,
one run's table and its inline-SVG chart, the judges' biases, and the items a system got wrong.

No model runs: the runs are written straight into the hub's council.db with the library the CLI
uses (council.evaluation.records), so every figure on the page is known in advance and is checked
against both the numbers chosen here and what `GET /api/evals/{id}` says."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, Route, expect

from council.datafolder import DataFolder
from council.evaluation import records
from council.evaluation.report import percent
from council.evaluation.tasks import Item
from council.store import db as store_db
from council.units import human_count
from tests.browser.conftest import new_page, screenshot
from tests.hubs import HubProcess

StartHub = Callable[..., HubProcess]
HOW_TO = "council eval --task basic_arithmetic --size 10"
DASH = "\u2013"  # an en dash, between an interval's ends
SYSTEMS = ["seat:a", "seat:b", "synthesize"]
QUESTIONS = [
    ("What is 2 + 3?", "5"),
    ("What is 7 * 6?", "42"),
    ("What is 10 - 4?", "6"),
    ("What is 9 / 3?", "3"),
]
# Markup in an answer is text on the page: never parsed, never run.
MARKUP = "I think it is <b>4</b>.<script>window.pwned = 1</script>"
# Each system's (raw, extracted) answer to each question; the gold answer is the right one.
ANSWERS: dict[str, list[tuple[str | None, str | None]]] = {
    "seat:a": [("2 + 3 = 5", "5"), ("42", "42"), ("It is 6.", "6"), ("9 / 3 = 4", "4")],
    "seat:b": [("5", "5"), ("7 * 6 = 36", "36"), (MARKUP, "4"), ("I am not sure.", None)],
    "synthesize": [("5", "5"), ("42", "42"), ("6", "6"), ("3", "3")],
}
TOKENS = {"seat:a": 100, "seat:b": 250, "synthesize": 1200}  # per answer
WALL_MS = {"seat:a": 1234, "seat:b": 2100, "synthesize": 5321}  # per answer
# Two reviews per synthesize round (each seat ranks both answers, its own included): who
# reviewed, which seat each label showed, the ranking. Five of eight rank label A first (62.5%,
# a tie the CLI rounds to 62%); six of eight rank the reviewer's own answer first.
AB, BA = {"A": "a", "B": "b"}, {"A": "b", "B": "a"}
REVIEWS = [
    [("a", AB, ["a", "b"]), ("b", BA, ["b", "a"])],
    [("a", BA, ["a", "b"]), ("b", AB, ["b", "a"])],
    [("a", AB, ["a", "b"]), ("b", BA, ["a", "b"])],
    [("a", BA, ["b", "a"]), ("b", BA, ["b", "a"])],
]


def write_run(
    folder: DataFolder,
    task: str,
    spec: dict[str, Any],
    questions: list[tuple[str, str]],
    answers: Iterable[records.Answer],
    *,
    finished: bool = True,
) -> str:
    """A run stored as `council eval` stores one, in the hub's own council.db."""
    db = store_db.connect(folder.database)
    try:
        items = tuple(Item(n, q, gold, {}) for n, (q, gold) in enumerate(questions))
        run_id = records.create_run(db, task, spec, items)
        for answer in answers:
            records.store_answer(db, run_id, answer)
        if finished:
            records.finish_run(db, run_id)
        return run_id
    finally:
        db.close()


def arithmetic_answers() -> list[records.Answer]:
    stored = []
    for system, answers in ANSWERS.items():
        for n, (raw, extracted) in enumerate(answers):
            details: dict[str, Any] = {}
            if system == "synthesize":
                details["reviews"] = [
                    {"reviewer": reviewer, "labels": labels, "ranking": ranking}
                    for reviewer, labels, ranking in REVIEWS[n]
                ]
            score = 1.0 if extracted == QUESTIONS[n][1] else 0.0
            stored.append(
                records.Answer(
                    system, n, raw, extracted, score, TOKENS[system], WALL_MS[system], details
                )
            )
    return stored


def whole(value: float) -> str:
    return percent(value).removesuffix("%")


def expected_row(row: dict[str, Any]) -> list[str]:
    """A results row as the page's table prints it: the CLI's percentages and token counts."""
    low, high = row["ci95"]
    return [
        row["system"],
        str(row["n"]),
        str(row["correct"]),
        percent(row["accuracy"]),
        f"{whole(low)}{DASH}{whole(high)} %",
        human_count(row["tokens"]),
        f"{row['wall_s']:.1f} s",
    ]


def chart_shapes(page: Page) -> dict[str, Any]:
    shapes: dict[str, Any] = page.locator("#eval-chart svg").evaluate(
        """(svg) => ({
          accX: Number(svg.dataset.accX), accW: Number(svg.dataset.accWidth),
          tokX: Number(svg.dataset.tokX), tokW: Number(svg.dataset.tokWidth),
          bars: [...svg.querySelectorAll("rect.acc-bar")].map((bar) => ({
            system: bar.dataset.system, x: bar.x.baseVal.value, width: bar.width.baseVal.value })),
          whiskers: [...svg.querySelectorAll(".ci-whisker")].map((g) => ({
            system: g.dataset.system,
            low: g.querySelector(".ci-span").x1.baseVal.value,
            high: g.querySelector(".ci-span").x2.baseVal.value })),
          tokens: [...svg.querySelectorAll("rect.tok-bar")].map((bar) => ({
            system: bar.dataset.system, x: bar.x.baseVal.value, width: bar.width.baseVal.value })),
          axes: [...svg.querySelectorAll(".axis-title")].map((t) => t.textContent),
          accTicks: [...svg.querySelectorAll(".axis-accuracy text")].map((t) => t.textContent),
          tokTicks: [...svg.querySelectorAll(".axis-tokens text")].map((t) => t.textContent),
        })"""
    )
    return shapes


def as_guest(route: Route) -> None:
    """The hub's health as a paired phone would get it: not the owner."""
    response = route.fetch()
    route.fulfill(response=response, json={**response.json(), "owner": False})


def test_the_owner_reads_evaluation_runs_their_chart_biases_and_wrong_answers(
    start_hub: StartHub, isolated_data: DataFolder, browser: Browser
) -> None:
    hub = start_hub()
    hub.wait_ok()
    assert httpx.get(f"{hub.url}/api/evals").json() == {"runs": []}

    with new_page(browser, viewport={"width": 1280, "height": 1250}) as page:
        page.goto(hub.url)
        evals = page.get_by_role("button", name="Evaluations", exact=True)
        models = page.get_by_role("button", name="Models", exact=True)
        panel = page.get_by_role("dialog", name="Evaluations")
        expect(evals).to_be_visible()
        expect(evals).to_have_attribute("aria-expanded", "false")
        expect(evals).to_have_attribute("aria-controls", "evals-panel")

        # ---- one panel at a time: opening this one closes the Models panel --------------------
        models.click()
        expect(page.get_by_role("dialog", name="Models")).to_be_visible()
        evals.click()
        expect(panel).to_be_visible()
        expect(page.get_by_role("dialog", name="Models")).to_be_hidden()
        expect(models).to_have_attribute("aria-expanded", "false")
        expect(evals).to_have_attribute("aria-expanded", "true")
        expect(page.locator("#evals-title")).to_be_focused()

        # ---- an empty stick says how to make a run ----------------------------------------------
        expect(page.locator("#evals-empty")).to_be_visible()
        expect(page.locator("#evals-empty")).to_contain_text(
            f"Make one in a terminal on this laptop: {HOW_TO}"
        )
        expect(page.locator("#eval-runs li")).to_have_count(0)
        expect(page.locator("#eval-report")).to_be_hidden()

        # ---- Escape closes it and gives the focus back; so does the close button ---------------
        page.keyboard.press("Escape")
        expect(panel).to_be_hidden()
        expect(evals).to_have_attribute("aria-expanded", "false")
        expect(evals).to_be_focused()
        evals.click()
        expect(panel).to_be_visible()
        panel.get_by_role("button", name="Close evaluations").click()
        expect(panel).to_be_hidden()
        expect(evals).to_be_focused()

        # ---- a run the CLI stored meanwhile shows when the panel opens again -------------------
        spec = {
            "task": "basic_arithmetic",
            "size": 4,
            "seed": 0,
            "systems": SYSTEMS,
            "seats": ["a", "b"],
            "max_tokens": 256,
            "exclude_self": False,
        }
        first = write_run(isolated_data, "basic_arithmetic", spec, QUESTIONS, arithmetic_answers())
        report = httpx.get(f"{hub.url}/api/evals/{first}").json()
        assert httpx.get(f"{hub.url}/api/evals/{first[:4]}").json() == report  # a prefix works
        results = {row["system"]: row for row in report["results"]}
        assert [row["system"] for row in report["results"]] == SYSTEMS
        assert {s: (r["n"], r["correct"], r["accuracy"]) for s, r in results.items()} == {
            "seat:a": (4, 3, 0.75),
            "seat:b": (4, 1, 0.25),
            "synthesize": (4, 4, 1.0),
        }
        assert {s: r["tokens"] for s, r in results.items()} == {
            "seat:a": 400,
            "seat:b": 1000,
            "synthesize": 4800,
        }
        assert report["bias"]["position"] == {"hits": 5, "n": 8, "rate": 0.625, "chance": 0.5}
        assert report["bias"]["self_preference"] == {"hits": 6, "n": 8, "rate": 0.75, "chance": 0.5}

        evals.click()
        runs = page.locator("#eval-runs .eval-run")
        expect(runs).to_have_count(1)
        expect(page.locator("#evals-empty")).to_be_hidden()
        expect(runs.first).to_have_attribute("data-run", first)
        expect(runs.first).to_have_attribute("aria-pressed", "true")  # the newest is on show
        expect(runs.first.locator(".eval-run-task")).to_have_text("basic_arithmetic")
        expect(runs.first.locator(".eval-status")).to_have_text("done")
        created = report["created_at"][:16].replace("T", " ")
        expect(runs.first.locator(".eval-run-meta")).to_have_text(f"4 items · {created} UTC")

        # ---- the table: the API's numbers, as the CLI prints them ------------------------------
        expect(page.locator("#eval-report")).to_have_attribute("data-run", first)
        expect(page.locator("#eval-title")).to_have_text(f"basic_arithmetic · run {first}")
        rows = page.locator("#eval-table tbody tr")
        expect(rows).to_have_count(3)
        for index, system in enumerate(SYSTEMS):
            expect(rows.nth(index).locator("th, td")).to_have_text(expected_row(results[system]))
        expect(rows.locator("td:nth-child(4)")).to_have_text(["75%", "25%", "100%"])
        expect(rows.locator("td:nth-child(6)")).to_have_text(["400", "1K", "4.8K"])
        expect(rows.locator("td:nth-child(7)")).to_have_text(["4.9 s", "8.4 s", "21.3 s"])

        # ---- the chart: one bar per system, as wide as its accuracy; the whisker is its CI;
        # the tokens on their own axis, scaled to the most any system spent ---------------------
        chart = page.get_by_role("img", name=re.compile(r"^Accuracy and tokens by system"))
        expect(chart).to_be_visible()
        expect(chart.locator(":scope > title")).to_have_text(
            f"Accuracy and tokens by system, run {first}"
        )
        described = "; ".join(
            f"{s}: {percent(r['accuracy'])} correct (95% CI {expected_row(r)[4]}), "
            f"{human_count(r['tokens'])} tokens"
            for s, r in results.items()
        )
        expect(chart.locator(":scope > desc")).to_have_text(f"{described}.")
        shapes = chart_shapes(page)
        assert [bar["system"] for bar in shapes["bars"]] == SYSTEMS
        assert shapes["accW"] > 0
        for bar in shapes["bars"]:
            assert bar["x"] == shapes["accX"]
            assert abs(bar["width"] - results[bar["system"]]["accuracy"] * shapes["accW"]) < 0.01
        widths = {bar["system"]: bar["width"] for bar in shapes["bars"]}
        assert abs(widths["seat:a"] / widths["synthesize"] - 0.75) < 1e-3
        assert abs(widths["seat:b"] / widths["synthesize"] - 0.25) < 1e-3
        assert [w["system"] for w in shapes["whiskers"]] == SYSTEMS
        for whisker in shapes["whiskers"]:
            low, high = results[whisker["system"]]["ci95"]
            assert abs(whisker["low"] - (shapes["accX"] + low * shapes["accW"])) < 0.01
            assert abs(whisker["high"] - (shapes["accX"] + high * shapes["accW"])) < 0.01
        for bar in shapes["tokens"]:
            assert bar["x"] == shapes["tokX"]
            expected = results[bar["system"]]["tokens"] / 4800 * shapes["tokW"]
            assert abs(bar["width"] - expected) < 0.01
        assert shapes["axes"] == ["Accuracy, with its 95% interval", "Tokens spent"]
        assert shapes["accTicks"] == ["0%", "25%", "50%", "75%", "100%"]
        assert shapes["tokTicks"] == ["0", "2.4K", "4.8K"]

        # ---- the judges' biases, in the API's numbers ------------------------------------------
        position = report["bias"]["position"]
        expect(page.locator("#eval-bias")).to_have_text(
            f"Position bias: {percent(position['rate'])} of {position['n']} rankings put the "
            f"first-shown answer first (chance {percent(position['chance'])})."
        )
        expect(page.locator("#eval-bias")).to_contain_text("62% of 8 rankings")  # as the CLI says
        own = report["bias"]["self_preference"]
        expect(page.locator("#eval-self")).to_have_text(
            f"Self-preference: {percent(own['rate'])} of {own['n']} rankings put the reviewer's "
            f"own answer first (chance {percent(own['chance'])})."
        )

        # ---- drill-down: a row chosen lists what that system got wrong, all as text ------------
        misses = page.locator("#eval-missed .miss")
        expect(misses).to_have_count(0)
        expect(page.locator("#eval-misses-summary")).to_contain_text("Choose a system")
        rows.nth(1).locator("td").nth(3).click()  # anywhere on seat:b's row
        expect(rows.nth(1)).to_have_class("chosen")
        expect(rows.nth(1).locator(".system-button")).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#eval-system")).to_have_value("seat:b")
        expect(page.locator("#eval-misses-summary")).to_have_text(
            "seat:b got 3 of 4 answered items wrong."
        )
        expect(misses).to_have_count(3)
        wrong = [n for n, (_, said) in enumerate(ANSWERS["seat:b"]) if said != QUESTIONS[n][1]]
        assert wrong == [1, 2, 3]
        assert wrong == [
            item["id"] for item in report["items"] if not item["answers"]["seat:b"]["correct"]
        ]
        for miss, n in zip(misses.all(), wrong, strict=True):
            question, gold = QUESTIONS[n]
            raw, extracted = ANSWERS["seat:b"][n]
            expect(miss).to_have_attribute("data-item", str(n))
            expect(miss.locator(".miss-question")).to_have_text(f"Item {n + 1} {question}")
            expect(miss.locator(".miss-gold")).to_have_text(gold)
            expect(miss.locator(".miss-extracted")).to_have_text(
                extracted if extracted is not None else "nothing could be read from the answer"
            )
            details = miss.locator("details.miss-raw")
            expect(details.locator("pre")).to_be_hidden()  # the raw answer waits in a <details>
            details.locator("summary").click()
            expect(details.locator("pre")).to_be_visible()
            expect(details.locator("pre")).to_have_text(raw or "")
        expect(page.locator("#eval-missed b, #eval-missed script")).to_have_count(0)
        assert page.evaluate("window.pwned") is None

        page.locator("#refresh-evals").blur()
        screenshot(page, "evals-view")  # docs/images/evals-view.png is a copy of it

        # The same choice from the select, and from the keyboard on a row's system button.
        page.locator("#eval-system").select_option("seat:a")
        expect(rows.nth(0)).to_have_class("chosen")
        expect(rows.nth(1)).not_to_have_class("chosen")
        expect(misses).to_have_count(1)
        expect(misses.first).to_have_attribute("data-item", "3")
        expect(misses.first.locator(".miss-extracted")).to_have_text("4")
        expect(misses.first.locator(".miss-gold")).to_have_text("3")
        rows.nth(2).locator(".system-button").focus()
        page.keyboard.press("Enter")
        expect(page.locator("#eval-system")).to_have_value("synthesize")
        expect(page.locator("#eval-misses-summary")).to_have_text(
            "synthesize got 0 of 4 answered items wrong."
        )
        expect(misses).to_have_count(0)

        # ---- a second run, still running, appears on Refresh; switching shows its table --------
        second_spec = {"task": "leg_counting", "size": 2, "seed": 0, "systems": ["seat:a", "vote"]}
        second = write_run(
            isolated_data,
            "leg_counting",
            second_spec,
            [("How many legs do 2 cats have?", "8"), ("How many legs does a bird have?", "2")],
            [
                records.Answer("seat:a", 0, "8 legs", "8", 1.0, 60, 900, {}),
                records.Answer("seat:a", 1, "4 legs", "4", 0.0, 60, 900, {}),
                records.Answer("vote", 0, "8", "8", 1.0, 333, 3333, {}),
            ],
            finished=False,
        )
        page.locator("#refresh-evals").click()
        expect(runs).to_have_count(2)
        expect(runs.nth(0)).to_have_attribute("data-run", second)  # newest first
        expect(runs.nth(1)).to_have_attribute("data-run", first)
        expect(runs.nth(0).locator(".eval-status")).to_have_text("running")
        expect(runs.nth(0).locator(".eval-run-meta")).to_contain_text("2 items, 3 of 4 answers")
        expect(runs.nth(1)).to_have_attribute("aria-pressed", "true")  # still the one on show
        expect(page.locator("#eval-system")).to_have_value("synthesize")

        runs.nth(0).click()
        expect(runs.nth(0)).to_have_attribute("aria-pressed", "true")
        expect(runs.nth(1)).to_have_attribute("aria-pressed", "false")
        expect(page.locator("#eval-report")).to_have_attribute("data-run", second)
        expect(page.locator("#eval-title")).to_have_text(f"leg_counting · run {second}")
        report2 = httpx.get(f"{hub.url}/api/evals/{second}").json()
        expect(rows).to_have_count(2)
        for index, row in enumerate(report2["results"]):
            expect(rows.nth(index).locator("th, td")).to_have_text(expected_row(row))
        expect(rows.locator("th")).to_have_text(["seat:a", "vote"])
        expect(rows.locator("td:nth-child(4)")).to_have_text(["50%", "100%"])
        expect(page.locator("#eval-chart rect.acc-bar")).to_have_count(2)
        expect(page.locator("#eval-bias")).to_have_text(
            "Position bias: no rankings in this run (only synthesize's reviewers rank answers)."
        )
        expect(page.locator("#eval-self")).to_be_hidden()  # exclude_self was on: nothing to say
        expect(page.locator("#eval-system option")).to_have_text(
            ["Choose a system", "seat:a", "vote"]
        )
        expect(page.locator("#eval-system")).to_have_value("")  # another run's systems
        expect(misses).to_have_count(0)
        page.locator("#eval-system").select_option("vote")
        expect(page.locator("#eval-misses-summary")).to_have_text(
            "vote got 0 of 1 answered items wrong; 1 item not answered yet."
        )
        page.locator("#eval-system").select_option("seat:a")
        expect(misses).to_have_count(1)
        expect(misses.first.locator(".miss-question")).to_have_text(
            "Item 2 How many legs does a bird have?"
        )

        # ---- opening the Seats panel closes this one -------------------------------------------
        page.get_by_role("button", name="Seats", exact=True).click()
        expect(page.locator("#seats-panel")).to_be_visible()
        expect(panel).to_be_hidden()
        expect(evals).to_have_attribute("aria-expanded", "false")

    # ---- a guest (a paired phone: the hub says it is not the owner) has no such button ---------
    with new_page(browser, viewport={"width": 1280, "height": 800}) as page:
        page.route("**/api/health", as_guest)
        page.goto(hub.url)
        expect(page.locator("#hub-status")).to_have_text("all seats ready", timeout=30_000)
        expect(page.locator("body")).to_have_class(re.compile(r"\bguest\b"))
        expect(page.locator("#show-evals")).to_be_hidden()
        expect(page.locator("#show-models")).to_be_hidden()
