"""MiniMax (Hailuo) video as the gateway family relays it (contracts/minimax.json): a submit
answering a task id inside `base_resp`, a query until Success gives a file id, and a file
retrieve gives its download URL. The emulator's own model."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from .._json import canonical_json
from . import contract
from .exchange import Exchange
from .routing import Rule
from .state import still_running
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


def query_answer(task: dict[str, Any]) -> dict[str, Any]:
    task["polls"] += 1
    if still_running(task) or task["stuck"]:
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


class MinimaxRoutes(Exchange):
    """The minimax routes' handlers."""

    def _minimax(self, method: str, path: str, query: str, body: bytes,
                 record: dict[str, Any]) -> None:
        spec = contract.load("minimax.json")
        if method == "POST" and path == spec["submit"]:
            record["operation"] = "minimax.video_generation"
            fields = self._json_submit(  # MiniMax says no in base_resp, with HTTP 200
                body, record, check,
                lambda problem: self._json(200, refused(problem)))
            if fields is None:
                return
            task_id = str(int.from_bytes(hashlib.sha256((canonical_json(fields) + str(
                time.monotonic_ns())).encode()).digest()[:6], "big"))
            with self.state.lock:
                self.state.tasks[task_id] = {
                    "family": "minimax", "id": task_id, "body": fields, "polls": 0,
                    "file_id": str(int(task_id) + 1),
                    "fail": self.state.take_fault_locked({"fail-task"}) is not None,
                    "moderate": self.state.take_fault_locked({"moderate-task"}) is not None,
                    "stuck": self.state.take_fault_locked({"stuck-task"}) is not None}
            self._json(200, {"task_id": task_id, "base_resp": OK})
            return
        wanted = parse_qs(query)
        with self.state.lock:
            tasks = [t for t in self.state.tasks.values() if t.get("family") == "minimax"]
        if method == "GET" and path == spec["query"]:
            record["operation"] = "minimax.query"
            found = [t for t in tasks if t["id"] == wanted.get("task_id", [""])[0]]
            if not found:
                self._json(200, refused("task not found"))
                return
            if self.state.take_fault({"busy-poll"}) is not None:
                self._json(200, busy(found[0]))
                return
            self._json(200, query_answer(found[0]))
            return
        if method == "GET" and path == spec["retrieve"]:
            record["operation"] = "minimax.files.retrieve"
            found = [t for t in tasks if t["file_id"] == wanted.get("file_id", [""])[0]
                     and not still_running(t)]
            if not found:
                self._json(200, refused("file not found"))
                return
            self._json(200, retrieve(found[0], self._file_adder()))
            return
        self._send(404, b"404 page not found", "text/plain")


def _route(path: str, _query: str) -> dict[str, str] | None:
    spec = contract.load("minimax.json")
    return {} if path in (spec["submit"], spec["query"], spec["retrieve"]) else None


ROUTES = (  # the handler records the operation
    Rule("*", _route, "", lambda h, r: h._minimax(r.method, r.path, r.query, r.body, r.record)),
)
