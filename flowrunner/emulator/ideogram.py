"""Ideogram 3.0 as the gateway family serves it (contracts/ideogram.json): generate, answered
at once with `{created, data: [{url, prompt, resolution, seed, is_image_safe, style_type}]}`.
The emulator's own model, not flowrunner's catalog."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from . import contract
from .exchange import Exchange
from .images import poster
from .routing import Rule

AddFile = Callable[[bytes, str], str]
_SIZES = {"16x9": (1312, 736), "9x16": (736, 1312), "1x1": (1024, 1024), "4x3": (1152, 864),
          "3x4": (864, 1152), "3x2": (1248, 832), "2x3": (832, 1248)}


OPERATIONS = ("generate", "edit", "remix", "reframe", "replace-background", "describe",
              "upscale")


def operation_of(path: str) -> str | None:
    doc = contract.load("ideogram.json")
    return next((name for name in OPERATIONS if doc[name]["route"] == path), None)


def check(fields: dict[str, Any], files: dict[str, list[bytes]] | None = None,
          operation: str = "generate") -> str | None:
    """Why Ideogram refuses this call, or None."""
    doc = contract.load("ideogram.json")
    spec = doc[operation]
    files = files or {}
    problem = _fields_problem(spec, fields, files)
    if problem:
        return problem
    if operation == "upscale":
        return _image_request_problem(spec, fields)
    if operation != "generate":
        spec = {**doc["generate"], **{k: v for k, v in spec.items()
                                      if k not in ("aspect_ratios", "exclusive")}}
    for group in spec["exclusive"]:
        if all(name in fields for name in group):
            return f"{' and '.join(group)} cannot both be set"
    for name, allowed in (("aspect_ratio", spec["aspect_ratios"]),
                          ("rendering_speed", spec["rendering_speed"]),
                          ("magic_prompt", spec["magic_prompt"]),
                          ("style_type", spec["style_type"])):
        if name in fields and fields[name] not in allowed:
            return f"{name} must be one of {', '.join(allowed)}"
    low, high = spec["num_images"]
    count = str(fields.get("num_images", 1))
    if not re.fullmatch(r"\d+", count) or not low <= int(count) <= high:
        return f"num_images must be {low} to {high}"
    return None


def _fields_problem(spec: dict[str, Any], fields: dict[str, Any],
                    files: dict[str, list[bytes]]) -> str | None:
    """Unknown or missing fields and files, and files that are not images."""
    for name in fields:
        if name not in spec["fields"]:
            return f"Unknown field {name!r}"
    for name in files:
        if name not in spec["files"]:
            return f"Unknown file field {name!r}"
    for name in spec["required"]:
        if not fields.get(name):
            return f"{name} is required"
    for name in spec["required_files"]:
        if not files.get(name) or not files[name][0].startswith((b"\x89PNG", b"\xff\xd8",
                                                                  b"RIFF")):
            return f"{name} must be an image file (PNG, JPEG or WEBP)"
    return None


def _image_request_problem(spec: dict[str, Any], fields: dict[str, Any]) -> str | None:
    """Upscale's `image_request`: JSON text of an object with known fields."""
    try:
        request = json.loads(str(fields["image_request"]))
    except ValueError:
        return "image_request must be JSON text"
    if not isinstance(request, dict):
        return "image_request must be a JSON object"
    for name in request:
        if name not in spec["image_request"]:
            return f"Unknown image_request field {name!r}"
    return None


def answer_for(operation: str, fields: dict[str, Any], add_file: AddFile) -> dict[str, Any]:
    if operation == "describe":
        return {"descriptions": [{"text": "An emulated description of the image."}]}
    if operation == "reframe":
        fields = {**fields, "prompt": "reframed"}
    if operation == "upscale":
        fields = {"prompt": json.loads(fields["image_request"]).get("prompt") or "upscaled"}
    return answer(fields, add_file)


def answer(fields: dict[str, Any], add_file: AddFile) -> dict[str, Any]:
    ratio = str(fields.get("aspect_ratio", "1x1"))
    width, height = _SIZES.get(ratio, (1024, 1024))
    seed = json.dumps(fields, sort_keys=True)
    data = []
    for index in range(int(fields.get("num_images", 1))):
        image = poster(width // 4, height // 4, f"{seed}#{index}",
                       prompt=str(fields["prompt"]), endpoint="ideogram v3")
        data.append({"url": add_file(image, "image/png"), "prompt": fields["prompt"],
                     "resolution": f"{width}x{height}", "seed": 12345 + index,
                     "is_image_safe": True,
                     "style_type": fields.get("style_type", "GENERAL")})
    return {"created": "2025-05-01T00:00:00Z", "data": data}


class IdeogramRoutes(Exchange):
    """The ideogram routes' handlers."""

    def _ideogram(self, call: str, body: bytes, record: dict[str, Any]) -> None:
        parsed = self._parse(body, record)
        if parsed is None:
            return
        fields, uploads, _as_json = parsed
        problem = check(fields, uploads, call)
        if problem:
            self._json(400, {"error": problem})
            return
        self._json(200, answer_for(call, fields, self._file_adder()))


def _route(path: str, _query: str) -> dict[str, str] | None:
    call = operation_of(path)
    return None if call is None else {"call": call}


ROUTES = (
    Rule("POST", _route, "ideogram.{call}",
         lambda h, r: h._ideogram(r.parts["call"], r.body, r.record)),
)
