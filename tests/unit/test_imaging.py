from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from flowrunner.emulator.images import png
from flowrunner.errors import StepFailed
from flowrunner.media.imaging import run_operation


@pytest.fixture
def wide(tmp_path: Path) -> Path:
    path = tmp_path / "wide.png"
    path.write_bytes(png(400, 200, "wide"))
    return path


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize(("params", "size"), [
    ({"width": 100}, (100, 50)),
    ({"height": 100}, (200, 100)),
    ({"width": 100, "height": 100}, (100, 50)),
    ({"width": 100, "height": 100, "fit": "cover"}, (100, 100)),
    ({"width": 100, "height": 100, "fit": "stretch"}, (100, 100)),
])
def test_resize(wide: Path, params: dict, size: tuple[int, int]) -> None:
    [(data, ext)] = run_operation("resize", [wide], params, origin="t")
    assert ext == "png" and _open(data).size == size


def test_convert_to_jpeg_and_webp(wide: Path) -> None:
    [(jpeg, ext)] = run_operation("convert", [wide], {"format": "jpeg"}, origin="t")
    assert ext == "jpg" and jpeg.startswith(b"\xff\xd8\xff")
    [(webp, ext)] = run_operation("convert", [wide], {"format": "webp"}, origin="t")
    assert ext == "webp" and webp[8:12] == b"WEBP"


def test_favicon_set(wide: Path) -> None:
    files = run_operation("favicon", [wide], {}, origin="t")
    assert [ext for _, ext in files] == ["ico", "png", "png", "png"]
    assert sorted(_open(files[0][0]).info["sizes"]) == [(16, 16), (32, 32), (48, 48)]
    assert [_open(d).size for d, _ in files[1:]] == [(180, 180), (192, 192), (512, 512)]


def test_pad_and_crop(wide: Path) -> None:
    [(padded, _)] = run_operation("pad", [wide], {"width": 300, "height": 300}, origin="t")
    card = _open(padded)
    assert card.size == (300, 300)
    assert card.getchannel("A").getpixel((0, 0)) == 0  # transparent margin
    [(cropped, _)] = run_operation("crop", [wide], {"width": 50, "height": 50,
                                                     "gravity": "left"}, origin="t")
    assert _open(cropped).size == (50, 50)


def test_svg_input_is_a_clear_failure(tmp_path: Path) -> None:
    svg = tmp_path / "logo.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg"></svg>')
    with pytest.raises(StepFailed) as info:
        run_operation("resize", [svg], {"width": 10}, origin="logo_small")
    assert "is not a raster image" in info.value.message
