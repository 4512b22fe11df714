"""Numbers for people: sizes in decimal units, parameter counts as model names print them."""

from __future__ import annotations


def _scaled(n: int, units: tuple[str, ...], separator: str) -> str:
    if abs(n) < 1000:
        return f"{n}{separator}{units[0]}"
    value = float(n)
    for unit in units[1:]:
        value /= 1000
        if abs(value) < 999.5 or unit == units[-1]:
            text = f"{value:.1f}" if abs(value) < 99.95 else f"{value:.0f}"
            return f"{text.removesuffix('.0')}{separator}{unit}"
    return f"{n}{separator}{units[-1]}"  # not reached: the last unit always returns


def human_size(n: int) -> str:
    """Bytes in decimal units, as disks and model hubs print them: "640 KB", "1.2 GB"."""
    return _scaled(n, ("B", "KB", "MB", "GB", "TB", "PB"), " ")


def human_count(n: int) -> str:
    """A parameter count as model names print it: "412K", "135M", "7.2B"."""
    return _scaled(n, ("", "K", "M", "B", "T"), "")
