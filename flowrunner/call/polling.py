"""Submit-then-poll tasks: polling a submitted task until it succeeds, fails or times out.

The protocol (status path, success and failure sets, poll route, interval, timeout) is
catalog data; this module only follows it. The journal of submitted tasks is the cache's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from ..catalog.entries import Endpoint, extract
from ..errors import StepFailed, TaskFailed, TaskTroubled, TransportError
from ..net.http import ApiRequest, ApiResponse, Client
from .preparation import PreparedCall

UNREADABLE_POLLS = 3  # answers in a row without a status before the shape is called wrong


@dataclass(frozen=True, slots=True)
class PollState:
    """Where polling a task stands between two polls: the wait before the next one, the
    answers in a row without a status, and the task's own deadline."""

    interval: float
    unreadable: int
    task_deadline: float
    resumed: bool = False  # the task came from an earlier run's journal
    submit_body: Any = None  # the submit's answer (some carry the task's cost)
    busy_waited: float = 0.0  # what the submit waited for a free provider slot, to say
    lowered: str | None = None
    task_id: str = ""
    prefetched: Any = None  # this poll's answer, read already by a batch poll


class Parked(Exception):
    """Polling stops here without a thread: poll again after ``wait`` seconds, from
    ``state`` (raised only when the caller asked to park)."""

    def __init__(self, wait: float, state: PollState) -> None:
        super().__init__(f"parked for {wait:.2f} s")
        self.wait, self.state = wait, state


def _unreadable(call: PreparedCall, task_id: str, body: object, path: str,
                count: int, trouble: str | None = None) -> StepFailed:
    """The failure of a task whose answers carry nothing at the catalog's status path (the
    gateway changed its answer's shape, or the entry is wrong), or whose envelope kept
    saying something is wrong (``trouble``): waiting longer does not help today, and the
    task stays journaled for the next run."""
    if trouble is not None:
        return TaskTroubled(f"{call.instance.id}: task {task_id}: {count} answers in a row "
                            f"say {trouble}",
                            hint="the task stays journaled: run again later and flowrunner "
                                 "polls the same task instead of paying for a new one (if "
                                 "it still answers so, it is given up and submitted anew)")
    if isinstance(body, dict):
        shape = "its top-level keys: " + (", ".join(sorted(map(str, body))[:12]) or "none")
    else:
        shape = f"the answer is a JSON {type(body).__name__}, not an object"
    return StepFailed(f"{call.instance.id}: task {task_id}: {count} answers in a row have no "
                      f"status at {path!r} ({shape})",
                      hint=f"the answer's shape is not what the entry of "
                           f"{call.endpoint.id} expects: fix its task status path, or override "
                           "the entry with `catalog:`; the task stays journaled, so the next "
                           "run resumes it without paying again")


def _check_poll_envelope(call: PreparedCall, task_id: str, body: object) -> str | None:
    """What a poll answer's envelope says is wrong (MiniMax's non-zero
    `base_resp.status_code`, the entry's `accept` with `polls`): None when nothing, the
    provider's words when it is trouble to wait out (a rate limit: a value the entry's
    `fails` does not list).

    Raises:
        TaskFailed: the value fails the task (in `fails`, or any value when `fails` is
            empty).
    """
    spec = call.endpoint.task
    assert spec is not None
    if not spec.accept_polls or spec.accept_path is None:
        return None
    value = extract(body, spec.accept_path)
    if value is None or str(value) in spec.accept_values:
        return None
    reason = extract(body, spec.accept_error) if spec.accept_error else None
    said = f"{spec.accept_path} {value!r}" + (f": {reason}" if reason else "")
    if spec.accept_fails and str(value) not in spec.accept_fails:
        return said
    raise TaskFailed(f"{call.instance.id}: task {task_id} failed ({said})",
                     hint="the provider refused or failed the task; change the parameters "
                          "or run again")


def poll_task(call: PreparedCall, client: Client, base_url: str, task_id: str,
              poll_url: str | None, *, deadline: float, retries: int, park: bool = False,
              state: PollState | None = None) -> ApiResponse:
    """Poll ``task_id`` until the catalog's success status, or a status the task waits
    for the user in (`attention`: Midjourney's MODAL); its last answer. With ``park``, a
    task still running after a poll is not waited for here: `Parked` says when to poll
    again, and ``state`` (from it) continues where polling stood.

    Raises:
        TaskFailed: the task ended in a failure status (with the provider's reason).
        TransportError: still running when the deadline or the task timeout ran out.
        Parked: with ``park``, the task still runs.
    """
    spec = call.endpoint.task
    assert spec is not None
    api_host = urlsplit(base_url).netloc
    if not poll_url or urlsplit(poll_url).netloc != api_host:
        # never send the key to another host: poll through the gateway instead
        poll_url = base_url.rstrip("/") + (spec.poll_path or "").replace(
            "{id}", quote(task_id, safe=""))
    task_deadline = min(deadline, time.monotonic() + spec.timeout)
    # a quick first look (short tasks finish in a second or two), then less and less often
    interval = spec.interval / 4
    unreadable = 0  # answers in a row with nothing at the status path
    if state is not None:
        interval, unreadable, task_deadline = state.interval, state.unreadable, \
            state.task_deadline
    prefetched = state.prefetched if state is not None else None
    while True:
        if prefetched is not None:  # a batch poll read it with the provider's other tasks
            answer, prefetched = ApiResponse(200, prefetched), None
        else:
            answer = _poll_once(call, client, poll_url, deadline=task_deadline,
                                retries=retries)
        trouble = _check_poll_envelope(call, task_id, answer.body)
        status = extract(answer.body, spec.status_path)
        if trouble is None and status in spec.success:
            return answer
        if str(status) in dict(spec.attention):  # it waits for the user: polling ends
            return answer
        unreadable = unreadable + 1 if status is None or trouble else 0
        if unreadable >= UNREADABLE_POLLS:
            raise _unreadable(call, task_id, answer.body, spec.status_path, unreadable,
                              trouble)
        if status in spec.failure:
            message = extract(answer.body, spec.error_path) if spec.error_path else None
            raise TaskFailed(f"{call.instance.id}: task {task_id} ended with status {status!r}"
                             + (f": {client.redact(str(message))}" if message else ""),
                             hint="the provider refused or failed the task; change the "
                                  "parameters or run again")
        if time.monotonic() + interval > task_deadline:
            raise TransportError(f"{call.instance.id}: task {task_id} still {status!r} when the "
                                 "timeout ran out",
                                 hint="raise the step's `timeout`; a re-run resumes polling "
                                      "the same task instead of paying for a new one")
        if park:
            raise Parked(interval, PollState(min(interval * 1.5, 10.0), unreadable,
                                             task_deadline, task_id=task_id))
        client.pause(interval, call.instance.id)
        interval = min(interval * 1.5, 10.0)


def _poll_once(call: PreparedCall, client: Client, poll_url: str, *, deadline: float,
               retries: int) -> ApiResponse:
    return client.call(ApiRequest(method="GET", url=poll_url,
                                  provider=call.instance.step.provider,
                                  headers=tuple(call.endpoint.headers.items())),
                       retries=retries, deadline=deadline, step_id=call.instance.id)


def poll_many(endpoint: Endpoint, provider: str, client: Client, base_url: str,
              task_ids: list[str], *, deadline: float, retries: int) -> dict[str, Any]:
    """One batch poll (the catalog's `batch` route) of ``task_ids`` of one family: each
    task's item, shaped like its own poll answer; a task the answer leaves out is not in
    the result (it is polled alone).

    Raises:
        StepFailed, TransportError: the batch poll failed (each task is polled alone).
    """
    spec = endpoint.task
    assert spec is not None and spec.batch is not None
    path, ids_field, items_path, id_path, wrap = spec.batch
    answer = client.call(ApiRequest(method="POST", url=base_url.rstrip("/") + path,
                                    json_body={ids_field: task_ids}, provider=provider,
                                    headers=tuple(endpoint.headers.items())),
                         retries=retries, deadline=deadline,
                         step_id=f"{endpoint.id} ({len(task_ids)} tasks)")
    items = extract(answer.body, items_path) if items_path else answer.body
    found: dict[str, Any] = {}
    for item in items if isinstance(items, list) else []:
        task_id = extract(item, id_path)
        if task_id is not None and str(task_id) in task_ids:
            found[str(task_id)] = {wrap: item} if wrap else item
    return found
