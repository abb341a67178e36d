"""OpenAI-format images as the gateway family serves them (contracts/openai_images.json):
generations (JSON) and edits (multipart), answered at once with `{created, data: [{url |
b64_json, revised_prompt}]}`; gpt-image models answer b64_json only. The emulator's own
model, not flowrunner's catalog."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

from . import contract
from .exchange import Exchange
from .images import poster
from .routing import Rule, pattern

AddFile = Callable[[bytes, str], str]


def check(operation: str, fields: dict[str, Any], files: dict[str, list[bytes]],
          *, as_json: bool) -> str | None:
    """Why the provider refuses this request, or None."""
    doc = contract.load("openai_images.json")
    spec = doc[operation]
    if operation == "generations" and not as_json:
        return "expected a JSON body"
    if operation == "edits" and as_json:
        return "expected multipart/form-data with the image file"
    for name, value in fields.items():
        wanted = spec["fields"].get(name)
        if wanted is None:
            return f"Unrecognized request argument supplied: {name}"
        if wanted == "integer" and not as_json:
            if not re.fullmatch(r"\d+", str(value)):
                return f"{name} must be an integer"
            fields[name] = int(value)
        elif wanted == "integer" and not (isinstance(value, int) and not isinstance(value, bool)):
            return f"{name} must be an integer"
        elif wanted == "string" and not isinstance(value, str):
            return f"{name} must be a string"
    for name in spec["required"]:
        if not fields.get(name):
            return f"Missing required parameter: '{name}'"
    if operation == "edits":
        problem = _edit_files(spec, files)
        if problem:
            return problem
    model = str(fields.get("model", doc["default_model"]))
    if model in doc["retired"]:
        return f"The model `{model}` does not exist or you do not have access to it."
    rules = doc["models"].get(model)
    if rules is None:
        return f"The model `{model}` does not exist or you do not have access to it."
    return _model_problem(model, rules, fields, operation)


def _edit_files(spec: dict[str, Any], files: dict[str, list[bytes]]) -> str | None:
    for name in files:
        if name not in spec["files"]:
            return f"Unrecognized file field: {name}"
    images = [*files.get("image", []), *files.get("image[]", [])]
    if not images:
        return "Missing required parameter: 'image'"
    if len(images) > spec["max_images"]:
        return f"Too many images: at most {spec['max_images']}"
    return None


def _model_problem(model: str, rules: dict[str, Any], fields: dict[str, Any],
                   operation: str) -> str | None:
    if "size" in fields and not _size_ok(rules, str(fields["size"])):
        free = rules.get("free_sizes")
        allowed = ", ".join(rules["sizes"]) + (
            f", or WIDTHxHEIGHT with sides divisible by {free['multiple']}, aspect up to "
            f"{free['max_ratio']}:1, at most {free['max_width']}x{free['max_height']}"
            if free else "")
        return f"Invalid size '{fields['size']}' for {model}: {allowed}"
    if not 1 <= int(fields.get("n", 1)) <= rules["n"]:
        return f"n must be 1 to {rules['n']} for {model}"
    if "quality" in fields and fields["quality"] not in rules["quality"]:
        return f"Invalid quality '{fields['quality']}' for {model}"
    if rules["b64_only"] and "response_format" in fields:
        return f"response_format is not supported for {model} (it always answers b64_json)"
    if fields.get("background") == "transparent" and \
            fields.get("output_format", "png") not in ("png", "webp"):
        return "Transparent background requires output_format png or webp"
    if operation == "edits" and "input_fidelity" in fields and \
            fields["input_fidelity"] not in rules.get("input_fidelity", []):
        return f"input_fidelity '{fields['input_fidelity']}' is not supported for {model}"
    return None


def _size_ok(rules: dict[str, Any], size: str) -> bool:
    if size in rules["sizes"]:
        return True
    free = rules.get("free_sizes")
    match = re.fullmatch(r"(\d+)x(\d+)", size)
    if not free or not match:
        return False
    width, height = int(match.group(1)), int(match.group(2))
    most = max(free["max_width"], free["max_height"])
    return (width > 0 and height > 0 and width % free["multiple"] == 0
            and height % free["multiple"] == 0
            and max(width, height) <= free["max_ratio"] * min(width, height)
            and width * height <= free["max_width"] * free["max_height"]
            and max(width, height) <= most)


def answer(fields: dict[str, Any], add_file: AddFile) -> dict[str, Any]:
    doc = contract.load("openai_images.json")
    model = str(fields.get("model", doc["default_model"]))
    b64 = doc["models"][model]["b64_only"] or fields.get("response_format") == "b64_json"
    size = str(fields.get("size", "1024x1024"))
    width, height = (1024, 1024) if size == "auto" else map(int, size.split("x"))
    seed = json.dumps(fields, sort_keys=True)
    data = []
    for index in range(int(fields.get("n", 1))):
        image = poster(width // 4, height // 4, f"{seed}#{index}",
                       prompt=str(fields.get("prompt", "")), endpoint=model)
        item: dict[str, Any] = {"b64_json": base64.b64encode(image).decode()} if b64 \
            else {"url": add_file(image, "image/png")}
        if model == "dall-e-3":
            item["revised_prompt"] = f"A detailed picture of {fields.get('prompt', '')}"
        data.append(item)
    usage = {"input_tokens": 50, "output_tokens": 4160, "total_tokens": 4210} \
        if model.startswith("gpt-image") else None
    return {"created": 1747600000, "data": data, **({"usage": usage} if usage else {})}


class OpenAIImagesRoutes(Exchange):
    """The openai_images routes' handlers."""

    def _openai_images(self, call: str, body: bytes, record: dict[str, Any]) -> None:
        parsed = self._parse(body, record)
        if parsed is None:
            return
        fields, uploads, as_json = parsed
        problem = check(call, fields, uploads, as_json=as_json)
        if problem:
            self._json(400, {"error": {"message": problem, "type": "invalid_request_error",
                                       "param": None, "code": None}})
            return
        self._json(200, answer(fields, self._file_adder()))


ROUTES = (
    Rule("POST", pattern(r"/v1/images/(?P<call>generations|edits)"), "openai.images.{call}",
         lambda h, r: h._openai_images(r.parts["call"], r.body, r.record)),
)
