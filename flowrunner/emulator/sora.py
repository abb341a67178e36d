"""OpenAI's videos (Sora) as the gateway family serves them (contracts/sora.json): a
multipart create, a retrieve polled until completed, and the video's bytes from `/content`
behind the same key; Sora's own models refused since OpenAI shut its API down (a gateway
may still serve other models on this route). The emulator's own model, not flowrunner's
catalog."""

from __future__ import annotations

import json
from typing import Any

from . import contract
from .video import mp4


def check(fields: dict[str, Any], files: dict[str, list[bytes]], *, as_json: bool
          ) -> str | None:
    spec = contract.load("sora.json")
    if as_json:
        return "expected multipart/form-data"
    for name in fields:
        if name not in spec["fields"]:
            return f"Unrecognized request argument supplied: {name}"
    for name in files:
        if name != spec["file"]:
            return f"Unrecognized file field: {name}"
    for name in spec["required"]:
        if not fields.get(name):
            return f"Missing required parameter: '{name}'"
    for name, allowed in spec["values"].items():
        if name in fields and fields[name] not in allowed:
            return f"Invalid value for '{name}': one of {', '.join(allowed)}"
    shut = spec["shut_down"]
    if fields.get("model", spec["default_model"]) in shut["models"]:
        return shut["message"]  # OpenAI's Sora models: the API is gone
    return None


def video(task: dict[str, Any], *, advance: bool) -> dict[str, Any]:
    if advance:
        task["polls"] += 1
    body = task["body"]
    status = "queued" if task["polls"] == 0 else "in_progress"
    if task["polls"] > task["pending"] and not task["stuck"]:
        status = "failed" if task["fail"] else "completed"
    answer = {"id": task["id"], "object": "video", "model": body.get("model", "sora-2"),
              "status": status, "progress": 100 if status == "completed" else 40,
              "created_at": 1747600000, "seconds": body.get("seconds", "4"),
              "size": body.get("size", "720x1280")}
    if status == "failed":
        answer["error"] = {"code": "video_generation_failed",
                           "message": "emulated task failure"}
    return answer


def content(task: dict[str, Any]) -> bytes | None:
    """The MP4 once the video is completed (None before)."""
    if video(task, advance=False)["status"] != "completed":
        return None
    width, height = map(int, str(task["body"].get("size", "720x1280")).split("x"))
    return mp4(json.dumps(task["body"], sort_keys=True), width=width // 10 // 16 * 16,
               height=height // 10 // 16 * 16)
