"""new-api's own task answers, which the gateway family puts around what its upstream says
(contracts/newapi.json): the submit answer `{id, task_id, object: "video", status:
"queued", …}` with the gateway's own `task_…` id, and every fetch outside `/v1/videos/` as
`{code: "success", data: {task_id, status: IN_PROGRESS|SUCCESS|FAILURE, fail_reason,
result_url, progress, data: <the upstream's own answer>}}`. The emulator's own model."""

from __future__ import annotations

from typing import Any

STATUS = {"queued": "QUEUED", "processing": "IN_PROGRESS", "succeeded": "SUCCESS",
          "failed": "FAILURE"}


def task_id(digest: str) -> str:
    """A gateway task id: `task_` and 32 characters (new-api's model.GenerateTaskID)."""
    return "task_" + digest[:32]


def submitted(gateway_id: str, model: str) -> dict[str, Any]:
    """The answer to a submit (new-api's dto.OpenAIVideo)."""
    return {"id": gateway_id, "task_id": gateway_id, "object": "video", "model": model,
            "status": "queued", "progress": 0, "created_at": 1764720000}


def fetched(gateway_id: str, action: str, state: str, *, url: str = "", reason: str = "",
            upstream: Any = None) -> dict[str, Any]:
    """The answer to a fetch, in ``state`` (queued, processing, succeeded, failed). As
    new-api does, a task without a stored URL answers its failure text as `result_url`:
    a reader must take the URL only on SUCCESS."""
    data: dict[str, Any] = {
        "task_id": gateway_id, "action": action, "status": STATUS[state],
        "fail_reason": reason, "progress": {"queued": "0%", "processing": "30%",
                                            "succeeded": "100%", "failed": "100%"}[state],
        "submit_time": 1764720000, "data": upstream}
    if url or reason:
        data["result_url"] = url or reason
    return {"code": "success", "message": "", "data": data}
