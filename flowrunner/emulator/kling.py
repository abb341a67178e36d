"""Kling as the gateway family serves it (contracts/kling.json): text to video, image to
video and images, each a task polled on its own route. Answers come in new-api's task
envelope (newapi.py: `{code: "success", data: {status: SUCCESS, result_url, data: <Kling's
answer>}}`), the gateway family's default; when asked, in Kling's own shape (`{code: 0,
data: {task_id, task_status, task_result}}`, a passthrough gateway) or the documented
reshaped one (`{task_id, status, url, …}`). The emulator's own model."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from typing import Any

from .._json import canonical_json
from . import contract, newapi
from .exchange import Exchange
from .images import poster
from .routing import Rule
from .state import still_running
from .video import mp4

AddFile = Callable[[bytes, str], str]


def check(operation: str, body: dict[str, Any]) -> str | None:
    """Why Kling refuses this submit, or None."""
    doc = contract.load("kling.json")
    spec, values = doc["operations"][operation], doc["values"]
    problem = contract.field_problem(body, spec["fields"])
    if problem:
        return problem + (' ("5" or "10")' if problem.startswith("duration ") else "")
    for name in spec["required"]:
        if not body.get(name):
            return f"{name} is required"
    if "model_name" in body and not re.match(values["model_name"], body["model_name"]):
        return f"unknown model_name {body['model_name']!r}"
    for name in ("mode", "duration", "aspect_ratio"):
        if name in body and body[name] not in values[name]:
            return f"{name} must be one of {', '.join(values[name])}"
    low, high = values["cfg_scale"]
    if "cfg_scale" in body and not low <= body["cfg_scale"] <= high:
        return f"cfg_scale must be {low} to {high}"
    low, high = values["n"]
    if "n" in body and not low <= body["n"] <= high:
        return f"n must be {low} to {high}"
    if len(str(body.get("prompt", ""))) > values["prompt_max"]:
        return f"prompt is longer than {values['prompt_max']} characters"
    return None


SHAPES = ("gateway", "upstream", "reshaped")  # new-api's envelope, Kling's own, swagger's


def submitted(task_id: str, shape: str, model: str) -> dict[str, Any]:
    if shape == "gateway":
        return newapi.submitted(task_id, model)
    if shape == "reshaped":
        return {"task_id": task_id, "status": "queued"}
    return {"code": 0, "message": "SUCCEED", "request_id": "emulated",
            "data": {"task_id": task_id, "task_status": "submitted",
                     "created_at": 1722769557708, "updated_at": 1722769557708}}


def poll(task: dict[str, Any], add_file: AddFile) -> dict[str, Any]:
    """The poll answer for the task's state, advancing it by one poll, in its shape."""
    native = _native(task, add_file)
    if task["shape"] == "upstream":
        return native
    data = native["data"]
    status = {"submitted": "queued", "processing": "processing", "succeed": "succeeded",
              "failed": "failed"}[data["task_status"]]
    result = data.get("task_result", {})
    url = next((item["url"] for item in (result.get("videos") or result.get("images") or [])),
               "")
    message = data.get("task_status_msg", "")
    if task["shape"] == "reshaped":
        words = {"queued": "queued", "processing": "in_progress", "succeeded": "completed",
                 "failed": "failed"}
        return {"task_id": task["id"], "status": words[status], "url": url,
                "format": "mp4" if url and task["operation"] != "images" else "",
                "metadata": {"duration": float(task["body"].get("duration", 5))} if url
                else {}, "error": {"code": "failed", "message": message} if message
                else None}
    action = {"text2video": "textGenerate", "image2video": "generate"}.get(task["operation"],
                                                                           "generate")
    return newapi.fetched(task["id"], action, status, url=url, reason=message,
                          upstream=native)


def _native(task: dict[str, Any], add_file: AddFile) -> dict[str, Any]:
    """Kling's own answer for the task's state, advancing it by one poll."""
    task["polls"] += 1
    status = "processing"
    result: dict[str, Any] = {}
    url = ""
    if not still_running(task) and not task["stuck"]:
        if task["fail"]:
            status = "failed"
        else:
            status = "succeed"
            url = add_file(*_made(task))
            body = task["body"]
            if task["operation"] == "images":
                result = {"images": [{"index": 0, "url": url}]}
            else:
                result = {"videos": [{"id": task["id"] + "-0", "url": url,
                                      "duration": str(body.get("duration", "5"))}]}
    message = "emulated task failure" if status == "failed" else ""
    data = {"task_id": task["id"], "task_status": status, "task_status_msg": message,
            "created_at": 1722769557708, "updated_at": 1722769557708}
    if result:
        data["task_result"] = result
    return {"code": 0, "message": "SUCCEED", "request_id": "emulated", "data": data}


def _made(task: dict[str, Any]) -> tuple[bytes, str]:
    seed = json.dumps(task["body"], sort_keys=True)
    ratio = task["body"].get("aspect_ratio", "16:9")
    width, height = {"9:16": (80, 144), "1:1": (112, 112)}.get(ratio, (144, 80))
    if task["operation"] == "images":
        return poster(width * 7, height * 7, seed, prompt=str(task["body"].get("prompt", "")),
                      endpoint="kling image"), "image/png"
    seconds = 1.0 if str(task["body"].get("duration", "5")) == "5" else 2.0
    return mp4(seed, width=width, height=height, seconds=seconds), "video/mp4"


class KlingRoutes(Exchange):
    """The kling routes' handlers."""

    # --- Kling (contracts/kling.json) ----------------------------------------------------
    def _kling_submit(self, operation: str, body: bytes, record: dict[str, Any]) -> None:
        fields = self._json_submit(body, record, lambda f: check(operation, f),
                                   lambda problem: self._json(400, {
                                       "code": 1201, "message": problem,
                                       "request_id": "emulated"}))
        if fields is None:
            return
        digest = hashlib.sha256((canonical_json(fields) + str(time.monotonic_ns())).encode())
        shape = "reshaped" if self.state.take_fault({"reshaped"}) is not None else \
            "upstream" if self.state.take_fault({"kling-native"}) is not None else "gateway"
        # the gateway's own task id (new-api); a passthrough forwards Kling's numeric one
        task_id = newapi.task_id(digest.hexdigest()) if shape == "gateway" else \
            str(int.from_bytes(digest.digest()[:8], "big"))
        task = {"family": "kling", "id": task_id, "operation": operation, "body": fields,
                "polls": 0, "shape": shape,
                "fail": self.state.take_fault({"fail-task"}) is not None,
                "stuck": self.state.take_fault({"stuck-task"}) is not None}
        with self.state.lock:
            self.state.tasks[task_id] = task
        self._json(200, submitted(task_id, shape, str(fields.get("model_name", ""))))

    def _kling_poll(self, operation: str, task_id: str) -> None:
        with self.state.lock:
            task = self.state.tasks.get(task_id)
        if task is None or task.get("family") != "kling" or task["operation"] != operation:
            self._json(404, {"code": 1203, "message": "task not found", "request_id": "emulated"})
            return
        self._json(200, poll(task, self._file_adder()))


_CALLS = {"videos/text2video": "text2video", "videos/image2video": "image2video",
          "images/generations": "images"}


def _route(path: str, _query: str) -> dict[str, str] | None:
    found = re.fullmatch(r"/kling/v1/(videos/text2video|videos/image2video|images/generations)"
                         r"(?:/([^/]+))?", path)
    return None if found is None else {"call": _CALLS[found.group(1)], "id": found.group(2) or ""}


ROUTES = (
    Rule("POST", lambda path, q: (p := _route(path, q)) and not p["id"] and p or None,
         "kling.{call}", lambda h, r: h._kling_submit(r.parts["call"], r.body, r.record),
         # Kling's refusal while the account's parallel tasks are all taken (a user's
         # report in issue 28; Kling's API documents code 1303 with HTTP 429)
         busy=lambda h: h._json(429, {"code": 1303, "message": "parallel task over resource "
                                      "pack limit", "request_id": "emulated"})),
    Rule("GET", lambda path, q: (p := _route(path, q)) and p["id"] and p or None,
         "kling.{call}.get", lambda h, r: h._kling_poll(r.parts["call"], r.parts["id"])),
)
