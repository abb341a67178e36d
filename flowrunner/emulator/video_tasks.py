"""Luma, Veo, Pika and reverse-format Sora as gateways relay them
(contracts/video_tasks.json): a submit, then a poll until the video is done, each family
with its own words and shapes (Veo and Sora share `/v1/video/create`, told apart by the
model). The emulator's own model, not flowrunner's catalog."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from . import contract
from .video import mp4

AddFile = Callable[[bytes, str], str]


def family_of(route_family: str, fields: dict[str, Any]) -> str:
    """The family a submit belongs to: on the shared create route, Sora's models are
    Sora's."""
    if route_family == "veo" and str(fields.get("model", "")).startswith("sora-"):
        return "sora_reverse"
    return route_family


def check(family: str, fields: dict[str, Any]) -> str | None:
    spec = contract.load("video_tasks.json")[family]
    problem = contract.field_problem(fields, spec["fields"], required=spec["required"],
                                     values=spec.get("values"))
    if problem is None and family == "sora_reverse":
        model = fields["model"]
        allowed = spec["durations"][model]
        if "duration" in fields and fields["duration"] not in allowed:
            problem = f"duration must be one of {', '.join(map(str, allowed))} for {model}"
        elif fields.get("size") == "large" and model not in spec["large_only"]:
            problem = f"size large needs {' or '.join(spec['large_only'])}"
    if problem is None and family == "pika":
        missing = [n for n in spec["options_required"] if n not in fields["options"]]
        problem = f"options.{missing[0]} is required" if missing else \
            contract.field_problem(fields["options"], spec["options_types"],
                                   unknown="options: unknown field {name!r}")
    return problem


def submitted(family: str, task_id: str) -> dict[str, Any]:
    if family == "luma":  # the gateway's Luma format (Luma-API), not Luma's official one
        return {"id": task_id, "prompt": "", "state": "pending", "video": None,
                "created_at": "2026-12-03T00:00:00Z", "liked": None,
                "estimate_wait_seconds": None}
    if family == "veo":
        return {"id": task_id, "status": "pending"}
    if family == "sora_reverse":
        return {"id": task_id, "status": "pending", "status_update_time": 1764720000000}
    return {"id": task_id}


def poll(task: dict[str, Any], add_file: AddFile) -> dict[str, Any]:
    task["polls"] += 1
    family = task["family_kind"]
    done = task["polls"] > task["pending"] and not task["stuck"]
    url = ""
    if done and not task["fail"]:
        url = add_file(mp4(json.dumps(task["body"], sort_keys=True), width=144, height=80),
                       "video/mp4")
    if family == "luma":
        state = "processing" if not done else "failed" if task["fail"] else "completed"
        return {"id": task["id"], "prompt": task["body"].get("user_prompt", ""),
                "state": state, "created_at": "2026-12-03T00:00:00Z", "liked": None,
                "estimate_wait_seconds": None,
                "failure_reason": "emulated task failure" if state == "failed" else None,
                "video": {"url": url, "download_url": url, "width": 144, "height": 80,
                          "thumbnail": None} if url else None}
    if family == "sora_reverse":
        status = "processing" if not done else "failed" if task["fail"] else "completed"
        sora: dict[str, Any] = {"id": task["id"], "object": "video",
                                "model": task["body"]["model"], "status": status,
                                "progress": "100" if done else "40", "created_at": 1764720000,
                                "status_update_time": 1764720000000}
        if url:
            sora["video_url"] = url
        if status == "failed":
            sora["error"] = "emulated task failure"
        return sora
    if family == "veo":
        status = "running" if not done else "failed" if task["fail"] else "succeeded"
        answer: dict[str, Any] = {"id": task["id"], "status": status}
        if url:
            answer["video_url"] = url
        if status == "failed":
            answer["error"] = "emulated task failure"
        return answer
    status = "pending" if not done else "error" if task["fail"] else "finished"
    return {"id": task["id"], "promptText": task["body"].get("promptText"),
            "videos": [{"id": task["id"] + "-v", "status": status,
                        "progress": 100 if done else 40, "resultUrl": url,
                        "error": "emulated task failure" if status == "error" else None}]}
