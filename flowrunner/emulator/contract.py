"""The providers' published contracts, as the emulator checks requests against them.

Recraft: request bodies against Recraft's own OpenAPI spec (vendored in contracts/, MIT) plus
the rules its docs add (contracts/recraft.json: per-model styles, sizes and prompt limits,
input image limits, masks); BFL: its documented model limits (contracts/bfl.json); the
gateway: its auth forms, error bodies, routes and upload fields (contracts/gateway.json).
Nothing here reads flowrunner's catalog, so a wrong catalog entry (a field name, a route, a
model rule) is refused by the emulator instead of mirrored by it.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

CONTRACTS = Path(__file__).resolve().parent / "contracts"
PLACEHOLDER = "(binary)"


class Refused(Exception):
    """The provider would refuse this request: ``status`` and the provider's words."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@cache
def load(name: str) -> dict[str, Any]:
    """A contract document from contracts/ (JSON)."""
    data: dict[str, Any] = json.loads((CONTRACTS / name).read_text(encoding="utf-8"))
    return data


# --- the gateway ---------------------------------------------------------------------------

_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str, "boolean": bool, "integer": int, "number": (int, float), "object": dict,
    "array": list, "any": (str, bool, int, float, dict, list)}


def field_problem(fields: dict[str, Any], types: dict[str, str], *,
                  unknown: str = "unknown field {name!r}", required: Any = (),
                  values: dict[str, list[Any]] | None = None) -> str | None:
    """Why a provider refuses these fields: one it does not know (``unknown``, formatted
    with the field's name), a value of another JSON type than ``types`` says (a boolean is
    not a number), a ``required`` one missing or empty, or a value outside its ``values``;
    None when none of these."""
    for name, value in fields.items():
        wanted = types.get(name)
        if wanted is None:
            return unknown.format(name=name)
        if not isinstance(value, _JSON_TYPES[wanted]) or (
                isinstance(value, bool) and wanted != "boolean"):
            return f"{name} must be a{'n' if wanted[0] in 'aeio' else ''} {wanted}"
    for name in required:
        if not fields.get(name):
            return f"{name} is required"
    for name, allowed in (values or {}).items():
        if name in fields and fields[name] not in allowed:
            return f"{name} must be one of {', '.join(map(str, allowed))}"
    return None


def gateway_key(headers: Any, path: str = "") -> str | None:
    """The key a gateway request carries, as new-api reads it (Bearer, bearer or raw; the
    `sk-` prefix is not part of the stored token; `mj-api-secret` too on Midjourney routes)."""
    auth = load("gateway.json")["auth"]
    names = list(auth["headers"])
    if path.startswith(("/mj/", "/fast/mj/", "/relax/mj/")):
        names += load("midjourney.json")["auth"]["headers"]
    for header in names:
        value = headers.get(header)
        if value:
            return normalise_gateway_key(value)
    return None


def normalise_gateway_key(value: str) -> str | None:
    value = value.strip()
    for prefix in load("gateway.json")["auth"]["strip_prefixes"]:
        if value.startswith(prefix):
            value = value[len(prefix):].strip()
    return value or None


def gateway_recraft_operation(path: str) -> str | None:
    """The Recraft operation a gateway path names, if the gateway serves it."""
    gateway = load("gateway.json")["recraft"]
    if not path.startswith(gateway["prefix"] + "/"):
        return None
    operation = recraft_operation(path[len(gateway["prefix"]):])
    return operation if operation in gateway["operations"] else None


# --- Recraft -------------------------------------------------------------------------------

def recraft_operation(path: str) -> str | None:
    """The Recraft operation at ``path`` of Recraft's own API (`/v1/images/vectorize`, …)."""
    for name, doc in load("recraft.json")["operations"].items():
        if doc["spec_path"] == path:
            return str(name)
    return None


@cache
def _spec() -> dict[str, Any]:
    return load("recraft-openapi.json")


def _request_schema(operation: str, *, as_json: bool) -> str:
    spec_path = load("recraft.json")["operations"][operation]["spec_path"]
    content = _spec()["paths"][spec_path]["post"]["requestBody"]["content"]
    kind = "application/json" if as_json else "multipart/form-data"
    if kind not in content:
        raise Refused(415, f"{spec_path} does not take {kind}")
    return str(content[kind]["schema"]["$ref"].rsplit("/", 1)[1])


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = _spec()["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _properties(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    schema = _resolve(schema)
    found: dict[str, dict[str, Any]] = {}
    for part in schema.get("allOf", ()):
        found.update(_properties(part))
    found.update(schema.get("properties", {}))
    return found


def _is_binary(prop: dict[str, Any]) -> bool:
    prop = _resolve(prop)
    if prop.get("type") == "array":
        return _is_binary(prop.get("items", {}))
    return prop.get("format") == "binary"


@cache
def _validator(schema_name: str) -> Any:
    import jsonschema

    # OpenAPI 3.0 schema objects are (close to) JSON Schema draft 4
    document = {"$ref": f"#/components/schemas/{schema_name}",
                "components": _spec()["components"]}
    return jsonschema.Draft4Validator(document)


def _known_model(model: Any) -> bool:
    contract = load("recraft.json")
    models = _resolve({"$ref": "#/components/schemas/TransformModel"}).get("enum", [])
    return model in models or model in contract["extra_models"]["names"]


def _coerce(name: str, text: str, prop: dict[str, Any]) -> Any:
    """A multipart text field as the type the spec gives it."""
    prop = _resolve(prop)
    kind = prop.get("type")
    if kind in ("object", "array") or "allOf" in prop or "properties" in prop:
        raise Refused(400, f"{name}: nested fields only work in JSON requests "
                           "(send application/json)")
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
    except ValueError:
        raise Refused(400, f"{name}: {text!r} is not a {kind}") from None
    if kind == "boolean":
        if text not in ("true", "false"):
            raise Refused(400, f"{name}: {text!r} is not a boolean")
        return text == "true"
    return text


def decode_data_url(value: str, name: str) -> bytes | None:
    """The bytes of a `data:` URL; None for an http(s) URL (not fetched here)."""
    if value.startswith(("http://", "https://")):
        return None
    match = re.match(r"^data:[\w.+/-]+;base64,(.*)$", value, re.S)
    if not match:
        raise Refused(400, f"{name}: expected a URL or a base64 data URL")
    try:
        return base64.b64decode(match.group(1), validate=True)
    except (binascii.Error, ValueError):
        raise Refused(400, f"{name}: the data URL is not valid base64") from None


def check_recraft(operation: str, *, kind: str, fields: dict[str, Any],
                  uploads: dict[str, list[bytes]], as_json: bool,
                  styles: set[str]) -> tuple[dict[str, Any], dict[str, list[bytes]]]:
    """Check one request to a Recraft operation the way the provider would.

    ``fields`` are the JSON body, or the multipart text fields; ``uploads`` the multipart
    files by field name. Returns (parameters, files by the spec's parameter name).

    Raises:
        Refused: with the status and words the provider would answer.
    """
    contract = load("recraft.json")
    doc = contract["operations"][operation]
    schema_name = _request_schema(operation, as_json=as_json)
    props = _properties({"$ref": f"#/components/schemas/{schema_name}"})
    params: dict[str, Any] = {}
    files: dict[str, list[bytes]] = {}
    if as_json:
        for name, value in fields.items():
            if name not in props:
                raise Refused(400, f"unknown field {name!r}")
            params[name] = value
        for name in [n for n in params if n.endswith(("_url", "_urls"))]:
            values = params[name] if isinstance(params[name], list) else [params[name]]
            decoded = [decode_data_url(str(v), name) for v in values]
            target = name.removesuffix("_urls").removesuffix("_url")
            target = "images" if name == "image_urls" else target
            files[target] = [blob for blob in decoded if blob is not None]
    else:
        mapping = _upload_fields(operation, kind, props)
        for field, blobs in uploads.items():
            if field not in mapping:
                expected = ", ".join(sorted(mapping)) or "none"
                raise Refused(422 if kind == "gateway" else 400,
                              f"unexpected file field {field!r} (expected: {expected})")
            files.setdefault(mapping[field], []).extend(blobs)
        for name, text in fields.items():
            if name not in props or _is_binary(props[name]):
                raise Refused(400, f"unknown field {name!r}")
            params[name] = _coerce(name, str(text), props[name])
        for param in sorted(set(mapping.values())):
            if param not in files and param in _required(schema_name):
                wanted = " or ".join(repr(f) for f, p in mapping.items() if p == param)
                raise Refused(422 if kind == "gateway" else 400,
                              f"field required: {wanted}")
        for param, blobs in files.items():
            many = _resolve(props.get(param, {})).get("type") == "array"
            params[param] = [PLACEHOLDER] * len(blobs) if many else PLACEHOLDER
    _check_schema(schema_name, params)
    _check_models(operation, doc, params, styles)
    _check_images(operation, doc, files)
    return params, files


@cache
def _required(schema_name: str) -> frozenset[str]:
    found: set[str] = set()

    def walk(schema: dict[str, Any]) -> None:
        schema = _resolve(schema)
        for part in schema.get("allOf", ()):
            walk(part)
        found.update(schema.get("required", ()))

    walk({"$ref": f"#/components/schemas/{schema_name}"})
    return frozenset(found)


def _upload_fields(operation: str, kind: str, props: dict[str, Any]) -> dict[str, str]:
    """Multipart file field → the spec's parameter, as this kind of provider reads them."""
    if kind == "gateway":
        fixed = load("gateway.json")["recraft"]["upload_fields"].get(operation)
        if fixed is not None:
            return dict(fixed)
    mapping = {name: name for name, prop in props.items() if _is_binary(prop)}
    singles = [name for name in mapping if name == "image"]
    if singles:
        for alias in load("recraft.json")["single_image_aliases"]["fields"]:
            mapping.setdefault(alias, singles[0])
    return mapping


def _check_schema(schema_name: str, params: dict[str, Any]) -> None:
    if "model" in params and not _known_model(params["model"]):
        raise Refused(400, f"model: unknown model {params['model']!r}")
    # models Recraft documents but its spec does not list yet are checked above
    extra = load("recraft.json")["extra_models"]["names"]
    instance = {k: v for k, v in params.items() if not (k == "model" and v in extra)}
    errors = sorted(_validator(schema_name).iter_errors(instance),
                    key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        where = ".".join(str(p) for p in error.absolute_path) or "body"
        raise Refused(400, f"{where}: {error.message}")


def _family(model: str) -> dict[str, Any]:
    for family in load("recraft.json")["model_families"]:
        if re.search(family["match"], model):
            return dict(family)
    return {}


def _check_ranges(params: dict[str, Any], styles: set[str], contract: dict[str, Any]) -> None:
    """Strength, image count and style id, whatever the model.

    Raises:
        Refused: out of range, or a style id this emulator never made.
    """
    strength = params.get("strength")
    if isinstance(strength, (int, float)) and not 0 <= strength <= 1:
        raise Refused(400, f"strength: {strength} must be between 0 and 1")
    count = params.get("n")
    if isinstance(count, int) and not 1 <= count <= contract["limits"]["n_max"]:
        raise Refused(400, f"n: {count} must be at most {contract['limits']['n_max']}"
                      if count > 0 else f"n: {count} must be at least 1")
    style_id = params.get("style_id")
    if style_id is not None and str(style_id) not in styles and not is_style_id(str(style_id)):
        raise Refused(404, f"style_id {style_id!r} not found")


def _check_models(operation: str, doc: dict[str, Any], params: dict[str, Any],
                  styles: set[str]) -> None:
    contract = load("recraft.json")
    _check_ranges(params, styles, contract)
    style_id = params.get("style_id")
    if "default_model" not in doc:
        return
    model = str(params.get("model") or doc["default_model"])
    if doc.get("models") and not re.search(doc["models"], model):
        raise Refused(400, f"{operation} does not support model {model!r}")
    family = _family(model)
    if not family.get("styles"):
        for name in ("style", "substyle", "negative_prompt"):
            if name in params:
                raise Refused(400, f"{name} is not supported for {model}: styles are not "
                                   "supported for V4 models")
    style = params.get("style")
    for value, only in contract["style_only_for"].items():
        if style == value and not re.search(only, model):
            raise Refused(400, f"style {value!r} is not supported for {model}")
    if "text_layout" in params and not family.get("text_layout"):
        raise Refused(400, f"text_layout is not supported for {model}")
    prompt = params.get("prompt")
    if isinstance(prompt, str) and len(prompt) > family.get("prompt_max", 10000):
        raise Refused(400, f"prompt is longer than {family['prompt_max']} characters "
                           f"for {model}")
    size = params.get("size")
    if isinstance(size, str) and family:
        sizes = contract["sizes"]
        vector = re.search(contract["vector_models"], model)
        allowed = sizes["ratios"] if vector else sizes[family["sizes"]] + sizes["ratios"]
        if size not in allowed:
            raise Refused(400, f"size {size!r} is not supported for {model}")
    if re.search(contract["needs_style_id"], model) and style_id is None:
        raise Refused(400, f"{model} needs a style_id")


def _check_images(operation: str, doc: dict[str, Any], files: dict[str, list[bytes]]) -> None:
    contract = load("recraft.json")
    limits = contract["limits"]
    if operation == "styles":
        blobs = files.get("images", [])
        if not 1 <= len(blobs) <= limits["style_images_max"]:
            raise Refused(400, f"a style takes 1 to {limits['style_images_max']} images, "
                               f"got {len(blobs)}")
        if sum(len(b) for b in blobs) > limits["style_images_max_bytes"]:
            raise Refused(400, "the style images are larger than 10 MB together")
    sizes: dict[str, tuple[int, int]] = {}
    for param, blobs in files.items():
        for blob in blobs:
            if len(blob) > limits["max_bytes"]:
                raise Refused(400, f"{param}: the file is larger than 10 MB")
            if blob.lstrip()[:5] in (b"<?xml", b"<svg ") or b"<svg" in blob[:512]:
                if operation not in contract["svg_input"]["operations"] or param == "mask":
                    raise Refused(400, f"{param}: SVG is not accepted by {operation}")
                continue
            if operation == "styles":  # reference images: any size (10 MB in all, above)
                _open(param, blob)
                continue
            sizes[param] = _check_raster(param, blob, operation, doc, limits)
    if doc.get("mask") and "mask" in files:
        _check_mask(files["mask"][0], sizes.get("image"))


def _open(param: str, blob: bytes) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(blob))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError):
        raise Refused(400, f"{param}: not a PNG, JPEG or WEBP image") from None
    if image.format not in ("PNG", "JPEG", "WEBP"):
        raise Refused(400, f"{param}: {image.format} is not accepted (PNG, JPEG or WEBP)")
    return image


def _check_raster(param: str, blob: bytes, operation: str, doc: dict[str, Any],
                  limits: dict[str, Any]) -> tuple[int, int]:
    image = _open(param, blob)
    width, height = image.size
    low = doc.get("min_side", limits["min_side"])
    if min(width, height) < low or max(width, height) > limits["max_side"]:
        raise Refused(400, f"{param}: {width}x{height}: each side must be {low} to "
                           f"{limits['max_side']} px")
    if width * height > limits["max_pixels"]:
        raise Refused(400, f"{param}: {width}x{height} is more than 16 MP")
    return width, height


def _check_mask(blob: bytes, image_size: tuple[int, int] | None) -> None:
    mask = _open("mask", blob)
    if mask.mode not in ("L", "1"):
        raise Refused(400, f"mask: must be grayscale, not {mask.mode}")
    if image_size is not None and mask.size != image_size:
        raise Refused(400, f"mask: {mask.size[0]}x{mask.size[1]} is not the image's size "
                           f"{image_size[0]}x{image_size[1]}")
    histogram = mask.convert("L").histogram()
    if any(count for value, count in enumerate(histogram) if value not in (0, 255)):
        raise Refused(400, "mask: only black (0) and white (255) are allowed")


# --- style ids -------------------------------------------------------------------------------

_STYLE_SALT = b"flowrunner-emulator-style"


def make_style_id(seed: str) -> str:
    """A style id the way Recraft keeps styles: it stays valid for later runs, so a style id
    is signed (any emulator recognises its own) instead of remembered by one process."""
    import hashlib
    import uuid

    first = hashlib.sha256(seed.encode()).hexdigest()[:20]
    check = hashlib.sha256(_STYLE_SALT + first.encode()).hexdigest()[:12]
    return str(uuid.UUID(first + check))


def is_style_id(value: str) -> bool:
    """Whether ``value`` is a style id an emulator made (not one invented by a recipe)."""
    import hashlib

    digits = value.replace("-", "")
    if len(digits) != 32:
        return False
    check = hashlib.sha256(_STYLE_SALT + digits[:20].encode()).hexdigest()[:12]
    return digits[20:] == check


# --- BFL -----------------------------------------------------------------------------------

def check_bfl(model: str, body: dict[str, Any]) -> dict[str, Any]:
    """Check a Flux submit the way BFL documents its models.

    Raises:
        Refused: 404 for an unknown model, 422 for a field the model does not take or a
            value out of its range.
    """
    contract = load("bfl.json")
    family = next((f for f in contract["families"] if model in f["models"]), None)
    if family is None:
        raise Refused(404, f"model {model!r} not found")
    allowed = set(contract["common"]) | set(family["params"])
    for name in body:
        if name not in allowed:
            raise Refused(422, f"{name}: extra fields not permitted for {model}")
    if model != "flux-fill" and not isinstance(body.get("prompt"), str):
        raise Refused(422, "prompt: field required")
    size = family.get("size")
    if size:
        for name in ("width", "height"):
            value = body.get(name)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                raise Refused(422, f"{name}: must be an integer")
            if value < size["min"] or value > size.get("max", 1 << 20) or \
                    value % size["multiple"]:
                top = f" to {size['max']}" if "max" in size else " or more"
                raise Refused(422, f"{name}: {value} must be {size['min']}{top}, a multiple "
                                   f"of {size['multiple']}, for {model}")
        pixels = int(body.get("width", 1024)) * int(body.get("height", 768))
        if "max_pixels" in size and pixels > size["max_pixels"]:
            raise Refused(422, f"width × height: {pixels:,} pixels is more than 4 MP for "
                               f"{model}")
    ratio = body.get("aspect_ratio")
    if ratio is not None and not re.match(contract["aspect_ratios"], str(ratio)):
        raise Refused(422, f"aspect_ratio: {ratio!r} is not a ratio like 16:9")
    tolerance = body.get("safety_tolerance")
    if tolerance is not None and not (isinstance(tolerance, int) and
                                      0 <= tolerance <= family["safety_tolerance_max"]):
        raise Refused(422, f"safety_tolerance: must be 0 to {family['safety_tolerance_max']} "
                           f"for {model}")
    fmt = body.get("output_format")
    if fmt is not None and fmt not in contract["output_format"]:
        raise Refused(422, f"output_format: must be one of {contract['output_format']}")
    return body
