"""Replicate as the gateway family relays it (contracts/replicate.json): create a prediction
on a model (201), then poll it on the gateway's own get route, although its `urls.get`
points at api.replicate.com. The emulator's own model, not flowrunner's catalog."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

from .._json import canonical_json
from . import contract
from .exchange import Exchange
from .images import poster
from .routing import Rule, exact, pattern
from .state import still_running, task_uuid

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
    if still_running(task) or task["stuck"]:
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


class ReplicateRoutes(Exchange):
    """The replicate routes' handlers."""

    def _replicate_create(self, model: str | None, body: bytes,
                          record: dict[str, Any]) -> None:
        """A prediction on ``model``'s route, or (None) by version id."""
        fields = self._json_submit(body, record,
                                   lambda f: check(f, by_version=model is None),
                                   lambda problem: self._json(422, {"detail": problem}))
        if fields is None:
            return
        model = model or f"version:{str(fields['version'])[:12]}"
        task_id = task_uuid(canonical_json(fields) + model + str(time.monotonic_ns()))
        task_id = task_id.replace("-", "")[:26]
        with self.state.lock:
            task = {"family": "replicate", "id": task_id, "model": model, "body": fields,
                    "polls": 0,
                    "fail": self.state.take_fault_locked({"fail-task"}) is not None,
                    "stuck": self.state.take_fault_locked({"stuck-task"}) is not None}
            self.state.tasks[task_id] = task
        self._json(201, prediction(task, status="starting"))

    def _replicate_get(self, task_id: str) -> None:
        with self.state.lock:
            task = self.state.tasks.get(task_id)
        if task is None or task.get("family") != "replicate":
            self._json(404, {"detail": "Not found."})
            return
        self._json(200, poll(task, self._file_adder()))


_MODEL = r"[\w.-]+/[\w.-]+"
ROUTES = (
    Rule("POST", exact("/replicate/v1/predictions"), "replicate.create_version",
         lambda h, r: h._replicate_create(None, r.body, r.record), busy=lambda h: h._busy()),
    Rule("GET", pattern(rf"/replicate/v1/models/(?P<model>{_MODEL})/versions/(?P<id>[0-9a-f]+)"),
         "replicate.version",
         lambda h, r: h._json(200, version(r.parts["model"], r.parts["id"]))),
    Rule("POST", pattern(rf"/replicate/v1/models/(?P<model>{_MODEL})/predictions"),
         "replicate.create", lambda h, r: h._replicate_create(r.parts["model"], r.body, r.record),
         busy=lambda h: h._busy()),
    Rule("GET", pattern(r"/replicate/v1/predictions/(?P<id>[^/]+)"), "replicate.get",
         lambda h, r: h._replicate_get(r.parts["id"])),
)
