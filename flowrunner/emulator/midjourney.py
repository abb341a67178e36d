"""Midjourney as the gateway family relays it (the midjourney-proxy protocol,
contracts/midjourney.json): a submit answers a code and a task id; the task is fetched until
SUCCESS, FAILURE or CANCEL; a finished task offers buttons (U1…U4, V1…V4, 🔄, and after an
upscale Upscale (Subtle) / (Creative), Vary (Subtle) / (Strong), Custom Zoom) that an
`action` submit presses by their customId (or a `change` submit by action and index). A
Custom Zoom, or any button in remix mode, leaves its task MODAL until a `modal` submit
answers it. The emulator's own model, not flowrunner's catalog."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from .._json import canonical_json
from . import contract
from .exchange import Exchange
from .images import png, poster
from .routing import Rule, pattern
from .state import still_running
from .video import mp4

AddFile = Callable[[bytes, str], str]


def submit(action: str, body: dict[str, Any], tasks: dict[str, dict[str, Any]], *,
           task_id: str, fail: bool, remix: bool = False
           ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the submit answer, the new task or None). The answer's HTTP status is 200 either
    way: midjourney-proxy says yes or no in `code`. ``remix``: the account is in remix
    mode, so a pressed button waits for its modal."""
    doc = contract.load("midjourney.json")
    spec = doc["actions"].get(action)
    if spec is None:
        return _refuse(4, f"unsupported action {action!r}"), None
    problem = _fields_problem(spec, body)
    if problem:
        return _refuse(4, problem), None
    if action == "modal":
        return _modal(body, tasks), None
    if action == "change":
        button = _change_button(body, tasks, doc)
        if isinstance(button, dict):
            return button, None
        action, body = "action", {"customId": button, "taskId": body["taskId"]}
    problem = _body_problem(action, body, doc)
    if problem:
        return _refuse(4, problem), None
    prompt = str(body.get("prompt", ""))
    banned = [w for w in doc["banned_words"] if w in prompt.lower()]
    if banned:
        return _refuse(doc["codes"]["banned"], "banned prompt", {"bannedWord": banned[0]}), None
    parent = None
    if action == "action":
        parent = tasks.get(str(body["taskId"]))
        problem = _button_problem(parent, body)
        if problem:
            return _refuse(4, problem), None
    seed = json.dumps(body, sort_keys=True)
    kind = _kind(body["customId"]) if parent else action if action in ("describe", "video") \
        else "grid"
    task = {"family": "midjourney", "id": task_id, "action": action.upper(), "body": body,
            "polls": 0, "fail": fail, "status": "NOT_START", "seed": seed, "kind": kind,
            "prompt": prompt or (parent or {}).get("prompt", "")}
    return _accepted(task, tasks, doc, remix=remix and parent is not None), task


def _fields_problem(spec: dict[str, Any], body: dict[str, Any]) -> str | None:
    for name in body:
        if name not in spec["fields"]:
            return f"unknown field {name!r}"
    for name in spec["required"]:
        if not body.get(name):
            return f"{name} cannot be empty"
    return None


def _body_problem(action: str, body: dict[str, Any], doc: dict[str, Any]) -> str | None:
    """What midjourney-proxy refuses in a submit's values (code 4), or None."""
    if body.get("botType") is not None and body["botType"] not in doc["bot_types"]:
        return f"botType must be one of {', '.join(doc['bot_types'])}"
    if action == "blend" and body.get("dimensions", "SQUARE") not in doc["dimensions"]:
        return f"dimensions must be one of {', '.join(doc['dimensions'])}"
    for name in ("base64", "image"):
        value = body.get(name)
        if value is not None and not (isinstance(value, str) and value.startswith(
                ("data:image/", "http://", "https://"))):
            return f"{name} must be an image URL or a data URL"
    if action == "blend":
        images = body["base64Array"]
        low, high = doc["blend_images"]
        if not isinstance(images, list) or not low <= len(images) <= high or not all(
                isinstance(i, str) and i.startswith("data:image/") for i in images):
            return f"base64Array takes {low} to {high} images as data URLs"
    if action == "video":
        return _video_problem(body, doc)
    return None


def _button_problem(parent: dict[str, Any] | None, body: dict[str, Any]) -> str | None:
    """Why a pressed button (`action`) is refused: no such task, or not its button."""
    if parent is None or parent.get("family") != "midjourney":
        return "task does not exist"
    pressed = [b for b in parent.get("buttons", []) if b["customId"] == body["customId"]]
    if parent["status"] != "SUCCESS" or not pressed:
        return f"customId {body['customId']!r} is not a button of task {body['taskId']}"
    return None


def _accepted(task: dict[str, Any], tasks: dict[str, dict[str, Any]], doc: dict[str, Any],
              *, remix: bool) -> dict[str, Any]:
    """The answer to a submit taken: a button that opens a modal (or any button in remix
    mode) waits for /mj/submit/modal; else the task is queued or started."""
    codes = doc["codes"]
    custom_id = str(task["body"].get("customId", ""))
    modal_button = task["action"] == "ACTION" and custom_id.startswith(tuple(doc["modal_buttons"]))
    if remix or modal_button:
        task["status"] = "MODAL"  # waits for /mj/submit/modal
        # new-api passes code 21 (with the task id) for Custom Zoom and Vary (Region) only
        return {"code": codes["exists"] if modal_button else codes["accepted"],
                "description": "Waiting for window confirm",
                "properties": {"finalPrompt": task["prompt"], "remix": True},
                "result": task["id"]}
    queued = len([t for t in tasks.values() if t.get("family") == "midjourney"
                  and t["status"] in ("NOT_START", "IN_PROGRESS")]) >= 3
    return {"code": codes["queued"] if queued else codes["accepted"],
            "description": "In queue, there are 1 tasks ahead" if queued
            else "Submit success", "properties": {"discordInstanceId": "emulated"},
            "result": task["id"]}


def _video_problem(body: dict[str, Any], doc: dict[str, Any]) -> str | None:
    if body.get("motion", "low") not in doc["motions"]:
        return f"motion must be one of {', '.join(doc['motions'])}"
    if body.get("videoType", doc["video_types"][0]) not in doc["video_types"]:
        return f"videoType must be one of {', '.join(doc['video_types'])}"
    if body.get("batchSize", 4) not in doc["batch_sizes"]:
        return f"batchSize must be one of {', '.join(map(str, doc['batch_sizes']))}"
    if body.get("action") == "extend":
        if not body.get("taskId") or body.get("index") not in (0, 1, 2, 3):
            return "extend needs taskId and index 0-3"
    elif not body.get("image"):
        return "image (or taskId and index to extend) cannot be empty"
    return None


def _modal(body: dict[str, Any], tasks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Answer the modal a MODAL task waits for: it then runs on (the same task id)."""
    task = tasks.get(str(body["taskId"]))
    if task is None or task.get("family") != "midjourney":
        return _refuse(4, "task does not exist")
    if task["status"] != "MODAL":
        return _refuse(4, f"task {body['taskId']} is not waiting for a modal")
    task["status"] = "NOT_START"
    if body.get("prompt"):
        task["prompt"] = str(body["prompt"])
        task["seed"] += "#" + task["prompt"]
    return {"code": 1, "description": "Submit success", "properties": {},
            "result": task["id"]}


def _change_button(body: dict[str, Any], tasks: dict[str, dict[str, Any]],
                   doc: dict[str, Any]) -> str | dict[str, Any]:
    """The customId a change {action, index} presses, or the refusal."""
    if body["action"] not in doc["change_actions"]:
        return _refuse(4, f"action must be one of {', '.join(doc['change_actions'])}")
    parent = tasks.get(str(body["taskId"]))
    if parent is None or parent.get("family") != "midjourney":
        return _refuse(4, "task does not exist")
    word = {"UPSCALE": "upsample", "VARIATION": "variation", "REROLL": "reroll"}[body["action"]]
    index = int(body.get("index") or 0)
    if body["action"] != "REROLL" and not 1 <= index <= 4:
        return _refuse(4, "index must be 1-4")
    for button in parent.get("buttons", []):
        parts = button["customId"].split("::")
        if len(parts) > 3 and parts[2] == word and (word == "reroll" or parts[3] == str(index)):
            return str(button["customId"])
    return _refuse(4, f"task {body['taskId']} has no {body['action']} {index}")


def _refuse(code: int, description: str, properties: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    return {"code": code, "description": description, "properties": properties or {},
            "result": None}


def _kind(custom_id: str) -> str:
    """What pressing a button makes: one upscaled image, or a new grid."""
    return "upscale" if "::upsample" in custom_id else "grid"


def fetch(task: dict[str, Any], add_file: AddFile) -> dict[str, Any]:
    """The task object for the task's state, advancing it by one fetch (a MODAL task
    stays so until its modal is answered)."""
    answer: dict[str, Any] = {
        "id": task["id"], "action": task["action"], "status": "NOT_START", "progress": "0%",
        "prompt": task["prompt"], "promptEn": task["prompt"], "description": "",
        "submitTime": 1716191749000, "startTime": 0, "finishTime": 0, "imageUrl": "",
        "failReason": "", "buttons": [], "properties": {}}
    if task["status"] == "MODAL":
        answer.update(status="MODAL", properties={"finalPrompt": task["prompt"]})
        return answer
    task["polls"] += 1
    if task["polls"] == 1 and task["pending"]:
        return answer
    if still_running(task):
        # a preview of the grid being drawn: never the result
        answer.update(status="IN_PROGRESS", progress="45%", startTime=1716191750000,
                      imageUrl=add_file(png(128, 128, "preview " + task["seed"]), "image/png"))
        return answer
    if task["fail"]:
        task["status"] = "FAILURE"
        answer.update(status="FAILURE", progress="", failReason="emulated task failure")
        return answer
    task["status"] = "SUCCESS"
    digest = hashlib.sha256(task["seed"].encode()).hexdigest()[:12]
    if task["kind"] == "describe":
        lines = [f"{n}\ufe0f\u20e3 an emulated description {n} of the image --ar 1:1"
                 for n in range(1, 5)]
        answer.update(status="SUCCESS", progress="100%", prompt="\n\n".join(lines),
                      promptEn="\n\n".join(lines),
                      imageUrl=add_file(png(64, 64, task["seed"]), "image/png"),
                      properties={"finalPrompt": "\n\n".join(lines)})
        return answer
    if task["kind"] == "video":
        urls = [add_file(mp4(f"{task['seed']}#{i}", width=128, height=80), "video/mp4")
                for i in range(2)]
        answer.update(status="SUCCESS", progress="100%", videoUrl=urls[0],
                      videoUrls=[{"url": url} for url in urls],
                      imageUrl=add_file(png(128, 80, task["seed"]), "image/png"))
        return answer
    if task["kind"] == "upscale":
        image = poster(1024, 1024, task["seed"], prompt=task["prompt"], endpoint="mj upscale")
        buttons = [_button(f"MJ::CustomZoom::{digest}", "Custom Zoom", emoji="🔍"),
                   _button(f"MJ::JOB::upsample_v6_2x_subtle::1::{digest}::SOLO",
                           "Upscale (Subtle)"),
                   _button(f"MJ::JOB::upsample_v6_2x_creative::1::{digest}::SOLO",
                           "Upscale (Creative)"),
                   _button(f"MJ::JOB::high_variation::1::{digest}::SOLO", "Vary (Strong)"),
                   _button(f"MJ::JOB::low_variation::1::{digest}::SOLO", "Vary (Subtle)")]
    else:
        image = poster(1024, 1024, task["seed"], prompt=task["prompt"], endpoint="mj grid")
        buttons = [_button(f"MJ::JOB::upsample::{i}::{digest}", f"U{i}") for i in range(1, 5)]
        buttons.append(_button(f"MJ::JOB::reroll::0::{digest}::SOLO", "", emoji="🔄"))
        buttons += [_button(f"MJ::JOB::variation::{i}::{digest}", f"V{i}")
                    for i in range(1, 5)]
    task["buttons"] = buttons
    answer.update(status="SUCCESS", progress="100%", startTime=1716191750000,
                  finishTime=1716191790000, imageUrl=add_file(image, "image/png"),
                  buttons=buttons)
    return answer


def _button(custom_id: str, label: str, *, emoji: str = "") -> dict[str, Any]:
    return {"customId": custom_id, "emoji": emoji, "label": label, "type": 2, "style": 2}


class MidjourneyRoutes(Exchange):
    """The midjourney routes' handlers."""

    def _mj_submit(self, action: str, body: bytes, record: dict[str, Any]) -> None:
        fields = self._json_fields(body, record)
        if fields is None:
            return
        task_id = str(int.from_bytes(hashlib.sha256(
            (canonical_json(fields) + str(time.monotonic_ns())).encode()).digest()[:7], "big"))
        with self.state.lock:
            answer, task = submit(
                action, fields, self.state.tasks, task_id=task_id,
                fail=self.state.take_fault_locked({"fail-task"}) is not None,
                remix=action in ("action", "change")
                and self.state.take_fault_locked({"remix"}) is not None)
            if task is not None:
                self.state.tasks[task_id] = task
        self._json(200, answer)

    def _mj_list(self, body: bytes, record: dict[str, Any]) -> None:
        """`list-by-condition {ids}`: the tasks named (each polled once), unknown ids left
        out; an empty list answers `[]` (provider-facts §6)."""
        fields = self._json_fields(body, record)
        if fields is None:
            return
        ids = fields.get("ids")
        if not isinstance(ids, list):
            self._json(400, {"code": 4, "description": "ids must be a list", "result": None})
            return
        with self.state.lock:
            tasks = [self.state.tasks.get(str(i)) for i in ids]
        add_file = self._file_adder()
        self._json(200, [fetch(task, add_file) for task in tasks
                         if task is not None and task.get("family") == "midjourney"])

    def _mj_fetch(self, task_id: str) -> None:
        with self.state.lock:
            task = self.state.tasks.get(task_id)
        if task is None or task.get("family") != "midjourney":
            self._json(404, {"code": 4, "description": "task_not_exist", "result": None})
            return
        self._json(200, fetch(task, self._file_adder()))


_MODE = r"(?:/(?:fast|relax))?"  # a speed prefix some gateways take
ROUTES = (
    Rule("POST", pattern(_MODE + r"/mj/submit/(?P<action>\w[\w-]*)"), "midjourney.{action}",
         lambda h, r: h._mj_submit(r.parts["action"], r.body, r.record),
         # midjourney-proxy's "queue full" (code 23, audit.md: new-api's constants), HTTP 200
         busy=lambda h: h._json(200, {"code": 23, "description": "queue is full, please try "
                                      "again later", "properties": {}, "result": None})),
    Rule("POST", pattern(_MODE + r"/mj/task/list-by-condition"), "midjourney.list",
         lambda h, r: h._mj_list(r.body, r.record)),
    Rule("GET", pattern(_MODE + r"/mj/task/(?P<id>[^/]+)/fetch"), "midjourney.fetch",
         lambda h, r: h._mj_fetch(r.parts["id"])),
)
