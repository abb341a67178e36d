"""The gateway family's unified video route (contracts/video.json): one submit for every
video model it routes, then `GET /v1/video/generations/{task_id}` until done, answered in
new-api's task envelope (newapi.py) or, when asked, the documented swagger shape
(`{task_id, status: completed, url}`). The emulator's own model, not flowrunner's
catalog."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from .._json import canonical_json
from . import contract, newapi
from .exchange import Exchange
from .routing import Rule, exact, pattern
from .state import still_running
from .video import mp4

AddFile = Callable[[bytes, str], str]


def check(fields: dict[str, Any]) -> str | None:
    spec = contract.load("video.json")
    return contract.field_problem(fields, spec["fields"], required=spec["required"])


def poll(task: dict[str, Any], add_file: AddFile) -> dict[str, Any]:
    """The fetch answer for the task's state, advancing it by one poll, in its shape."""
    answer = _swagger(task, add_file)
    if task.get("shape") == "reshaped":
        return answer
    state = {"queued": "queued", "in_progress": "processing", "completed": "succeeded",
             "failed": "failed"}[answer["status"]]
    reason = (answer.get("error") or {}).get("message", "")
    return newapi.fetched(task["id"], "generate", state, url=answer["url"], reason=reason,
                          upstream={"status": answer["status"]})


def submitted(task: dict[str, Any]) -> dict[str, Any]:
    if task.get("shape") == "reshaped":
        return {"task_id": task["id"], "status": "queued"}
    return newapi.submitted(task["id"], str(task["body"].get("model", "")))


def _swagger(task: dict[str, Any], add_file: AddFile) -> dict[str, Any]:
    task["polls"] += 1
    body = task["body"]
    answer: dict[str, Any] = {"task_id": task["id"], "status": "in_progress", "url": "",
                              "format": "", "metadata": {}, "error": None}
    if still_running(task) or task["stuck"]:
        answer["status"] = "queued" if task["polls"] == 1 else "in_progress"
        return answer
    if task["fail"]:
        answer.update(status="failed", error={"code": "failed",
                                              "message": "emulated task failure"})
        return answer
    width = max(16, min(256, int(body.get("width", 144)) // 16 * 16))
    height = max(16, min(256, int(body.get("height", 80)) // 16 * 16))
    seconds = float(body.get("duration", 1) or 1)
    video = mp4(json.dumps(body, sort_keys=True), width=width, height=height,
                seconds=min(seconds, 3.0))
    answer.update(status="completed", url=add_file(video, "video/mp4"), format="mp4",
                  metadata={"duration": seconds, "fps": 12, "width": width, "height": height,
                            "seed": int(body.get("seed", 0))})
    return answer


class UnifiedVideoRoutes(Exchange):
    """The unified_video routes' handlers."""

    def _video_submit(self, body: bytes, record: dict[str, Any]) -> None:
        fields = self._json_submit(body, record, check,
                                   lambda problem: self._error(400, problem))
        if fields is None:
            return
        digest = hashlib.sha256((canonical_json(fields) + str(time.monotonic_ns())).encode())
        task_id = newapi.task_id(digest.hexdigest())
        with self.state.lock:
            task = self.state.tasks[task_id] = {
                "family": "video", "id": task_id, "body": fields, "polls": 0,
                "shape": "reshaped" if self.state.take_fault_locked({"reshaped"}) is not None
                else "gateway",
                "fail": self.state.take_fault_locked({"fail-task"}) is not None,
                "stuck": self.state.take_fault_locked({"stuck-task"}) is not None}
        self._json(200, submitted(task))

    def _video_get(self, task_id: str) -> None:
        with self.state.lock:
            task = self.state.tasks.get(task_id)
        if task is None or task.get("family") != "video":
            self._error(404, "task not found")
            return
        self._json(200, poll(task, self._file_adder()))


ROUTES = (
    Rule("POST", exact("/v1/video/generations"), "video.generate",
         lambda h, r: h._video_submit(r.body, r.record), busy=lambda h: h._busy()),
    Rule("GET", pattern(r"/v1/video/generations/(?P<id>[^/]+)"), "video.get",
         lambda h, r: h._video_get(r.parts["id"])),
)
