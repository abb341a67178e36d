"""Flux as the gateway family serves it under `/flux/v1` and as BFL's own API serves it
(contracts/bfl.json): a submit answers a task id and a polling URL (BFL's on another host
name); `get_result` until Ready, Error or Request Moderated."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

from .._json import canonical_json
from . import contract, images
from .contract import Refused
from .exchange import Exchange
from .routing import Rule, exact, pattern
from .state import still_running, task_uuid


class FluxRoutes(Exchange):
    """The flux routes' handlers."""

    def _flux(self, model: str, body: bytes, record: dict[str, Any]) -> None:
        fields = self._json_fields(body, record)
        if fields is None:
            return
        try:
            params = contract.check_bfl(model, fields)
        except Refused as exc:
            self._error(exc.status, exc.message)
            return
        seed = canonical_json({"model": model, "params": params})
        task_id = task_uuid(seed + str(time.monotonic_ns()))
        width = int(params.get("width", 1024) or 1024)
        height = int(params.get("height", 768) or 768)
        blob = images.png(width, height, seed)
        fail = self.state.take_fault({"fail-task"}) is not None
        moderate = self.state.take_fault({"moderate-task"}) is not None
        stuck = self.state.take_fault({"stuck-task"}) is not None
        with self.state.lock:
            self.state.tasks[task_id] = {"polls": 0, "blob": blob, "fail": fail, "stuck": stuck,
                                         "moderate": moderate, "model": model,
                                         "prompt": params.get("prompt"),
                                         "seed": params.get("seed", 0)}
        if self.state.kind == "bfl":
            # BFL answers with a polling URL on its own (regional) host name
            port = self.server.server_address[1]  # type: ignore[index]
            polling = f"http://localhost:{port}/v1/get_result?id={task_id}"
            self._json(200, {"id": task_id, "polling_url": polling,
                             "cost": _flux_cost(model)})
        else:
            self._json(200, {"id": task_id,
                             "polling_url": f"{self._base()}/flux/v1/get_result?id={task_id}"})

    def _poll(self, task_id: str) -> None:
        with self.state.lock:
            task = self.state.tasks.get(task_id)
            if task is not None:
                task["polls"] += 1
        if task is None:
            self._json(200, {"id": task_id, "status": "Task not found"})
            return
        if still_running(task) or task["stuck"]:
            self._json(200, {"id": task_id, "status": "Pending",
                             "progress": round(min(0.99, task["polls"] / 3), 2)})
            return
        if task["moderate"]:
            self._json(200, {"id": task_id, "status": "Request Moderated",
                             "details": {"moderation_reasons": ["emulated moderation"]}})
            return
        if task["fail"]:
            self._json(200, {"id": task_id, "status": "Error",
                             "error": "emulated task failure"})
            return
        name = self.state.add_file(task["blob"], "image/png")
        answer: dict[str, Any] = {"id": task_id, "status": "Ready",
                                  "result": {"sample": f"{self._base()}/files/{name}",
                                             "prompt": task["prompt"], "seed": task["seed"]}}
        if self.state.kind == "gateway":
            answer["credits"] = contract.load("gateway.json")["credits"]["flux_per_task"]
        self._json(200, answer)


def _flux_cost(model: str) -> float:
    cost = contract.load("bfl.json")["cost"]
    return float(cost.get(model, cost["default"]))


ROUTES = (
    Rule("GET", exact("/flux/v1/get_result"), "flux.get_result",
         lambda h, r: h._poll(parse_qs(r.query).get("id", [""])[0])),
    Rule("POST", pattern(r"/flux/v1/(?P<model>[^/]+)"), "flux.submit",
         lambda h, r: h._flux(r.parts["model"], r.body, r.record),
         busy=lambda h: h._busy()),
    # BFL's own API: the same calls at its root
    Rule("GET", exact("/v1/get_result"), "flux.get_result",
         lambda h, r: h._poll(parse_qs(r.query).get("id", [""])[0]), kinds=frozenset({"bfl"})),
    Rule("POST", pattern(r"/v1/(?P<model>[^/]+)"), "flux.submit",
         lambda h, r: h._flux(r.parts["model"], r.body, r.record), kinds=frozenset({"bfl"}),
         # BFL's own words: 429 while too many of the key's tasks run (facts.md §2.3)
         busy=lambda h: h._json(429, {"detail": "You have reached the maximum number of "
                                                "active tasks; try again later."})),
)
