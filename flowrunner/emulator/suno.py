"""Suno as the gateway family serves it (contracts/suno.json): submit a MUSIC or LYRICS task,
fetch it until SUCCESS or FAILURE. The emulator's own model of the protocol, from the
provider's published answers, not from flowrunner's catalog."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from .._json import canonical_json
from . import contract
from .exchange import Exchange
from .images import png
from .routing import Rule, exact, pattern
from .sounds import wav
from .state import still_running, task_uuid

AddFile = Callable[[bytes, str], str]  # (bytes, media type) → a URL that serves them


def check_submit(action: str, body: dict[str, Any]) -> str | None:
    """Why the provider refuses this submit, or None."""
    spec = contract.load("suno.json")["actions"].get(action)
    if spec is None:
        return f"unknown action {action.upper()!r}"
    # fields new-api accepts and drops before Suno sees them
    types = {**spec["types"], **{name: "any" for name in spec.get("dropped", [])}}
    problem = contract.field_problem(body, types)
    if problem:
        return problem
    if not any(all(body.get(name) for name in group) for group in spec["one_of"]):
        return "missing " + " or ".join("+".join(group) for group in spec["one_of"])
    if "mv" in body and not str(body["mv"]).startswith("chirp-"):
        return f"unknown model (mv) {body['mv']!r}"
    return None


def new_task(action: str, body: dict[str, Any], *, task_id: str, fail: bool,
             moderate: bool, stuck: bool) -> dict[str, Any]:
    return {"family": "suno", "action": action.upper(), "body": body, "polls": 0,
            "fail": fail, "moderate": moderate, "stuck": stuck, "id": task_id}


def fetch_answer(task: dict[str, Any], add_file: AddFile) -> dict[str, Any]:
    """The fetch answer for the task's state, advancing it by one poll."""
    task["polls"] += 1
    seed = json.dumps(task["body"], sort_keys=True)
    data: dict[str, Any] = {"task_id": task["id"], "notify_hook": "", "action": task["action"],
                            "status": "IN_PROGRESS", "fail_reason": "", "submit_time": 1716191749,
                            "start_time": 1716191786, "finish_time": 0, "progress": "40%",
                            "data": []}
    if still_running(task) or task["stuck"]:
        if task["action"] == "MUSIC":  # a preview stream, never the result
            data["data"] = [_clip(seed, i, "streaming", add_file, preview=True)
                            for i in range(2)]
        return {"code": "success", "message": "", "data": data}
    if task["moderate"] or task["fail"]:
        data.update(status="FAILURE", progress="100%",
                    fail_reason="sensitive word in the prompt" if task["moderate"]
                    else "emulated task failure")
        return {"code": "success", "message": "", "data": data}
    data.update(status="SUCCESS", progress="100%", finish_time=1716191897)
    if task["action"] == "LYRICS":
        words = str(task["body"].get("prompt", ""))
        data["data"] = {"id": task["id"], "status": "complete",
                        "title": words[:40].title() or "Untitled",
                        "text": f"[Verse]\n{words}\n\n[Chorus]\n{words}"}
    else:
        count = int(contract.load("suno.json")["actions"]["music"]["clips"])
        data["data"] = [_clip(seed, i, "complete", add_file) for i in range(count)]
    return {"code": "success", "message": "", "data": data}


def _clip(seed: str, index: int, status: str, add_file: AddFile, *,
          preview: bool = False) -> dict[str, Any]:
    clip_seed = f"{seed}#{index}"
    clip_id = hashlib.sha256(clip_seed.encode()).hexdigest()
    clip_id = f"{clip_id[:8]}-{clip_id[8:12]}-{clip_id[12:16]}-{clip_id[16:20]}-{clip_id[20:32]}"
    body = json.loads(seed)
    audio = wav(("preview " if preview else "") + clip_seed, seconds=0.5 if preview else 1.5)
    return {"id": clip_id, "title": body.get("title") or "Untitled", "status": status,
            "audio_url": add_file(audio, "audio/wav"),
            "image_url": add_file(png(64, 64, clip_seed), "image/png"),
            "video_url": "", "model_name": body.get("mv", "chirp-v3-0"),
            "metadata": {"tags": body.get("tags", ""), "prompt": body.get("prompt", ""),
                         "duration": 0.5 if preview else 1.5, "type": "gen"}}


class SunoRoutes(Exchange):
    """The suno routes' handlers."""

    # --- Suno (contracts/suno.json) ------------------------------------------------------
    def _suno_submit(self, action: str, body: bytes, record: dict[str, Any]) -> None:
        fields = self._json_submit(body, record, lambda f: check_submit(action, f),
                                   lambda problem: self._json(400, {
                                       "code": "error", "message": problem, "data": None}))
        if fields is None:
            return
        task_id = task_uuid(canonical_json(fields) + str(time.monotonic_ns()))
        task = new_task(action, fields, task_id=task_id,
                             fail=self.state.take_fault({"fail-task"}) is not None,
                             moderate=self.state.take_fault({"moderate-task"}) is not None,
                             stuck=self.state.take_fault({"stuck-task"}) is not None)
        with self.state.lock:
            self.state.tasks[task_id] = task
        self._json(200, {"code": "success", "message": "", "data": task_id})

    def _suno_fetch_many(self, body: bytes, record: dict[str, Any]) -> None:
        """`POST /suno/fetch {ids, action}` (new-api, provider-facts §7): the tasks named,
        each polled once, in one answer."""
        fields = self._json_fields(body, record)
        if fields is None:
            return
        ids = fields.get("ids")
        if not isinstance(ids, list):
            self._json(400, {"code": "error", "message": "ids must be a list", "data": None})
            return
        with self.state.lock:
            tasks = [self.state.tasks.get(str(i)) for i in ids]
        add_file = self._file_adder()
        self._json(200, {"code": "success", "message": "",
                         "data": [fetch_answer(task, add_file)["data"] for task in tasks
                                  if task is not None and task.get("family") == "suno"]})

    def _suno_fetch(self, task_id: str) -> None:
        with self.state.lock:
            task = self.state.tasks.get(task_id)
        if task is None or task.get("family") != "suno":
            self._json(404, {"code": "error", "message": "task_not_exist", "data": None})
            return
        self._json(200, fetch_answer(task, self._file_adder()))


ROUTES = (
    Rule("POST", pattern(r"/suno/submit/(?P<action>[^/]+)"), "suno.submit.{action}",
         lambda h, r: h._suno_submit(r.parts["action"], r.body, r.record),
         busy=lambda h: h._busy()),
    Rule("POST", exact("/suno/fetch"), "suno.fetch_many",
         lambda h, r: h._suno_fetch_many(r.body, r.record)),
    Rule("GET", pattern(r"/suno/fetch/(?P<id>[^/]+)"), "suno.fetch",
         lambda h, r: h._suno_fetch(r.parts["id"])),
)
