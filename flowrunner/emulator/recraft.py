"""Recraft as the gateway family serves it under `/recraft` and as Recraft's own API serves
it (contracts/recraft.json, the OpenAPI spec): generate, edit and process images, styles,
prompt enhancement; answered in Recraft's shapes with its prices."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from .._json import canonical_json
from . import contract, images
from .contract import Refused
from .exchange import Exchange
from .routing import Rule
from .state import task_uuid


class RecraftRoutes(Exchange):
    """The recraft routes' handlers."""

    def _recraft(self, operation: str, body: bytes, record: dict[str, Any]) -> None:
        parsed = self._parse(body, record)
        if parsed is None:
            return
        fields, uploads, as_json = parsed
        try:
            with self.state.lock:
                styles = set(self.state.styles)
            params, files = contract.check_recraft(operation, kind=self.state.kind,
                                                   fields=fields, uploads=uploads,
                                                   as_json=as_json, styles=styles)
        except Refused as exc:
            self._error(exc.status, exc.message)
            return
        seed = canonical_json({"operation": operation, "params": params,
                               "files": {k: [hashlib.sha256(b).hexdigest() for b in v]
                                         for k, v in files.items()}})
        doc = contract.load("recraft.json")["operations"][operation]
        if doc["answer"] == "style":
            style_id = contract.make_style_id(seed)
            with self.state.lock:
                self.state.styles.add(style_id)
            self._json(200, {"id": style_id, "style": params.get("style"),
                             "is_private": params.get("private") in (True, "true"),
                             "creation_time": "2026-01-01T00:00:00Z",
                             "credits": self._price(operation, params)})
        elif doc["answer"] == "enhance":
            words = str(params.get("prompt", "")).strip()
            self._json(200, {"enhanced_prompt": f"{words}, richly detailed, balanced "
                                                "composition, soft natural light",
                             "credits": self._price(operation, params)})
        elif doc["answer"] == "process":
            self._process(operation, doc, params, files, seed)
        else:
            self._generate(operation, doc, params, files, seed)

    def _price(self, operation: str, params: dict[str, Any]) -> float:
        """The call's cost as this provider reports it (the gateway in its own credits)."""
        units = _recraft_units(operation, params)
        if self.state.kind != "gateway":
            return units
        rate = contract.load("gateway.json")["credits"]["recraft_units_per_credit"]
        cost = units / rate
        return int(cost) if cost.is_integer() else round(cost, 4)

    def _image_for(self, operation: str, doc: dict[str, Any], params: dict[str, Any],
                   files: dict[str, list[bytes]], seed: str, index: int) -> tuple[bytes, str]:
        label = str(params.get("prompt", operation))
        shown = f"recraft.{operation}"
        model = str(params.get("model", doc.get("default_model", "")))
        effect = doc.get("effect")
        vector = "vector" in model or params.get("style") == "vector_illustration" or \
            effect == "vectorize"
        source = (files.get("image") or [b""])[0]
        width, height = images.png_size(source) or _size(params.get("size"))
        if effect == "upscale":
            width, height = min(4096, width * 2), min(4096, height * 2)
        seed_i = f"{seed}#{index}"
        if effect and source.startswith(b"\x89PNG") and not self.state.plain_images:
            from ..media.imaging import emulate_processing

            picture, top, bottom = emulate_processing(source, effect)
            if effect == "vectorize":
                return images.svg_from(width, height, top, bottom, shown), "image/svg+xml"
            return picture, "image/png"
        if vector:
            return images.svg(width, height, seed_i, label, shown), "image/svg+xml"
        cutout = effect == "remove_background"
        if self.state.plain_images:
            return images.png(width, height, seed_i, alpha=cutout), "image/png"
        return images.poster(width, height, seed_i, prompt=label, endpoint=shown,
                             cutout=cutout), "image/png"

    def _artifact(self, data: bytes, media_type: str, params: dict[str, Any]) -> dict[str, str]:
        if params.get("response_format") == "b64_json":
            return {"b64_json": base64.b64encode(data).decode()}
        if self.state.take_fault({"file-url"}):
            return {"url": "file:///etc/passwd"}
        name = self.state.add_file(data, media_type)
        return {"url": f"{self._base()}/files/{name}"}

    def _generate(self, operation: str, doc: dict[str, Any], params: dict[str, Any],
                  files: dict[str, list[bytes]], seed: str) -> None:
        count = int(params.get("n", 1) or 1)
        made = [self._image_for(operation, doc, params, files, seed, i) for i in range(count)]
        data = [self._artifact(blob, kind, params) for blob, kind in made]
        if self.state.take_fault({"no-artifact"}):
            data = []
        width, height = _size(params.get("size"))
        digest = hashlib.sha256(seed.encode()).digest()
        self._json(200, {
            "created": 1747600000 + int.from_bytes(digest[:3], "big") % 100000,
            "data": data,
            "usage": None,
            "image": [item["url"] for item in data if "url" in item],
            "metadata": {
                "credits": self._price(operation, params), "height": height, "width": width,
                "images": [{"image_id": task_uuid(f"{seed}#{i}"),
                            "image_invariants": {"preset": params.get("style", "any")},
                            "transparent": False, "vector_image": kind == "image/svg+xml"}
                           for i, (_, kind) in enumerate(made)],
                "random_seed": int.from_bytes(digest[3:6], "big"),
                "request_id": task_uuid("request" + seed),
                "transform_model": params.get("model", doc.get("default_model")),
            },
            "timings": None,
        })

    def _process(self, operation: str, doc: dict[str, Any], params: dict[str, Any],
                 files: dict[str, list[bytes]], seed: str) -> None:
        blob, kind = self._image_for(operation, doc, params, files, seed, 0)
        image = {"image_id": task_uuid(seed), **self._artifact(blob, kind, params)}
        if self.state.take_fault({"no-artifact"}):
            image = {"image_id": task_uuid(seed)}
        self._json(200, {"created": 1747600000, "credits": self._price(operation, params),
                         "image": image})


def _recraft_units(operation: str, params: dict[str, Any]) -> int:
    """What Recraft charges for the call, in its units (contracts/recraft.json prices)."""
    prices = contract.load("recraft.json")["prices"]
    if operation in prices["operations"]:
        return int(prices["operations"][operation])
    vector = "vector" in str(params.get("model", ""))
    count = int(params.get("n", 1) or 1)
    return count * int(prices["per_vector_image" if vector else "per_image"])


def _size(value: Any, default: tuple[int, int] = (1024, 1024)) -> tuple[int, int]:
    if isinstance(value, str):
        match = re.match(r"^(\d+)x(\d+)$", value)
        if match:
            return int(match.group(1)), int(match.group(2))
        match = re.match(r"^(\d+):(\d+)$", value)
        if match:
            w, h = int(match.group(1)), int(match.group(2))
            return (1024, max(1, 1024 * h // w)) if w >= h else (max(1, 1024 * w // h), 1024)
    return default


def _gateway_route(path: str, _query: str) -> dict[str, str] | None:
    operation = contract.gateway_recraft_operation(path)
    return None if operation is None else {"operation": operation}


def _own_route(path: str, _query: str) -> dict[str, str] | None:
    operation = contract.recraft_operation(path)
    return None if operation is None else {"operation": operation}


ROUTES = (
    Rule("POST", _gateway_route, "recraft.{operation}",
         lambda h, r: h._recraft(r.parts["operation"], r.body, r.record)),
    Rule("POST", _own_route, "recraft.{operation}",
         lambda h, r: h._recraft(r.parts["operation"], r.body, r.record),
         kinds=frozenset({"recraft"})),
)
