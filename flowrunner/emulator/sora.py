"""OpenAI's videos (Sora) as the gateway family serves them (contracts/sora.json): a
multipart create, a retrieve polled until completed, and the video's bytes from `/content`
behind the same key; Sora's own models refused since OpenAI shut its API down (a gateway
may still serve other models on this route). The emulator's own model, not flowrunner's
catalog."""

from __future__ import annotations

import json
import time
from typing import Any

from .._json import canonical_json
from . import contract
from .exchange import Exchange
from .routing import Rule, pattern
from .state import still_running, task_uuid
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
    if not still_running(task) and not task["stuck"]:
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


class SoraRoutes(Exchange):
    """The sora routes' handlers."""

    def _sora(self, method: str, video_id: str | None, wants_content: bool, body: bytes,
              record: dict[str, Any]) -> None:
        if method == "POST" and video_id is None:
            record["operation"] = "sora.create"
            parsed = self._parse(body, record)
            if parsed is None:
                return
            fields, uploads, as_json = parsed
            problem = check(fields, uploads, as_json=as_json)
            if problem:
                self._json(400, {"error": {"message": problem, "type": "invalid_request_error",
                                           "code": None}})
                return
            task_id = "video_" + task_uuid(canonical_json(fields) + str(time.monotonic_ns()))[:24]
            with self.state.lock:
                made: dict[str, Any] = {
                    "family": "sora", "id": task_id, "body": fields, "polls": 0,
                    "fail": self.state.take_fault_locked({"fail-task"}) is not None,
                    "stuck": self.state.take_fault_locked({"stuck-task"}) is not None}
                self.state.tasks[task_id] = made
            self._json(200, video(made, advance=False))
            return
        with self.state.lock:
            task = self.state.tasks.get(video_id or "")
        if method != "GET" or task is None or task.get("family") != "sora":
            self._json(404, {"error": {"message": "Video not found", "type":
                                       "invalid_request_error", "code": None}})
            return
        if wants_content:
            record["operation"] = "sora.content"
            data = content(task)
            if data is None:
                self._json(409, {"error": {"message": "Video is not ready", "type":
                                           "invalid_request_error", "code": None}})
                return
            self._send(200, data, "video/mp4")
            return
        record["operation"] = "sora.retrieve"
        self._json(200, video(task, advance=True))


ROUTES = (  # the handler records the operation (create, retrieve, content)
    Rule("*", pattern(r"/v1/videos(?:/(?P<id>[^/]+)(?P<content>/content)?)?"), "",
         lambda h, r: h._sora(r.method, r.parts["id"] or None, bool(r.parts["content"]),
                              r.body, r.record)),
)
