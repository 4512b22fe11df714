"""Progress shown while a long command runs: a bar on a terminal, plain lines in a log."""

from __future__ import annotations

import sys
from typing import Any

import click

from council.cli.common import size_text


class PullProgress:
    """tqdm's bar on a terminal (bytes, rate, ETA); a plain line every 10 s in a log."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.bar: Any = None
        self.name = ""
        self.last = 0.0

    def begin(self, remote: Any, no: int, count: int) -> None:
        import time

        self.close()
        self.name = remote.path if count == 1 else f"{remote.path} ({no}/{count})"
        self.last = time.monotonic()
        if self.tty and not self.quiet:
            from tqdm import tqdm

            self.bar = tqdm(
                total=remote.size, unit="B", unit_scale=True, desc=self.name, file=sys.stderr
            )

    def __call__(self, done: int, total: int) -> None:
        import time

        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            return
        now = time.monotonic()
        if now - self.last >= 10 or done == total:
            self.last = now
            click.echo(
                f"{self.name}: {size_text(done)} of {size_text(total)} "
                f"({100 * done // max(total, 1)}%)",
                err=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class BuildProgress:
    """One updating line on a terminal; a line per 10% when the output is a log."""

    def __init__(self) -> None:
        self.last = -10
        self.tty = sys.stdout.isatty()

    def __call__(self, percent: int, step: str) -> None:
        if self.tty:
            click.echo(f"\r[{percent:3d}%] {step[:70]:<70}", nl=percent >= 100)
        elif percent >= self.last + 10:
            self.last = percent
            click.echo(f"[{percent:3d}%] {step}")


class EvalProgress:
    """A bar per system on a terminal, with its running accuracy; a line per system in a log."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.bar: Any = None
        self.system = ""

    def __call__(self, system: str, done: int, total: int, accuracy: float | None) -> None:
        if self.quiet:
            return
        shown = "-" if accuracy is None else f"{100 * accuracy:.0f}%"
        if system != self.system:
            self.close()
            self.system = system
            if self.tty:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=system, unit="item", file=sys.stderr)
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            self.bar.set_postfix_str(f"accuracy {shown}")
        elif done == total:
            click.echo(f"{system}: {done} items, accuracy {shown}", err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
