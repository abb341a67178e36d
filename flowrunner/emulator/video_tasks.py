"""Luma, Veo, Pika and reverse-format Sora as gateways relay them
(contracts/video_tasks.json): a submit, then a poll until the video is done, each family
with its own words and shapes (Veo and Sora share `/v1/video/create`, told apart by the
model). The emulator's own model, not flowrunner's catalog."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from .._json import canonical_json
from . import contract
from .exchange import Exchange
from .routing import Rule
from .state import still_running, task_uuid
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
    done = not still_running(task) and not task["stuck"]
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


class VideoTaskRoutes(Exchange):
    """The video_tasks routes' handlers."""

    def _video_task_submit(self, route_family: str, body: bytes,
                           record: dict[str, Any]) -> None:
        chosen: list[str] = []

        def checked(fields: dict[str, Any]) -> str | None:
            chosen.append(family_of(route_family, fields))
            return check(chosen[0], fields)

        fields = self._json_submit(body, record, checked,
                                   lambda problem: self._error(400, problem))
        if fields is None:
            return
        family = chosen[0]
        task_id = task_uuid(canonical_json(fields) + family + str(time.monotonic_ns()))
        if family == "sora_reverse":
            task_id = f"{fields['model']}:task_{task_id.replace('-', '')[:26]}"
        with self.state.lock:
            self.state.tasks[task_id] = {
                "family": "video_task", "family_kind": family, "id": task_id, "body": fields,
                "polls": 0, "fail": self.state.take_fault_locked({"fail-task"}) is not None,
                "stuck": self.state.take_fault_locked({"stuck-task"}) is not None}
        self._json(200, submitted(family, task_id))

    def _video_task_poll(self, route_family: str, task_id: str) -> None:
        with self.state.lock:
            task = self.state.tasks.get(task_id)
        shared = {"sora_reverse"} if route_family == "veo" else set()  # one query route
        if task is None or task.get("family_kind") not in {route_family} | shared:
            self._error(404, "task not found")
            return
        self._json(200, poll(task, self._file_adder()))


def _submit_route(path: str, _query: str) -> dict[str, str] | None:
    routes = contract.load("video_tasks.json")
    return next(({"family": name} for name in ROUTE_FAMILIES
                 if path == routes[name]["submit"]), None)


def _poll_route(path: str, query: str) -> dict[str, str] | None:
    routes = contract.load("video_tasks.json")
    for name in ROUTE_FAMILIES:
        poll_path, _, poll_query = routes[name]["poll"].partition("?")
        if poll_query:  # the id in the query: /v1/video/query?id=…
            if path == poll_path:
                return {"family": name, "id": parse_qs(query).get("id", [""])[0]}
            continue
        prefix = poll_path.replace("{id}", "")
        if path.startswith(prefix) and "/" not in path[len(prefix):]:
            return {"family": name, "id": path[len(prefix):]}
    return None


ROUTE_FAMILIES = ("luma", "veo", "pika")
ROUTES = (
    Rule("POST", _submit_route, "{family}.submit",
         lambda h, r: h._video_task_submit(r.parts["family"], r.body, r.record),
         busy=lambda h: h._busy()),
    Rule("GET", _poll_route, "{family}.poll",
         lambda h, r: h._video_task_poll(r.parts["family"], r.parts["id"])),
)
