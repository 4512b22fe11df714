"""The installable-app pieces of the web UI: icons, manifest and service worker shell list."""

from __future__ import annotations

import json
import re
import runpy
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "src" / "council" / "web"
ICONS = WEB / "icons"
SCRIPT = ROOT / "scripts" / "make_icons.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ICON_SIZES = {
    "icon-192.png": 192,
    "icon-512.png": 512,
    "maskable-512.png": 512,
    "apple-touch-icon.png": 180,
}
VENDOR_FILES = {"/static/vendor/marked.esm.js", "/static/vendor/purify.es.mjs"}
BACKGROUND = (0x1D, 0x23, 0x2B, 0xFF)


@pytest.fixture(scope="module")
def make_icons() -> dict[str, Any]:
    """The script's globals, loaded without running its `main`."""
    return runpy.run_path(str(SCRIPT))


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Every (type, data) chunk of a PNG file, checking each chunk's CRC on the way."""
    assert data.startswith(PNG_SIGNATURE)
    chunks = []
    at = len(PNG_SIGNATURE)
    while at < len(data):
        (length,) = struct.unpack_from(">I", data, at)
        kind = data[at + 4 : at + 8]
        body = data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack_from(">I", data, at + 8 + length)
        assert crc == zlib.crc32(kind + body), f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        at += 12 + length
    return chunks


def png_header(data: bytes) -> tuple[int, int, int, int]:
    """Width, height, bit depth and colour type from the IHDR chunk, which must come first."""
    kind, body = png_chunks(data)[0]
    assert kind == b"IHDR"
    assert len(body) == 13
    width, height, depth, colour_type = struct.unpack(">IIBB", body[:10])
    return width, height, depth, colour_type


def png_rgba_pixels(data: bytes) -> bytes:
    """The pixels of an unfiltered 8-bit RGBA PNG (the kind make_icons writes), rows joined."""
    width, height, _, _ = png_header(data)
    raw = zlib.decompress(b"".join(body for kind, body in png_chunks(data) if kind == b"IDAT"))
    stride = 1 + width * 4
    assert len(raw) == height * stride
    assert all(raw[row * stride] == 0 for row in range(height)), "every scanline is unfiltered"
    return b"".join(raw[row * stride + 1 : (row + 1) * stride] for row in range(height))


def pixel(pixels: bytes, size: int, x: int, y: int) -> tuple[int, ...]:
    at = (y * size + x) * 4
    return tuple(pixels[at : at + 4])


def manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((WEB / "manifest.webmanifest").read_text(encoding="utf-8"))
    return data


def web_file(url_path: str) -> Path:
    """The file under src/council/web/ that the hub serves at `url_path`."""
    if url_path == "/":
        return WEB / "index.html"
    assert url_path.startswith("/static/"), url_path
    return WEB / url_path.removeprefix("/static/")


def service_worker_shell() -> list[str]:
    source = (WEB / "sw.js").read_text(encoding="utf-8")
    match = re.search(r"const SHELL = \[(.*?)\];", source, re.DOTALL)
    assert match, "sw.js declares its shell as `const SHELL = [...];`"
    return re.findall(r'"([^"]*)"', match.group(1))


@pytest.mark.parametrize(("name", "size"), ICON_SIZES.items())
def test_each_icon_is_an_rgba_png_of_its_stated_size(name: str, size: int) -> None:
    data = (ICONS / name).read_bytes()
    assert png_header(data) == (size, size, 8, 6)
    assert png_chunks(data)[-1] == (b"IEND", b"")


def test_the_committed_icons_hold_exactly_what_the_script_draws(
    make_icons: dict[str, Any],
) -> None:
    assert {icon.name: icon.size for icon in make_icons["ICONS"]} == ICON_SIZES
    for icon in make_icons["ICONS"]:
        committed = png_rgba_pixels((ICONS / icon.name).read_bytes())
        assert committed == make_icons["draw"](icon), f"re-run scripts/make_icons.py: {icon.name}"


def test_drawing_an_icon_twice_gives_identical_bytes(make_icons: dict[str, Any]) -> None:
    icon = make_icons["Icon"]("probe.png", 48, full_bleed=False, scale=1.0)
    assert make_icons["render"](icon) == make_icons["render"](icon)


def test_the_plain_icons_are_a_rounded_square_with_transparent_corners() -> None:
    for name in ("icon-192.png", "icon-512.png"):
        size = ICON_SIZES[name]
        pixels = png_rgba_pixels((ICONS / name).read_bytes())
        for x, y in ((0, 0), (size - 1, 0), (0, size - 1), (size - 1, size - 1)):
            assert pixel(pixels, size, x, y)[3] == 0
        assert pixel(pixels, size, size // 2, 2) == BACKGROUND


def test_the_maskable_icon_keeps_its_artwork_inside_the_central_safe_zone() -> None:
    size = ICON_SIZES["maskable-512.png"]
    pixels = png_rgba_pixels((ICONS / "maskable-512.png").read_bytes())
    safe_radius = 0.4 * size
    centre = size / 2
    outside_colours = {
        pixel(pixels, size, x, y)
        for y in range(size)
        for x in range(size)
        if (x + 0.5 - centre) ** 2 + (y + 0.5 - centre) ** 2 > safe_radius**2
    }
    assert outside_colours == {BACKGROUND}
    assert len({pixel(pixels, size, x, size // 2) for x in range(size)}) > 1, "artwork is drawn"


def test_the_apple_touch_icon_is_opaque_to_its_edges() -> None:
    pixels = png_rgba_pixels((ICONS / "apple-touch-icon.png").read_bytes())
    assert all(alpha == 255 for alpha in pixels[3::4])


def test_the_manifest_installs_council_as_a_standalone_app_at_the_root() -> None:
    data = manifest()
    assert data["name"] == "council"
    assert data["short_name"] == "council"
    assert data["description"]
    assert data["start_url"] == "/"
    assert data["scope"] == "/"
    assert data["display"] == "standalone"
    assert data["background_color"] == "#f6f5f2"
    assert data["theme_color"] == "#1d232b"


def test_every_manifest_icon_points_at_a_file_that_exists() -> None:
    icons = manifest()["icons"]
    assert icons
    for icon in icons:
        path = web_file(icon["src"])
        assert path.is_file(), icon["src"]
        if icon["type"] == "image/png":
            width, height, _, _ = png_header(path.read_bytes())
            assert icon["sizes"] == f"{width}x{height}"
        else:
            assert icon == {
                "src": "/static/icon.svg",
                "sizes": "any",
                "type": "image/svg+xml",
                "purpose": "any",
            }


def test_the_manifest_offers_a_maskable_icon_and_plain_ones() -> None:
    purposes = {icon["src"]: icon["purpose"] for icon in manifest()["icons"]}
    assert purposes["/static/icons/maskable-512.png"] == "maskable"
    assert purposes["/static/icons/icon-192.png"] == "any"
    assert purposes["/static/icons/icon-512.png"] == "any"


def test_the_service_worker_shell_names_only_files_that_exist_or_the_vendor_files() -> None:
    shell = service_worker_shell()
    assert "/" in shell
    assert len(shell) == len(set(shell))
    for url_path in shell:
        assert url_path in VENDOR_FILES or web_file(url_path).is_file(), url_path


def test_the_service_worker_shell_never_names_an_api_route() -> None:
    for url_path in service_worker_shell():
        assert not url_path.startswith(("/api/", "/v1/")), url_path


def test_the_service_worker_cache_name_carries_a_version() -> None:
    source = (WEB / "sw.js").read_text(encoding="utf-8")
    assert re.search(r'^const VERSION = "council-shell-\d+";$', source, re.MULTILINE)
