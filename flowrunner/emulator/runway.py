"""Runway's official API format as gateways relay it (contracts/runway.json): a version
header on every call, an image-to-video submit checked per model (ratio, duration, what
each model requires), then a task polled until SUCCEEDED. The emulator's own model, from
Runway's SDK, not flowrunner's catalog."""

from __future__ import annotations

import time
from typing import Any

from .._json import canonical_json
from . import contract, video
from .exchange import Exchange
from .routing import Rule
from .state import still_running, task_uuid


def check(fields: dict[str, Any]) -> str | None:
    """Why Runway refuses this submit, or None."""
    spec = contract.load("runway.json")
    problem = contract.field_problem(fields, spec["fields"])
    for name in spec["required"]:
        if problem is None and not fields.get(name):
            problem = f"{name} is required"
    if problem is not None:
        return problem
    model = str(fields["model"])
    rules = spec["models"].get(model)
    if rules is None:  # gone from the list (gen3a_turbo, veo3), or never in it
        return f"model {model!r} is not available"
    return _model_problem(model, rules, fields)


def _model_problem(model: str, rules: dict[str, Any], fields: dict[str, Any]) -> str | None:
    for name in rules["requires"]:
        if fields.get(name) in (None, ""):
            return f"{name} is required for {model}"
    if rules.get("no_ratio") and "ratio" in fields:
        return f"{model} takes no ratio"
    if "ratio" in fields and "ratios" in rules and fields["ratio"] not in rules["ratios"]:
        return f"ratio must be one of {', '.join(rules['ratios'])} for {model}"
    duration = fields.get("duration")
    if duration == "auto" and not rules.get("auto_duration"):
        return f"duration \"auto\" is not supported for {model}"
    if duration is not None and duration != "auto" and (
            isinstance(duration, bool) or not isinstance(duration, int)):
        return "duration must be an integer"
    if duration == "auto":
        return None
    if duration is not None and "durations" in rules and duration not in rules["durations"]:
        return f"duration must be one of {', '.join(map(str, rules['durations']))} for {model}"
    if duration is not None and "duration" in rules and \
            not rules["duration"][0] <= duration <= rules["duration"][1]:
        low, high = rules["duration"]
        return f"duration must be {low} to {high} for {model}"
    return None


class RunwayRoutes(Exchange):
    """The runway routes' handlers."""

    def _runway(self, method: str, path: str, body: bytes, record: dict[str, Any]) -> None:
        """Runway's official format: a version header on every call, then a task."""
        spec = contract.load("runway.json")
        version = self.headers.get(spec["version_header"])
        if version not in spec["versions"]:
            self._json(400, {"error": f"the {spec['version_header']} header must be one of "
                                      f"{', '.join(spec['versions'])}"})
            return
        if method == "POST" and path == spec["submit"]:
            record["operation"] = "runway.image_to_video"
            parsed = self._parse(body, record)
            if parsed is None:
                return
            fields, _uploads, as_json = parsed
            problem = check(fields) if as_json else "expected application/json"
            if problem:
                self._json(400, {"error": problem})
                return
            task_id = task_uuid(canonical_json(fields) + str(time.monotonic_ns()))
            with self.state.lock:
                self.state.tasks[task_id] = {
                    "family": "runway", "id": task_id, "body": fields, "polls": 0,
                    "fail": self.state.take_fault_locked({"fail-task"}) is not None}
            self._json(200, {"id": task_id, "estimatedCost": {"credits": 25}})
            return
        task_id = path.rsplit("/", 1)[1]
        with self.state.lock:
            task = self.state.tasks.get(task_id)
        if method != "GET" or task is None or task.get("family") != "runway":
            self._json(404, {"error": "Task not found"})
            return
        record["operation"] = "runway.task"
        task["polls"] += 1
        answer: dict[str, Any] = {"id": task_id, "createdAt": "2025-05-01T00:00:00Z",
                                  "status": "PENDING" if task["polls"] == 1 else "RUNNING"}
        if not still_running(task):
            if task["fail"]:
                answer.update(status="FAILED", failure="emulated task failure",
                              failureCode="INTERNAL")
            else:
                seconds = 1.0 if int(task["body"].get("duration", 5)) == 5 else 2.0
                clip = video.mp4(canonical_json(task["body"]), width=128, height=80,
                                 seconds=seconds)
                answer.update(status="SUCCEEDED",
                              output=[self._file_adder()(clip, "video/mp4")])
        self._json(200, answer)


def _route(path: str, _query: str) -> dict[str, str] | None:
    spec = contract.load("runway.json")
    polls = path.startswith(spec["poll"].replace("{id}", ""))
    return {} if path == spec["submit"] or polls else None


ROUTES = (  # the handler records the operation
    Rule("*", _route, "", lambda h, r: h._runway(r.method, r.path, r.body, r.record)),
)
