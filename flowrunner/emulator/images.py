"""Deterministic placeholder images for the emulator: PNG (RGB or RGBA) and SVG, from a seed.

Standard library only. Rows are gradients stored with PNG's Up filter, so even a
2048×1024 image is a few kilobytes.
"""

from __future__ import annotations

import hashlib
import html
import struct
import zlib
from collections.abc import Iterator


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def palette(seed: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    digest = hashlib.sha256(seed.encode()).digest()
    return (digest[0], digest[1], digest[2]), (digest[3], digest[4], digest[5])


def png(width: int, height: int, seed: str, *, alpha: bool = False) -> bytes:
    """A vertical gradient between two colours chosen by ``seed``; RGBA fades at the edges."""
    width, height = max(1, width), max(1, height)
    top, bottom = palette(seed)
    raw = bytearray()
    previous: bytes | None = None
    rows: dict[bytes, bytes] = {}  # a gradient repeats the same row deltas: build each once
    for y in range(height):
        t = y / max(1, height - 1)
        pixel = bytes(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        if alpha:
            edge = min(y, height - 1 - y) / max(1, height / 4)
            pixel += bytes([int(255 * min(1.0, edge))])
        if previous is None:
            raw += b"\x00" + pixel * width
        else:
            delta = bytes((c - p) & 0xFF for c, p in zip(pixel, previous, strict=True))
            row = rows.get(delta)
            if row is None:
                row = rows[delta] = b"\x02" + delta * width
            raw += row
        previous = pixel
    header = struct.pack(">IIBBBBB", width, height, 8, 6 if alpha else 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(bytes(raw), 1)) + _chunk(b"IEND", b""))


def svg(width: int, height: int, seed: str, label: str = "", caption: str = "") -> bytes:
    top, bottom = palette(seed)
    return svg_from(width, height, top, bottom, caption, label)


def svg_from(width: int, height: int, top: tuple[int, int, int], bottom: tuple[int, int, int],
             caption: str = "", label: str = "") -> bytes:
    """A real SVG of the placeholder picture: its gradient, its mark, its words."""
    text = html.escape(" ".join(label.split()[:6]))
    note = html.escape(caption)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">'
            f'<defs><linearGradient id="g" x1="0" y1="0" x2="0" y2="1">'
            f'<stop offset="0" stop-color="rgb{top}"/><stop offset="1" stop-color="rgb{bottom}"/>'
            f'</linearGradient></defs>'
            f'<rect width="{width}" height="{height}" fill="url(#g)"/>'
            f'<circle cx="{width // 2}" cy="{height // 2}" r="{min(width, height) // 4}" '
            f'fill="rgb{bottom}" stroke="rgb{top}" stroke-width="{max(2, width // 64)}"/>'
            f'<text x="{width // 2}" y="{height - height // 10}" text-anchor="middle" '
            f'font-family="sans-serif" font-size="{max(12, width // 24)}">{text}</text>'
            f'<text x="{width // 2}" y="{max(14, height // 12)}" text-anchor="middle" '
            f'font-family="sans-serif" font-size="{max(10, width // 36)}">{note}</text>'
            f"</svg>\n").encode()


def poster(width: int, height: int, seed: str, *, prompt: str, endpoint: str,
           cutout: bool = False) -> bytes:
    """The `--mock` picture: a gradient seeded by the request, the prompt's first words and
    the endpoint drawn on it (Pillow, through flowrunner.media.imaging)."""
    from ..media.imaging import placeholder

    top, bottom = palette(seed)
    words = " ".join(prompt.split()[:6])
    return placeholder(width, height, top=top, bottom=bottom, words=words, caption=endpoint,
                       cutout=cutout)


def png_size(data: bytes) -> tuple[int, int] | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    return None


def big_png_stream(total: int) -> Iterator[bytes]:
    """A structurally valid PNG of exactly ``total`` bytes, generated as it streams."""
    header = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    trailer = _chunk(b"IEND", b"")
    payload = max(0, total - len(header) - len(trailer) - 12)
    yield header + struct.pack(">I", payload) + b"IDAT"
    block = b"\x00" * (1 << 16)
    left = payload
    while left > 0:
        piece = block if left >= len(block) else block[:left]
        left -= len(piece)
        yield piece
    yield b"\x00\x00\x00\x00" + trailer
