"""Draw council's PNG icons from the same geometry as `src/council/web/icon.svg`.

The SVG is a 64x64 dark rounded square (corner radius 14) holding two gold circles and one
light one. Browsers that install the hub as an app want bitmaps too, so this script paints that
artwork pixel by pixel (stdlib only) and writes:

- `icon-192.png`, `icon-512.png`: the rounded square on a transparent background, like the SVG;
- `maskable-512.png`: full-bleed dark background, artwork scaled into the central 80% safe zone
  so any platform mask (circle, squircle, ...) keeps all three circles;
- `apple-touch-icon.png` (180x180): full-bleed and opaque, since iOS rounds the corners itself
  and turns transparent pixels black.

Edges are anti-aliased from each shape's signed distance: a pixel whose centre lies within half a
pixel of an edge gets the matching fraction of coverage. Run it from the repository root:

    .venv/bin/python scripts/make_icons.py
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

ICON_DIR = Path(__file__).resolve().parent.parent / "src" / "council" / "web" / "icons"

Colour = tuple[float, float, float]

# The artwork, in the SVG's 64-unit viewBox.
VIEWBOX = 64.0
CORNER_RADIUS = 14.0
BACKGROUND: Colour = (0x1D, 0x23, 0x2B)
GOLD: Colour = (0xE2, 0xC3, 0x5B)
LIGHT: Colour = (0xF6, 0xF5, 0xF2)
CIRCLES: tuple[tuple[float, float, float, Colour], ...] = (
    (20.0, 26.0, 7.0, GOLD),
    (44.0, 26.0, 7.0, GOLD),
    (32.0, 44.0, 7.0, LIGHT),
)


@dataclass(frozen=True)
class Icon:
    """One PNG to write: its file name, edge length in pixels, and how the artwork sits in it."""

    name: str
    size: int
    full_bleed: bool = False  # paint the background to every edge instead of a rounded square
    scale: float = 1.0  # fraction of the image the 64-unit artwork spans, centred


ICONS = (
    Icon("icon-192.png", 192),
    Icon("icon-512.png", 512),
    Icon("maskable-512.png", 512, full_bleed=True, scale=0.8),
    Icon("apple-touch-icon.png", 180, full_bleed=True),
)


def rounded_square_distance(x: float, y: float) -> float:
    """Signed distance (viewBox units, negative inside) to the SVG's rounded square."""
    half = VIEWBOX / 2
    qx = abs(x - half) - (half - CORNER_RADIUS)
    qy = abs(y - half) - (half - CORNER_RADIUS)
    outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
    inside = min(max(qx, qy), 0.0)
    return outside + inside - CORNER_RADIUS


def coverage(distance_px: float) -> float:
    """How much of a pixel a shape covers, given its centre's signed distance in pixels."""
    return min(max(0.5 - distance_px, 0.0), 1.0)


def mix(under: Colour, over: Colour, amount: float) -> Colour:
    """`over` laid on `under` at the given opacity."""
    return (
        under[0] + (over[0] - under[0]) * amount,
        under[1] + (over[1] - under[1]) * amount,
        under[2] + (over[2] - under[2]) * amount,
    )


def to_byte(value: float) -> int:
    return min(max(round(value), 0), 255)


def draw(icon: Icon) -> bytes:
    """The icon's pixels: `size` rows of `size` RGBA pixels, top row first."""
    size = icon.size
    px_per_unit = size * icon.scale / VIEWBOX
    offset = size * (1.0 - icon.scale) / 2  # where the artwork's origin lands, in pixels
    pixels = bytearray()
    for row in range(size):
        y = (row + 0.5 - offset) / px_per_unit
        for column in range(size):
            x = (column + 0.5 - offset) / px_per_unit
            if icon.full_bleed:
                alpha = 1.0
            else:
                alpha = coverage(rounded_square_distance(x, y) * px_per_unit)
            colour = BACKGROUND
            # The circles sit well inside the square, so they only ever blend over the background.
            for cx, cy, radius, fill in CIRCLES:
                distance_px = (math.hypot(x - cx, y - cy) - radius) * px_per_unit
                if distance_px < 0.5:
                    colour = mix(colour, fill, coverage(distance_px))
            pixels += bytes((*(to_byte(c) for c in colour), to_byte(alpha * 255)))
    return bytes(pixels)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def encode_png(size: int, rgba: bytes) -> bytes:
    """A square 8-bit RGBA PNG, every scanline with filter type 0 (none)."""
    stride = size * 4
    scanlines = b"".join(b"\x00" + rgba[row * stride : (row + 1) * stride] for row in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # depth 8, colour type 6: RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(scanlines, 9))
        + png_chunk(b"IEND", b"")
    )


def render(icon: Icon) -> bytes:
    """The icon as PNG file bytes."""
    return encode_png(icon.size, draw(icon))


def main(out_dir: Path = ICON_DIR) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for icon in ICONS:
        (out_dir / icon.name).write_bytes(render(icon))


if __name__ == "__main__":
    main()
