"""The --mock pictures: at the requested size, drawn from the request, deterministic."""

from __future__ import annotations

import io

from PIL import Image

from flowrunner.emulator import images
from flowrunner.media.imaging import emulate_processing


def test_poster_is_the_requested_size_deterministic_and_not_flat() -> None:
    first = images.poster(1820, 1024, "seed", prompt="Wide banner for Acme Fox Coffee",
                          endpoint="recraft.generate_image")
    assert first == images.poster(1820, 1024, "seed", prompt="Wide banner for Acme Fox Coffee",
                                  endpoint="recraft.generate_image")
    other = images.poster(1820, 1024, "other", prompt="x", endpoint="recraft.generate_image")
    assert other != first
    picture = Image.open(io.BytesIO(first))
    assert picture.size == (1820, 1024)
    assert len(picture.getcolors(maxcolors=100_000) or []) > 50  # gradient, mark and words
    assert len(first) < 100_000  # small on disk


def test_background_removal_leaves_transparency_and_upscale_doubles() -> None:
    source = images.poster(512, 512, "s", prompt="logo", endpoint="recraft.generate_image")
    cut, top, bottom = emulate_processing(source, "remove_background")
    picture = Image.open(io.BytesIO(cut))
    assert picture.mode == "RGBA"
    alpha = picture.getchannel("A")
    assert alpha.getpixel((0, 0)) == 0 and alpha.getpixel((256, 256)) == 255
    big, _, _ = emulate_processing(source, "upscale")
    assert Image.open(io.BytesIO(big)).size == (1024, 1024)
    svg = images.svg_from(512, 512, top, bottom, "recraft.vectorize")
    assert svg.startswith(b"<svg") and svg.rstrip().endswith(b"</svg>")
    assert f"rgb{top}".replace(" ", "").encode() in svg.replace(b" ", b"")
