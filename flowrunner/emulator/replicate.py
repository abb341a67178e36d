"""Replicate as the gateway family relays it (contracts/replicate.json): create a prediction
on a model (201), then poll it on the gateway's own get route, although its `urls.get`
points at api.replicate.com. The emulator's own model, not flowrunner's catalog."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from . import contract
from .images import poster

AddFile = Callable[[bytes, str], str]


def check(fields: dict[str, Any], *, by_version: bool = False) -> str | None:
    """Why Replicate refuses a create on a model's route (or, ``by_version``, on the
    predictions route with a version id), or None."""
    doc = contract.load("replicate.json")
    spec = doc["version_body"] if by_version else doc["body"]
    for name in fields:
        if name not in spec["fields"]:
            return f"unknown field {name!r}"
    if not isinstance(fields.get("input"), dict):
        return "input is required and must be an object"
    if by_version and not re.fullmatch(spec["version"], str(fields.get("version", ""))):
        return "version must be a model version's 64-character id"
    return None


def version(owner_name: str, version_id: str) -> dict[str, Any]:
    """A model version record (what the client reads before it runs one)."""
    return {"id": version_id, "created_at": "2025-05-01T00:00:00Z", "cog_version": "0.9.0",
            "openapi_schema": {"components": {"schemas": {"Output": {
                "type": "array", "items": {"type": "string", "format": "uri"}}}}}}


def prediction(task: dict[str, Any], *, status: str, output: Any = None,
               error: str | None = None) -> dict[str, Any]:
    host = contract.load("replicate.json")["answer"]["urls_host"]
    return {"id": task["id"], "model": task["model"], "version": "emulated",
            "input": task["body"]["input"], "status": status, "output": output,
            "error": error, "logs": "", "created_at": "2025-05-01T00:00:00Z",
            "urls": {"get": f"https://{host}/v1/predictions/{task['id']}",
                     "cancel": f"https://{host}/v1/predictions/{task['id']}/cancel"}}


def poll(task: dict[str, Any], add_file: AddFile) -> dict[str, Any]:
    task["polls"] += 1
    if task["polls"] <= task["pending"] or task["stuck"]:
        return prediction(task, status="starting" if task["polls"] == 1 else "processing")
    if task["fail"]:
        return prediction(task, status="failed", error="emulated prediction failure")
    inputs = task["body"]["input"]
    count = int(inputs.get("num_outputs", 1) or 1)
    seed = json.dumps(task["body"], sort_keys=True)
    urls = [add_file(poster(256, 256, f"{seed}#{i}", prompt=str(inputs.get("prompt", "")),
                            endpoint=task["model"]), "image/png") for i in range(count)]
    return prediction(task, status="succeeded", output=urls if count > 1 or
                      task["model"].endswith("-list") else urls[0])
