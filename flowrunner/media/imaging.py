"""Local image steps (`image.resize`, `image.convert`, `image.favicon`, `image.pad`,
`image.crop`): Pillow operations on earlier steps' files, so a kit ends ready to ship.

The only module that imports Pillow. Pure functions: input paths + parameters → encoded
files (bytes, extension); the scheduler stores and caches them like any call's artifacts.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ..errors import StepFailed

FORMATS = {"png": "PNG", "webp": "WEBP", "jpeg": "JPEG", "jpg": "JPEG", "ico": "ICO"}
FAVICON_PNGS = (("apple-touch-icon", 180), ("icon-192", 192), ("icon-512", 512))


def pillow_version() -> str:
    import PIL

    return str(PIL.__version__)


def _open(path: Path, origin: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
        image.load()
    except UnidentifiedImageError:
        raise StepFailed(f"{origin}: {path.name} is not a raster image Pillow can read "
                         "(SVG is not)", hint="feed a PNG, JPEG or WEBP artifact") from None
    except OSError as exc:
        raise StepFailed(f"{origin}: cannot read {path.name}: {exc}") from None
    return image


def _encode(image: Any, fmt: str, *, quality: int = 90, sizes: Any = None,
            background: str = "#ffffff") -> tuple[bytes, str]:
    from PIL import Image

    name = FORMATS[fmt]
    if name == "JPEG" and image.mode in ("RGBA", "LA", "P"):
        flat = Image.new("RGB", image.size, background)
        flat.paste(image.convert("RGBA"), mask=image.convert("RGBA").split()[-1])
        image = flat
    buffer = io.BytesIO()
    options: dict[str, Any] = {}
    if name in ("JPEG", "WEBP"):
        options["quality"] = quality
    if name == "ICO":
        options["sizes"] = sizes or [(16, 16), (32, 32), (48, 48)]
    if name == "PNG":
        options["optimize"] = True
    image.save(buffer, name, **options)
    return buffer.getvalue(), "jpg" if name == "JPEG" else fmt


def _format_of(params: dict[str, Any], image: Any) -> str:
    fmt = params.get("format")
    if fmt:
        return str(fmt)
    return {"JPEG": "jpeg", "WEBP": "webp"}.get(image.format or "", "png")


def _fit(image: Any, width: int | None, height: int | None, mode: str) -> Any:
    from PIL import Image, ImageOps

    if width is None or height is None:
        ratio = image.width / image.height
        width = width or max(1, round((height or 1) * ratio))
        height = height or max(1, round(width / ratio))
    if mode == "stretch":
        return image.resize((width, height), Image.Resampling.LANCZOS)
    if mode == "cover":
        return ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS)
    copy = image.copy()
    copy.thumbnail((width, height), Image.Resampling.LANCZOS)
    return copy


def _colour(value: str | None) -> Any:
    if value in (None, "transparent"):
        return (0, 0, 0, 0)
    return value


def run_operation(operation: str, inputs: list[Path], params: dict[str, Any], *,
                  origin: str) -> list[tuple[bytes, str]]:
    """Apply ``operation`` to the first input; the encoded results, in order.

    Raises:
        StepFailed: the input is not a readable raster image, or the parameters cannot apply.
    """
    from PIL import Image, ImageOps

    image = _open(inputs[0], origin)
    if operation == "resize":
        result = _fit(image, params.get("width"), params.get("height"),
                      params.get("fit", "contain"))
        return [_encode(result, _format_of(params, image), quality=params.get("quality", 90))]
    if operation == "convert":
        fmt = str(params["format"])
        return [_encode(image, fmt, quality=params.get("quality", 90),
                        background=params.get("background", "#ffffff"))]
    if operation == "favicon":
        square = ImageOps.fit(image.convert("RGBA"), (512, 512), Image.Resampling.LANCZOS)
        files = [_encode(square, "ico", sizes=[(16, 16), (32, 32), (48, 48)])]
        for _name, size in FAVICON_PNGS:
            files.append(_encode(square.resize((size, size), Image.Resampling.LANCZOS), "png"))
        return files
    if operation == "pad":
        width, height = int(params["width"]), int(params["height"])
        fitted = _fit(image.convert("RGBA"), width, height, "contain")
        canvas = Image.new("RGBA", (width, height), _colour(params.get("color")))
        canvas.paste(fitted, ((width - fitted.width) // 2, (height - fitted.height) // 2),
                     fitted)
        return [_encode(canvas, _format_of(params, image))]
    if operation == "crop":
        width, height = int(params["width"]), int(params["height"])
        gravity = params.get("gravity", "center")
        centering = {"center": (0.5, 0.5), "top": (0.5, 0.0), "bottom": (0.5, 1.0),
                     "left": (0.0, 0.5), "right": (1.0, 0.5)}[gravity]
        result = ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS, centering=centering)
        return [_encode(result, _format_of(params, image))]
    raise StepFailed(f"{origin}: unknown image operation {operation!r}")


def placeholder(width: int, height: int, *, top: tuple[int, int, int],
                bottom: tuple[int, int, int], words: str, caption: str,
                cutout: bool = False) -> bytes:
    """A deterministic stand-in image for the emulator: a gradient with a mark, the prompt's
    first words and the endpoint drawn on it; ``cutout`` leaves the background transparent
    (what a background removal returns)."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = max(16, width), max(16, height)
    ramp = Image.linear_gradient("L").resize((1, height))
    gradient = Image.composite(Image.new("RGB", (1, height), bottom),
                               Image.new("RGB", (1, height), top), ramp).resize((width, height))
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0)) if cutout else gradient
    draw = ImageDraw.Draw(image)
    radius = min(width, height) // 4
    box = (width // 2 - radius, height // 2 - radius, width // 2 + radius, height // 2 + radius)
    draw.ellipse(box, fill=bottom, outline=top, width=max(2, width // 64))
    ink = (255, 255, 255) if not cutout else bottom
    size = max(12, min(width, height) // 18)
    draw.text((width // 2, height - height // 8), words, fill=ink,
              font=ImageFont.load_default(size=size), anchor="ms")
    draw.text((width // 2, height // 12), caption, fill=ink,
              font=ImageFont.load_default(size=max(10, size * 2 // 3)), anchor="mt")
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=6)
    return buffer.getvalue()


def emulate_processing(source: bytes, operation: str) -> tuple[bytes, tuple[int, int, int],
                                                                  tuple[int, int, int]]:
    """What the emulator's processing tools do to an uploaded picture, cheaply and
    recognisably: "remove_background" keeps an ellipse around the subject and makes the rest
    transparent, "upscale" doubles the size (up to 4096 px). Also returns the picture's top
    and bottom colours, so a vectorized SVG can look like its source."""
    from PIL import Image, ImageDraw

    image = Image.open(io.BytesIO(source)).convert("RGBA")
    top = _rgb(image.getpixel((image.width // 2, 0)))
    bottom = _rgb(image.getpixel((image.width // 2, image.height - 1)))
    if operation == "remove_background":
        mask = Image.new("L", image.size, 0)
        ImageDraw.Draw(mask).ellipse((image.width // 5, image.height // 5,
                                      image.width * 4 // 5, image.height * 4 // 5), fill=255)
        image.putalpha(mask)
    elif operation == "upscale":
        scale = min(2.0, 4096 / max(image.size))
        image = image.resize((int(image.width * scale), int(image.height * scale)),
                             Image.Resampling.LANCZOS).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=6)
    return buffer.getvalue(), top, bottom


def _rgb(pixel: Any) -> tuple[int, int, int]:
    return int(pixel[0]), int(pixel[1]), int(pixel[2])


def difference(before: bytes, after: bytes) -> tuple[bytes, float] | None:
    """A picture of where two same-size rasters differ, and the share of pixels that do;
    None when either is not a raster Pillow reads or their sizes differ."""
    from PIL import Image, ImageChops, UnidentifiedImageError

    try:
        old = Image.open(io.BytesIO(before)).convert("RGBA")
        new = Image.open(io.BytesIO(after)).convert("RGBA")
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    if old.size != new.size:
        return None
    delta = ImageChops.difference(old, new)
    mask = delta.convert("L").point(lambda v: 255 if v > 8 else 0)
    changed = mask.histogram()[255]
    # what a viewer sees of the old picture (transparent parts over grey), faded, with the
    # changed pixels in red
    seen = Image.alpha_composite(Image.new("RGBA", old.size, (200, 200, 200, 255)), old)
    shown = Image.composite(Image.new("RGB", old.size, (230, 40, 90)),
                            seen.convert("RGB").point(lambda v: v // 3 + 150), mask)
    buffer = io.BytesIO()
    shown.save(buffer, "PNG")
    return buffer.getvalue(), changed / (old.size[0] * old.size[1])


def picture_dimensions(path: Path) -> tuple[int | None, int | None]:
    """(width, height) of a raster file from its header, or (None, None)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None, None
