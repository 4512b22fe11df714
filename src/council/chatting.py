"""The library side of `council chat`: a council round per line typed, in one conversation.

The prompt is read on the main thread, with `input()` (and readline's line editing where the
platform has it), so Ctrl-C there is an ordinary KeyboardInterrupt. The hub connection and every
round live on an event loop of their own, in a background thread: a hub that the chat starts for
itself (when none serves the stick) keeps serving between questions, so `council ask`, `status`
or a browser that find it through the stick's lock are answered while the chat waits at the
prompt. That hub runs with `handle_signals` off, so the terminal's Ctrl-C is the chat's alone.

Ctrl-C while a round runs cancels that round's task; leaving the event stream early closes it,
which stops the round on the hub, and the stored message ends "cancelled".
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sys
import threading
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from council.asking import open_store
from council.client import HubClient, hub_for
from council.datafolder import DataFolder, resolve_data_folder, running_hub
from council.errors import CouncilError
from council.render import TerminalRenderer
from council.store import conversations

T = TypeVar("T")
Write = Callable[[str], None]
ReadLine = Callable[[str], str]

MODES = ("synthesize", "moa", "vote")
PROMPT = "you \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK} "
HELP = """\
Type a question and press Enter: the council answers it, and each later question follows up in
the same conversation. Ctrl-C stops a round that is running; Ctrl-D or /quit leaves.
  /mode [synthesize|moa|vote]   how the council deliberates (no argument: show it)
  /seats [NAME ... | all]       which seats take part (no argument: list the hub's seats)
  /new                          the next question starts a new conversation
  /help                         this text
  /quit                         leave (so does /exit)
A line that starts with // asks a question that starts with /."""


@dataclass
class ChatState:
    """What the next question is asked with; slash commands change it, rounds fill in the
    conversation (the hub makes one for the first question and every event names it)."""

    mode: str | None = None  # None: the council's default mode
    seats: list[str] | None = None  # None: every seat, as the council's defaults say
    conversation: str | None = None  # None: the next question starts a new conversation
    max_tokens: int | None = None

    def options(self) -> dict[str, Any]:
        """The round's body beside the question: only what was chosen, so the hub's defaults
        decide the rest."""
        chosen = {"mode": self.mode, "seats": self.seats, "max_tokens": self.max_tokens}
        return {key: value for key, value in chosen.items() if value is not None}


@dataclass(frozen=True)
class Ask:
    question: str


@dataclass(frozen=True)
class Say:
    text: str


@dataclass(frozen=True)
class ShowMode:
    pass


@dataclass(frozen=True)
class ShowSeats:
    pass


@dataclass(frozen=True)
class Quit:
    pass


@dataclass(frozen=True)
class Nothing:
    pass


Action = Ask | Say | ShowMode | ShowSeats | Quit | Nothing


def interpret(line: str, state: ChatState) -> Action:
    """What one typed line means. A slash command that only changes a choice changes `state`
    here and says what it now is; whatever needs the hub is returned for the loop to do."""
    text = line.strip()
    if not text:
        return Nothing()
    if text.startswith("//"):
        return Ask(text[1:])
    if not text.startswith("/"):
        return Ask(text)
    name, *args = text.split()
    command = COMMANDS.get(name)
    if command is None:
        return Say(f"unknown command {name!r}: /help lists the commands")
    return command(args, state)


def _mode(args: list[str], state: ChatState) -> Action:
    if not args:
        return ShowMode()
    if len(args) > 1 or args[0] not in MODES:
        return Say(f"unknown mode {' '.join(args)!r}: choose {', '.join(MODES)}")
    state.mode = args[0]
    return Say(f"mode: {state.mode}")


def _seats(args: list[str], state: ChatState) -> Action:
    names = [name for arg in args for name in arg.split(",") if name]
    if not names:
        return ShowSeats()
    if names == ["all"]:
        state.seats = None
        return Say("seats: all (the council's default)")
    state.seats = list(dict.fromkeys(names))  # a name typed twice is one seat
    return Say(f"seats: {', '.join(state.seats)}")


def _new(args: list[str], state: ChatState) -> Action:
    state.conversation = None
    return Say("the next question starts a new conversation")


COMMANDS: dict[str, Callable[[list[str], ChatState], Action]] = {
    "/mode": _mode,
    "/seats": _seats,
    "/new": _new,
    "/help": lambda args, state: Say(HELP),
    "/quit": lambda args, state: Quit(),
    "/exit": lambda args, state: Quit(),
}


def seat_lines(rows: Sequence[dict[str, Any]], chosen: list[str] | None) -> list[str]:
    """`/seats`: one line per seat of the hub, its state, and which ones the next question
    asks (all of them, unless some were chosen)."""
    if not rows:
        return ["the hub has no seats"]
    lines = []
    for row in rows:
        name = str(row["name"])
        mark = "*" if chosen is None or name in chosen else " "
        state = row.get("state") or "?"
        lines.append(f"{mark} {name:<16} {state:<12} {row.get('model') or ''}".rstrip())
    lines.append("(* takes part in the next question)")
    return lines


class LoopThread:
    """An event loop on a thread of its own, and the means to run a coroutine on it from the
    terminal's thread so that Ctrl-C there cancels it."""

    def __init__(self) -> None:
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="council-chat", daemon=True)
        self._thread.start()
        self._started.wait()

    def _run(self) -> None:
        with asyncio.Runner() as runner:  # off the main thread: it leaves SIGINT alone
            runner.run(self._until_closed())

    async def _until_closed(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._closing = asyncio.Event()
        self._started.set()
        await self._closing.wait()

    def call(self, coroutine: Coroutine[Any, Any, T], *, interruptible: bool = True) -> T:
        """Run `coroutine` on the loop and wait for its result (or its exception). Ctrl-C while
        waiting cancels it, waits until it has unwound (its `finally`s and `async with`s done),
        and raises KeyboardInterrupt; with `interruptible` false, Ctrl-C is ignored instead."""
        loop = self._loop
        assert loop is not None  # noqa: S101 - set before __init__ returns
        finished: concurrent.futures.Future[T] = concurrent.futures.Future()
        tasks: list[asyncio.Task[T]] = []

        def start() -> None:
            task = loop.create_task(coroutine)
            tasks.append(task)
            task.add_done_callback(lambda done: _settle(done, finished))

        def cancel() -> None:  # runs after start() whenever that was scheduled at all
            if tasks:
                tasks[0].cancel()
            else:
                coroutine.close()
                _cancel(finished)

        def ensure_started() -> None:  # likewise
            if not tasks:
                start()

        try:
            loop.call_soon_threadsafe(start)
            return finished.result()
        except KeyboardInterrupt:
            loop.call_soon_threadsafe(cancel if interruptible else ensure_started)
            _wait_through_interrupts(finished)
            if interruptible:
                raise
        return finished.result()

    def close(self) -> None:
        """Stop the loop (tasks still on it are cancelled) and wait for the thread."""
        if self._loop is not None and self._closing is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._closing.set)
        while self._thread.is_alive():
            try:
                self._thread.join()
            except KeyboardInterrupt:
                continue


def _settle(task: asyncio.Task[T], finished: concurrent.futures.Future[T]) -> None:
    if task.cancelled():
        _cancel(finished)
    elif (exc := task.exception()) is not None:
        finished.set_exception(exc)
    else:
        finished.set_result(task.result())


def _cancel(future: concurrent.futures.Future[Any]) -> None:
    """Cancelled, and said so to `concurrent.futures.wait`, which `cancel()` alone does not."""
    future.cancel()
    future.set_running_or_notify_cancel()


def _wait_through_interrupts(future: concurrent.futures.Future[Any]) -> None:
    """Wait for `future`, a second Ctrl-C included: a cancelled round unwinds in moments."""
    while True:
        try:
            concurrent.futures.wait([future])
            return
        except KeyboardInterrupt:
            continue


class HubSession:
    """The hub for the whole chat, on a `LoopThread`: the one serving the stick, or one started
    for the chat (with `handle_signals` off: Ctrl-C is for rounds, not for that hub)."""

    def __init__(self, folder: DataFolder, llama_server: Path | None) -> None:
        self.folder = folder
        self.llama_server = llama_server
        self._loop: LoopThread | None = None
        self._stack = AsyncExitStack()
        self._client: HubClient | None = None

    def __enter__(self) -> HubSession:
        self._loop = LoopThread()
        try:
            context = hub_for(self.folder, self.llama_server, handle_signals=False)
            self._client = self._loop.call(self._stack.enter_async_context(context))
        except BaseException:
            self._loop.close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._loop is not None  # noqa: S101 - entered
        try:
            self._loop.call(self._stack.aclose(), interruptible=False)  # a hub of its own stops
        finally:
            self._loop.close()

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None  # noqa: S101 - only inside `with`
        return self._loop.call(coroutine)

    @property
    def hub(self) -> HubClient:
        assert self._client is not None  # noqa: S101 - only inside `with`
        return self._client


async def ask_round(
    hub: HubClient, state: ChatState, question: str, write: Write, *, tty: bool
) -> str:
    """One council round, shown as `council ask` shows it; returns its final status. The
    conversation the hub names is kept in `state` as soon as it is known, so a round stopped
    early still leaves the next question in the same conversation. A hub that refuses the
    question raises; one lost once the round has begun is said under what it had shown."""
    renderer = TerminalRenderer(write, tty=tty)
    before, shown = state.conversation, False
    try:
        async for event in hub.ask(state.conversation, question, state.options()):
            state.conversation = event.data.get("conversation_id", state.conversation)
            renderer(event)
            shown = True
    except asyncio.CancelledError:
        renderer.line("\n(stopped)" if shown else "(stopped)")  # ends a half-written line
        raise
    except CouncilError as exc:
        if not shown:
            raise
        renderer.line(f"\nerror: {exc}")
        return "failed"
    if state.conversation and state.conversation != before:
        write(f"(conversation {state.conversation[:8]})\n")
    return str(renderer.final.get("status", "failed"))


async def describe_mode(hub: HubClient, state: ChatState) -> str:
    if state.mode is not None:
        return f"mode: {state.mode}"
    defaults = await hub.defaults()
    return f"mode: {defaults.get('mode', '?')} (the council's default)"


async def describe_seats(hub: HubClient, state: ChatState) -> str:
    return "\n".join(seat_lines(await hub.seats(), state.seats))


def chat(
    data: Path | None,
    llama_server: Path | None,
    state: ChatState,
    *,
    write: Write,
    read: ReadLine = input,
) -> int:
    """The whole chat; its exit status (0 after /quit or end of input, 130 when Ctrl-C came
    while the hub was still starting). `state.conversation` may be a prefix to continue."""
    folder = resolve_data_folder(data)
    folder.prepare()
    if state.conversation is not None:
        with open_store(folder.root) as db:
            state.conversation = conversations.resolve_id(db, state.conversation)
    enable_line_editing()
    if running_hub(folder) is None:
        write("no hub serves this stick: starting the council for this chat…\n")
    try:
        with HubSession(folder, llama_server) as session:
            follow = f" (continuing {state.conversation[:8]})" if state.conversation else ""
            write(f"council chat{follow}: ask a question; /help lists the commands, /quit leaves\n")
            converse(session, state, write=write, read=read, tty=sys.stdout.isatty())
    except KeyboardInterrupt:  # while the hub was starting: the rest catches its own
        write("\n")
        return 130
    return 0


def converse(
    session: HubSession, state: ChatState, *, write: Write, read: ReadLine, tty: bool
) -> None:
    """Read, interpret and do, line after line, until /quit or end of input. Nothing that one
    line does (an error from the hub, Ctrl-C) ends the loop."""
    while True:
        try:
            line = read(PROMPT)
        except EOFError:
            write("\n")
            return
        except KeyboardInterrupt:  # at the prompt: a fresh line, as in a shell
            write("\n")
            continue
        action: Action = Nothing()
        try:
            action = interpret(line, state)
            if isinstance(action, Quit):
                return
            perform(session, state, action, write=write, tty=tty)
        except KeyboardInterrupt:
            if not isinstance(action, Ask):  # a round says "(stopped)" itself
                write("(stopped)\n")
        except CouncilError as exc:
            write(f"error: {exc}\n")


def perform(
    session: HubSession, state: ChatState, action: Action, *, write: Write, tty: bool
) -> None:
    if isinstance(action, Ask):
        session.call(ask_round(session.hub, state, action.question, write, tty=tty))
    elif isinstance(action, Say):
        write(action.text + "\n")
    elif isinstance(action, ShowMode):
        write(session.call(describe_mode(session.hub, state)) + "\n")
    elif isinstance(action, ShowSeats):
        write(session.call(describe_seats(session.hub, state)) + "\n")


def enable_line_editing() -> None:
    """Importing readline is what gives `input()` line editing and an in-memory history of
    this session's lines; nothing is written to disk. Absent on some platforms: plain input."""
    if not sys.stdin.isatty():
        return
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401
