"""`council chat`: what a typed line means, what the next question is asked with, and how the
loop carries on through errors, Ctrl-C and the end of input."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any

import pytest

from council.chatting import (
    HELP,
    PROMPT,
    Ask,
    ChatState,
    LoopThread,
    Nothing,
    Quit,
    Say,
    ShowMode,
    ShowSeats,
    converse,
    interpret,
    seat_lines,
)
from council.deliberation.events import Event
from council.errors import BadRequest, HubUnreachable
from tests.running import run


def test_a_line_that_is_not_a_command_is_a_question() -> None:
    state = ChatState()
    assert interpret("  What is a council?  ", state) == Ask("What is a council?")
    assert interpret("//etc is a folder?", state) == Ask("/etc is a folder?")
    assert interpret("   ", state) == Nothing()
    assert state == ChatState()


def test_mode_changes_how_the_next_question_is_deliberated() -> None:
    state = ChatState()
    assert interpret("/mode", state) == ShowMode()
    assert interpret("/mode vote", state) == Say("mode: vote")
    assert state.mode == "vote"
    assert state.options() == {"mode": "vote"}


def test_a_bad_mode_is_one_line_and_changes_nothing() -> None:
    state = ChatState(mode="moa")
    assert interpret("/mode best", state) == Say(
        "unknown mode 'best': choose synthesize, moa, vote"
    )
    assert interpret("/mode vote moa", state) == Say(
        "unknown mode 'vote moa': choose synthesize, moa, vote"
    )
    assert state.mode == "moa"


def test_seats_chooses_who_answers_and_all_goes_back_to_the_default() -> None:
    state = ChatState()
    assert interpret("/seats", state) == ShowSeats()
    assert interpret("/seats demo-1 demo-3,demo-2 demo-1", state) == Say(
        "seats: demo-1, demo-3, demo-2"
    )
    assert state.options() == {"seats": ["demo-1", "demo-3", "demo-2"]}
    assert interpret("/seats all", state) == Say("seats: all (the council's default)")
    assert state.seats is None


def test_new_leaves_the_conversation_and_keeps_the_choices() -> None:
    state = ChatState(mode="moa", conversation="abc", max_tokens=8)
    assert isinstance(interpret("/new", state), Say)
    assert state == ChatState(mode="moa", max_tokens=8)


def test_help_quit_and_unknown_commands() -> None:
    state = ChatState()
    assert interpret("/help", state) == Say(HELP)
    assert interpret("/quit", state) == Quit()
    assert interpret("/exit", state) == Quit()
    assert interpret("/frobnicate now", state) == Say(
        "unknown command '/frobnicate': /help lists the commands"
    )


def test_only_what_was_chosen_goes_to_the_hub() -> None:
    assert ChatState().options() == {}
    chosen = ChatState(mode="synthesize", seats=["a"], conversation="c", max_tokens=8)
    assert chosen.options() == {"mode": "synthesize", "seats": ["a"], "max_tokens": 8}


def test_the_seat_list_marks_who_takes_part() -> None:
    rows = [
        {"name": "demo-1", "state": "healthy", "model": "demo.gguf"},
        {"name": "far", "state": None, "model": "", "kind": "remote"},
    ]
    assert seat_lines(rows, None) == [
        "* demo-1           healthy      demo.gguf",
        "* far              ?",
        "(* takes part in the next question)",
    ]
    assert seat_lines(rows, ["far"])[0].startswith("  demo-1")
    assert seat_lines([], None) == ["the hub has no seats"]


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


def interrupt_main_thread() -> None:
    """Ctrl-C as the terminal sends it: SIGINT, to the thread that reads the prompt."""
    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)


def test_a_call_returns_what_the_coroutine_returns_or_raises(loop_thread: LoopThread) -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def fail() -> None:
        raise BadRequest("unknown seat 'x'")

    assert loop_thread.call(answer()) == 42
    with pytest.raises(BadRequest, match="unknown seat"):
        loop_thread.call(fail())


def test_ctrl_c_cancels_the_call_and_waits_until_it_has_unwound(loop_thread: LoopThread) -> None:
    unwound = threading.Event()

    async def round_() -> None:
        try:
            interrupt_main_thread()
            await asyncio.sleep(30)
        finally:
            await asyncio.sleep(0.05)  # an `async with` closing its stream
            unwound.set()

    with pytest.raises(KeyboardInterrupt):
        loop_thread.call(round_())
    assert unwound.is_set()
    assert loop_thread.call(asyncio.sleep(0, "still running")) == "still running"


def test_an_uninterruptible_call_finishes_through_ctrl_c(loop_thread: LoopThread) -> None:
    async def closing() -> str:
        interrupt_main_thread()
        await asyncio.sleep(0.1)
        return "closed"

    assert loop_thread.call(closing(), interruptible=False) == "closed"


class FakeHub:
    """A hub whose rounds refuse a seat called 'nobody' and otherwise name a conversation."""

    async def ask(
        self, conversation: str | None, question: str, options: dict[str, Any]
    ) -> AsyncIterator[Event]:
        if "nobody" in options.get("seats", []):
            raise BadRequest("unknown seat 'nobody'")
        yield Event("note", {"text": f"asked {question!r}", "conversation_id": "c0ffee12345"})
        if question == "Lost?":
            raise HubUnreachable("the hub at http://127.0.0.1:1 closed the connection")

    async def defaults(self) -> dict[str, Any]:
        return {"mode": "synthesize"}


class FakeSession:
    hub = FakeHub()

    def call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return run(coroutine)  # on a thread: the browser tests keep a loop on this one


def run_lines(lines: list[str | type[BaseException]], state: ChatState) -> str:
    """The loop's output for these lines typed (an exception class: what input() raised)."""
    out: list[str] = []
    typed = iter(lines)

    def read(prompt: str) -> str:
        out.append(prompt)
        line = next(typed, EOFError)
        if isinstance(line, type):
            raise line
        return line

    converse(FakeSession(), state, write=out.append, read=read, tty=False)  # type: ignore[arg-type]
    return "".join(out)


def test_the_loop_goes_on_after_a_refused_question_and_an_interrupted_prompt() -> None:
    state = ChatState()
    out = run_lines(
        ["/seats nobody", "Hi?", KeyboardInterrupt, "/seats all", "Hi?", "/mode", "/quit"], state
    )
    assert out == (
        f"{PROMPT}seats: nobody\n"
        f"{PROMPT}error: unknown seat 'nobody'\n"
        f"{PROMPT}\n"
        f"{PROMPT}seats: all (the council's default)\n"
        f"{PROMPT}note: asked 'Hi?'\n"
        "(conversation c0ffee12)\n"
        f"{PROMPT}mode: synthesize (the council's default)\n"
        f"{PROMPT}"
    )
    assert state.conversation == "c0ffee12345"


def test_a_hub_lost_mid_round_is_said_under_what_the_round_showed() -> None:
    out = run_lines(["Lost?"], ChatState())
    assert out == (
        f"{PROMPT}note: asked 'Lost?'\n"
        "\nerror: the hub at http://127.0.0.1:1 closed the connection\n"
        f"{PROMPT}\n"
    )


def test_the_end_of_input_ends_the_loop_on_a_fresh_line() -> None:
    assert run_lines([], ChatState()) == f"{PROMPT}\n"
