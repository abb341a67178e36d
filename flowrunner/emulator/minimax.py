"""MiniMax (Hailuo) video as the gateway family relays it (contracts/minimax.json): a submit
answering a task id inside `base_resp`, a query until Success gives a file id, and a file
retrieve gives its download URL. The emulator's own model."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from . import contract
from .video import mp4

AddFile = Callable[[bytes, str], str]
OK = {"status_code": 0, "status_msg": "success"}


def check(fields: dict[str, Any]) -> str | None:
    spec = contract.load("minimax.json")
    problem = contract.field_problem(fields, spec["fields"], required=spec["required"],
                                     values=spec["values"])
    if problem:
        return f"invalid params: {problem}"
    if not fields.get("prompt") and not fields.get("first_frame_image"):
        return "invalid params: prompt or first_frame_image is required"
    rules = spec["models"][fields["model"]]
    resolution = fields.get("resolution", rules["resolutions"][0])
    duration = fields.get("duration", 6)
    if resolution not in rules["resolutions"]:
        return f"invalid params: {fields['model']} takes {', '.join(rules['resolutions'])}"
    if duration not in rules["durations"] or (resolution == "1080P" and duration != 6):
        return f"invalid params: duration {duration} is not offered at {resolution}"
    return None


def refused(message: str) -> dict[str, Any]:
    return {"task_id": "", "base_resp": {"status_code": 2013, "status_msg": message}}


def busy(task: dict[str, Any]) -> dict[str, Any]:
    """A query refused for now (MiniMax's 1002, rate limit): no status, only base_resp."""
    return {"task_id": task["id"], "base_resp": {"status_code": 1002,
                                                 "status_msg": "rate limit exceeded"}}


def query(task: dict[str, Any]) -> dict[str, Any]:
    task["polls"] += 1
    if task["polls"] <= task["pending"] or task["stuck"]:
        status = "Queueing" if task["polls"] == 1 else "Processing"
        return {"task_id": task["id"], "status": status, "file_id": "", "base_resp": OK}
    if task["fail"]:
        return {"task_id": task["id"], "status": "Fail", "file_id": "",
                "base_resp": {"status_code": 1027, "status_msg": "emulated task failure"}}
    if task.get("moderate"):  # refused while still queued: only base_resp says so
        return {"task_id": task["id"], "status": "Processing", "file_id": "",
                "base_resp": {"status_code": 1026, "status_msg": "emulated content violation"}}
    return {"task_id": task["id"], "status": "Success", "file_id": task["file_id"],
            "video_width": 144, "video_height": 80, "base_resp": OK}


def retrieve(task: dict[str, Any], add_file: AddFile) -> dict[str, Any]:
    video = mp4(json.dumps(task["body"], sort_keys=True), width=144, height=80)
    return {"file": {"file_id": task["file_id"], "bytes": len(video), "created_at": 1747600000,
                     "filename": "output.mp4", "purpose": "video_generation",
                     "download_url": add_file(video, "video/mp4")},
            "base_resp": OK}
