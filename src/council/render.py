"""A council round in the terminal: each seat labelled, progress while waiting, the chair live.

Seats answer in parallel, so their tokens cannot be interleaved readably. While a stage runs, a
single status line (on a terminal) counts each seat's tokens; a seat's answer is printed whole,
under its name, when it is done. The chair's answer is the one streamed token by token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from council.deliberation.events import Event

Write = Callable[[str], None]
STAGE_TITLES = {"answer": "answers", "review": "reviews", "chair": "final answer"}


@dataclass
class TerminalRenderer:
    write: Write  # writes text as is, no newline added
    tty: bool
    status: str = ""
    _tokens: dict[str, int] = field(default_factory=dict)
    _chair_open: bool = False
    final: dict[str, Any] = field(default_factory=dict)

    def __call__(self, event: Event) -> None:
        handler = getattr(self, f"on_{event.type}", None)
        if handler is not None:
            handler(event.data)

    def on_run_start(self, data: dict[str, Any]) -> None:
        self.line(
            f"council · {data['mode']} · seats: {', '.join(data['seats'])} · chair: {data['chair']}"
        )

    def on_stage_start(self, data: dict[str, Any]) -> None:
        self._tokens = dict.fromkeys(data["seats"], 0)
        title = STAGE_TITLES.get(data["stage"], data["stage"])
        if data["stage"] == "answer" and data["layer"]:
            title += f" (layer {data['layer']})"
        self.line(f"\n── {title}: {', '.join(data['seats'])}")
        self._chair_open = False
        self._show_progress()

    def on_seat_delta(self, data: dict[str, Any]) -> None:
        self._tokens[data["seat"]] = self._tokens.get(data["seat"], 0) + 1
        self._show_progress()

    def on_chair_delta(self, data: dict[str, Any]) -> None:
        if not self._chair_open:
            self._clear_progress()
            self.write(f"▌ {data['seat']}\n")
            self._chair_open = True
        self.write(data["delta"])

    def on_seat_done(self, data: dict[str, Any]) -> None:
        self._tokens.pop(data["seat"], None)
        if data["stage"] == "chair":
            self.write("\n")
            return
        seconds = data["wall_ms"] / 1000
        self.line(f"▌ {data['seat']} ({data['completion_tokens']} tokens, {seconds:.1f} s)")
        self.line(data["content"].rstrip() + "\n")
        self._show_progress()

    def on_seat_error(self, data: dict[str, Any]) -> None:
        self._tokens.pop(data["seat"], None)
        if self._chair_open:
            self.write("\n")
        self.line(f"✗ {data['seat']} {data['status']}: {data['error']}")
        self._show_progress()

    def on_review_done(self, data: dict[str, Any]) -> None:
        if data["ranking"]:
            how = " (asked for under a grammar)" if data.get("ranking_by") == "grammar" else ""
            self.line(f"  {data['seat']} ranks: {' > '.join(data['ranking'])}{how}")
        else:
            self.line(f"  {data['seat']}: ranking unparsed ({data['problem']})")

    def on_ranking(self, data: dict[str, Any]) -> None:
        self.line(f"\n── aggregate ranking ({data['valid']} of {data['reviews']} rankings read)")
        for standing in data["standings"]:
            seat, mean = standing["seat"], standing["mean_rank"]
            if mean is None:
                self.line(f"  {seat:<16} no valid rankings")
            else:
                self.line(f"  {seat:<16} mean rank {mean:.2f}  Borda {standing['borda']:.2f}")

    def on_vote(self, data: dict[str, Any]) -> None:
        counts = ", ".join(f"{answer}: {n}" for answer, n in data["counts"].items()) or "none"
        self.line(f"\n── vote: {counts}")

    def on_note(self, data: dict[str, Any]) -> None:
        self.line(f"note: {data['text']}")

    def on_error(self, data: dict[str, Any]) -> None:
        self.line(f"error: {data['message']}")

    def on_done(self, data: dict[str, Any]) -> None:
        self._clear_progress()
        self.final = data
        result = data.get("result") or {}
        voted = "winner" in result  # a vote's chair only broke a tie: the winner is the answer
        if data["status"] == "done" and data["answer"] and (voted or not self._chair_open):
            self.line(f"\n── answer\n{data['answer']}")
        if data["status"] == "done" and voted:
            self.line(f"({vote_summary(result)})")
        elif data["status"] == "cancelled":
            self.line("\nstopped; what the seats had written is kept as cancelled")

    def line(self, text: str) -> None:
        self._clear_progress()
        self.write(text + "\n")

    def _show_progress(self) -> None:
        if not self.tty or not self._tokens:
            return
        self.status = "  " + " · ".join(f"{seat} {n} tok" for seat, n in self._tokens.items())
        self.write("\r" + self.status[:110] + "\x1b[K")

    def _clear_progress(self) -> None:
        if self.tty and self.status:
            self.write("\r\x1b[K")
            self.status = ""


def vote_summary(result: dict[str, Any]) -> str:
    """`votes: 2 of 3; decided by majority`, from a vote's result."""
    return f"votes: {result['votes']} of {result['voters']}; decided by {result['decided_by']}"
