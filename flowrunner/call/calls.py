"""Making one prepared call: send it (or resume its task), poll, store every artifact.

The only place a paid request is sent. A task's id is journaled the moment its submit is
answered, so an interrupted run resumes polling instead of paying again.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..catalog.entries import extract
from ..errors import (
    CacheError,
    Cancelled,
    DownloadError,
    RunError,
    StepFailed,
    TaskFailed,
    TaskTroubled,
    TransportError,
)
from ..net.http import ApiRequest, ApiResponse, Client
from ..net.slots import TaskSlots
from ..recipe.spec import Recipe
from ..records import TaskRecord
from ..store.cache import Cache
from .answers import artifact_refs, credits_of, poster_urls
from .context import render_context, render_field
from .downloads import Artifact, fetch_artifact, store_b64, store_bytes
from .inputs import FileDigests
from .local_steps import perform_local
from .polling import Parked, PollState, poll_task
from .preparation import PreparedCall
from .request import build_request


@dataclass(slots=True)
class CallOutcome:
    """What one call produced: the answer, its stored files, outputs and cost."""

    response: Any
    artifacts: list[Artifact]
    outputs: dict[str, Any]
    credits: float
    task_id: str | None = None
    resumed: bool = False
    note: str | None = None  # said with the instance's result (a task awaiting the user)
    credits_estimated: bool = False  # the answer named no cost: the catalog's price


def _verify_uploads(call: PreparedCall, digests: FileDigests) -> None:
    for upload in call.uploads:
        if digests(upload.path) != upload.sha256:
            raise RunError(f"{call.instance.id}: input file {upload.path} changed or is corrupt "
                           "(its sha256 no longer matches)",
                           hint="`flow cache clear` and run again")


def _check_accepted(call: PreparedCall, answer: Any) -> None:
    """A submit answered 200 may still be refused inside its envelope (Midjourney's codes,
    Suno's `code`): that is a failure with the provider's reason, never retried.

    Raises:
        StepFailed: the envelope says the task was not accepted.
    """
    task = call.endpoint.task
    assert task is not None
    if task.accept_path is None:
        return
    value = extract(answer, task.accept_path)
    if value is not None and str(value) in task.accept_values:
        return
    reason = extract(answer, task.accept_error) if task.accept_error else None
    raise StepFailed(f"{call.instance.id}: the provider refused the task ({task.accept_path} "
                     f"{value!r}" + (f": {reason}" if reason else "") + ")",
                     hint=task.accept_hint or "nothing was submitted; change the parameters "
                          "(a refused prompt needs other words)", retryable=False)


def _then(call: PreparedCall, client: Client, base_url: str, answer: Any, *,
          deadline: float, retries: int) -> Any:
    """The catalog's one more request after a task succeeded (MiniMax's file retrieve).

    Raises:
        StepFailed: the answer lacks what the request needs, or the request failed.
    """
    task = call.endpoint.task
    assert task is not None and task.then_path is not None
    path = task.then_path
    for placeholder, where in task.then_from:
        value = extract(answer, where)
        if value in (None, ""):
            raise StepFailed(f"{call.instance.id}: the finished task's answer has no {where!r} "
                             f"for {task.then_path}")
        path = path.replace("{" + placeholder + "}", quote(str(value), safe=""))
    return client.call(ApiRequest(method="GET", url=base_url.rstrip("/") + path,
                                  provider=call.instance.step.provider,
                                  headers=tuple(call.endpoint.headers.items())),
                       retries=retries, deadline=deadline, step_id=call.instance.id).body


@dataclass(frozen=True, slots=True)
class TaskRun:
    """How a task's call runs: the slots it takes, whether it parks instead of holding a
    thread while the provider runs it, and where polling stood when it was parked."""

    slots: tuple[TaskSlots, ...] = ()
    park: bool = False
    poll_state: PollState | None = None
    on_held: Callable[[], None] | None = None  # the parked task's held slots taken over


@dataclass(slots=True)
class _Call:
    """What one call needs besides the prepared call (passed along, not re-assembled)."""

    client: Client
    cache: Cache
    base_url: str
    deadline: float
    retries: int
    busy_waited: float = 0.0  # seconds a submit waited for the provider to free a slot
    slots: tuple[TaskSlots, ...] = ()  # the step's and the provider's tasks in flight
    started: bool = False  # the task runs at the provider (its slots count it running)
    park: bool = False  # a running task raises Parked instead of holding the thread
    poll_state: PollState | None = None  # polling a parked task again: where it stood
    slots_held: bool = False  # a parked task's slots, still held from before
    on_held: Callable[[], None] | None = None
    lowered: str | None = None  # said once: the provider's limit was brought down


def perform_call(call: PreparedCall, *, client: Client, cache: Cache, base_url: str,
                 digests: FileDigests, recipe: Recipe, views: dict[str, Any],
                 deadline: float, retries: int, task: TaskRun | None = None) -> CallOutcome:
    """Call the endpoint (or resume its task, or take the answer a run that could not
    store it kept), extract outputs and store every artifact.

    Raises:
        RunError: the call failed, its answer is unusable, or an artifact is broken.
        CacheError: an artifact could not be stored (a paid answer is then kept, see
            `keep_answer`).
    """
    _verify_uploads(call, digests)
    if call.endpoint.local:
        answer, made = perform_local(call, cache)
        return CallOutcome(response=answer, artifacts=made, outputs={"credits": 0.0},
                           credits=0.0)
    task = task or TaskRun()
    parked = task.poll_state is not None  # polled again: its slots held, its task running
    how = _Call(client, cache, base_url, deadline, retries, slots=task.slots, park=task.park,
                poll_state=task.poll_state, slots_held=parked, started=parked,
                on_held=task.on_held)
    if task.poll_state is not None:  # what its submit said, to say when it is done
        how.busy_waited, how.lowered = task.poll_state.busy_waited, task.poll_state.lowered
    if call.endpoint.task is not None:
        return _perform_task(call, how, recipe=recipe, views=views)
    kept = cache.read_task(call.key)
    if kept is not None and kept.answer is not None:
        # a run paid for this answer and could not store what it names: taken from here
        try:
            return _finish(call, how, kept.answer, recipe=recipe, views=views, resumed=True)
        except (StepFailed, DownloadError) as exc:
            if isinstance(exc, DownloadError) and exc.retryable:
                raise
            cache.drop_task(call.key)  # its files are gone (the URLs expired): call anew
            raise StepFailed(f"{exc.message}; the kept answer of an earlier run cannot be "
                             "used any more", hint="run again: the endpoint is called anew "
                             "(and paid for again)") from None
    request = build_request(call, base_url, submit=False)
    answered = client.call(request, retries=retries, deadline=deadline,
                           step_id=call.instance.id)
    if call.endpoint.binary:  # the answer is the file: stored, and described in the entry
        stored = store_bytes(cache, answered.body, origin=f"{call.instance.id} answer")
        price = call.endpoint.estimate_credits(call.params)  # a file names no cost
        return CallOutcome(response={"content_type": answered.headers.get("Content-Type"),
                                     "bytes": stored.bytes}, artifacts=[stored],
                           outputs={"credits": price}, credits=price, credits_estimated=True)
    try:
        return _finish(call, how, answered.body, recipe=recipe, views=views)
    except (CacheError, OSError, TransportError, DownloadError, Cancelled) as exc:
        if isinstance(exc, DownloadError) and not exc.retryable:
            raise  # the answer names a broken file: a new call may do better
        raise unstored_answer(call, cache, answered.body, exc, redact=client.redact) from None


def _perform_task(call: PreparedCall, how: _Call, *, recipe: Recipe,
                  views: dict[str, Any]) -> CallOutcome:
    """A submit-then-poll call, from the submit (or the journaled task) to its files."""
    response, task_id, resumed, submit_body = _run_task(call, how)
    waiting = _awaits_user(call, response, task_id)
    if waiting is not None:  # no files yet: its outputs (the task id) for a next step
        outcome = _finish(call, how, response, recipe=recipe, views=views, task_id=task_id,
                          resumed=resumed, submit_body=submit_body, files=False)
        outcome.note = waiting
        return outcome
    outcome = _finish(call, how, response, recipe=recipe, views=views, task_id=task_id,
                      resumed=resumed, submit_body=submit_body)
    if how.busy_waited:  # said with the result: the wait was the provider's, not paid
        waited = max(1.0, how.busy_waited)
        outcome.note = f"waited {waited:.0f} s for the provider to free a task slot (too " \
                       "many tasks running); submitted once" + \
                       (f"; {how.lowered}" if how.lowered else "")
    return outcome


BUSY_WAIT_MOST = 30.0  # seconds between submits refused as busy, at most


class SlotsFull(Exception):
    """Parking: the task's slot is not free now; ``slot`` calls back when one frees."""

    def __init__(self, slot: TaskSlots) -> None:
        super().__init__(f"no free slot on {slot.name!r}")
        self.slot = slot


def _submit_when_free(call: PreparedCall, how: _Call) -> ApiResponse:
    """Submit the task; while the provider answers that too many of the key's tasks run
    (HTTP 429 after the client's own retries, or a `busy` envelope code such as
    Midjourney's 23), wait and submit again: nothing was submitted, nothing is paid, and
    it is not a failure. Waits a poll interval first, growing to 30 s; gives up only at the
    step's deadline.

    Raises:
        StepFailed: refused otherwise, or still busy at the deadline.
    """
    task = call.endpoint.task
    assert task is not None
    wait = task.interval  # a slot frees when a task ends: about a poll interval from now
    while True:
        submitted, reason = _submit_once(call, how)
        if reason is None:
            _started(how)
            return submitted
        _lower(how)
        if time.monotonic() + wait > how.deadline:
            raise StepFailed(f"{call.instance.id}: the provider still has too many tasks "
                             f"running ({reason}) after {how.busy_waited:.0f} s; nothing "
                             "was submitted", hint="run again later, or set a lower "
                             "`max_in_flight`", retryable=False)
        how.client.pause(wait, call.instance.id)
        how.busy_waited += wait
        wait = min(wait * 1.5, BUSY_WAIT_MOST)


def _started(how: _Call) -> None:
    """The task runs at the provider: each of its slots counts it running."""
    how.started = True
    for slot in how.slots:
        slot.started()


def _submit_once(call: PreparedCall, how: _Call) -> tuple[ApiResponse, str | None]:
    """(the submit's answer, why it was refused as busy, or None when it was not)."""
    task = call.endpoint.task
    assert task is not None
    try:
        submitted = how.client.call(build_request(call, how.base_url, submit=True),
                                    retries=how.retries, deadline=how.deadline,
                                    step_id=call.instance.id)
    except StepFailed as exc:
        if exc.status != 429:
            raise
        return ApiResponse(429, None), f"HTTP 429: {exc.message.split(': ')[-1]}"
    value = extract(submitted.body, task.accept_path) if task.accept_path else None
    if value is not None and str(value) in task.accept_busy:
        return submitted, f"{task.accept_path} {value}"
    return submitted, None


def _lower(how: _Call) -> None:
    """The provider refused a submit as busy: bring the provider's limit (the last slot)
    down to what runs now, and say so once."""
    if not how.slots:
        return
    slot = how.slots[-1]
    lowered = slot.lower()
    if lowered is not None and slot.say_once():
        how.lowered = f"at most {lowered} task(s) in flight on provider {slot.name!r} for " \
                      "now (one more after each task it accepts)"


def _run_task(call: PreparedCall, how: _Call) -> tuple[Any, str, bool, Any]:
    """Submit the task (or resume the journaled one) and poll it to its end:
    (final answer, task id, resumed, submit answer)."""
    if not how.slots_held:
        _take_slots(call, how)
    elif how.on_held is not None:
        how.on_held()  # from here on, this call gives its slots back
    still_running = False
    try:
        return _run_task_in_slot(call, how)
    except Parked:
        still_running = True  # polled again later, its slots held meanwhile
        raise
    except TransportError:
        # out of time while the provider still runs it (journaled, resumed next run): it
        # keeps its slot for the rest of this run, or the provider would refuse the next
        still_running = how.started
        raise
    finally:
        if not still_running:
            for slot in how.slots:
                slot.release(started=how.started)


def _take_slots(call: PreparedCall, how: _Call) -> None:
    """Take a slot of each limit for the task's whole life. Parking, a slot not free now
    is `SlotsFull` (the caller is called again when one frees); else it is waited for,
    and the task's timeout starts with its slot.

    Raises:
        SlotsFull: parking, and a slot is not free. Cancelled: interrupted while waiting.
    """
    waited_from = time.monotonic()
    for held, slot in enumerate(how.slots):
        try:
            if how.park and not slot.try_acquire():
                raise SlotsFull(slot)
            if not how.park:
                slot.acquire(call.instance.id)
        except BaseException:
            for taken in how.slots[:held]:
                taken.release(started=False)
            raise
    how.deadline += time.monotonic() - waited_from


def _run_task_in_slot(call: PreparedCall, how: _Call) -> tuple[Any, str, bool, Any]:
    """`_run_task`, its slots held."""
    task = call.endpoint.task
    assert task is not None
    instance_id, cache = call.instance.id, how.cache
    journal = cache.read_task(call.key)
    submit_body: Any = None
    if journal is not None and journal.id is not None:
        # a journaled task: from an earlier run (resumed), or parked by this one
        task_id, poll_url = journal.id, journal.poll_url
        resumed = how.poll_state.resumed if how.poll_state is not None else True
        if how.poll_state is not None:
            submit_body = how.poll_state.submit_body
        if not how.started:
            _started(how)  # a journaled task runs at the provider already
    else:
        submitted = _submit_when_free(call, how)
        submit_body = submitted.body
        _check_accepted(call, submitted.body)
        found = extract(submitted.body, task.id_path)
        if not found:
            raise StepFailed(f"{instance_id}: the submit answer has no task id at "
                             f"{task.id_path!r}")
        task_id, resumed = str(found), False
        poll_url = extract(submitted.body, task.poll_url_from) if task.poll_url_from else None
        cache.write_task(call.key, TaskRecord(task_id, poll_url, call.endpoint.id))
    try:
        try:
            response = poll_task(call, how.client, how.base_url, task_id, poll_url,
                                 deadline=how.deadline, retries=how.retries, park=how.park,
                                 state=how.poll_state).body
        except Parked as parked:  # it remembers whether the task came from another run
            raise Parked(parked.wait, dataclasses.replace(
                parked.state, resumed=resumed, submit_body=submit_body,
                busy_waited=how.busy_waited, lowered=how.lowered, task_id=task_id)) from None
    except TaskFailed:
        # the task ended in failure: forget it, so the next run submits anew (a task
        # still running when time ran out stays journaled, and is resumed)
        cache.drop_task(call.key)
        raise
    except StepFailed as exc:
        if not resumed or not (exc.status == 404 or isinstance(exc, TaskTroubled)):
            raise
        # a journaled task the provider no longer knows (expired; an emulator that was
        # restarted), or that still cannot be read a run later: forget it
        cache.drop_task(call.key)
        why = "HTTP 404" if exc.status == 404 else exc.message.split(": ", 2)[-1]
        raise StepFailed(f"{instance_id}: the provider no longer answers for task "
                         f"{task_id} ({why} when resuming it)", hint="run again: the task "
                         "is submitted anew (and paid for again)") from None
    if task.then_path is not None:
        response = {**response, **_then(call, how.client, how.base_url, response,
                                        deadline=how.deadline, retries=how.retries)}
    return response, task_id, resumed, submit_body


def _awaits_user(call: PreparedCall, response: Any, task_id: str) -> str | None:
    """What to do when the task ended in a status it waits for the user in (Midjourney's
    MODAL); None when it finished. A step that saves files cannot end so.

    Raises:
        StepFailed: the step saves files, and the task has none yet.
    """
    task = call.endpoint.task
    assert task is not None
    status = str(extract(response, task.status_path))
    advice = dict(task.attention).get(status)
    if advice is None:
        return None
    said = f"task {task_id} is {status}: " + advice.replace("{task_id}", task_id).replace(
        "{step}", call.instance.step.id)
    if call.instance.step.save:
        raise StepFailed(f"{call.instance.id}: {said}",
                         hint="drop `save:` from this step and save the modal step's files; "
                              "the task stays waiting, so the modal step answers it without "
                              "paying for the button again")
    return said


def _finish(call: PreparedCall, how: _Call, response: Any, *, recipe: Recipe,
            views: dict[str, Any], task_id: str | None = None, resumed: bool = False,
            submit_body: Any = None, files: bool = True) -> CallOutcome:
    """Store every artifact the answer names (with ``files``) and extract the outputs."""
    artifacts = _store_artifacts(call, how, response, task_id) if files else []
    endpoint = call.endpoint
    outputs = {name: extract(response, path) for name, path in endpoint.outputs.items()}
    reported = credits_of(endpoint, response, submit_body)
    # an answer that names no cost is booked at the catalog's price, and says so
    outputs["credits"] = reported if reported is not None else \
        endpoint.estimate_credits(call.params)
    if call.instance.step.outputs:
        context = render_context(recipe, call.instance, views)
        context["response"] = response
        for name, template in call.instance.step.outputs.items():
            outputs[name] = render_field(recipe, call.instance, "outputs",
                                         {name: template}, context)[name]
    return CallOutcome(response=response, artifacts=artifacts, outputs=outputs,
                       credits=float(outputs["credits"] or 0), task_id=task_id, resumed=resumed,
                       credits_estimated=reported is None)


def _store_artifacts(call: PreparedCall, how: _Call, response: Any,
                     task_id: str | None) -> list[Artifact]:
    instance_id, client, cache = call.instance.id, how.client, how.cache
    artifacts = []
    for index, (kind, value) in enumerate(artifact_refs(call, response)):
        origin = f"{instance_id} artifact {index + 1}"
        if kind == "url":
            artifacts.append(fetch_artifact(client, cache, value, deadline=how.deadline,
                                            origin=origin))
        elif kind == "api":  # streamed to the cache with the provider's credential
            url = how.base_url.rstrip("/") + value.replace("{id}", quote(task_id or "",
                                                                         safe=""))
            artifacts.append(fetch_artifact(client, cache, url, deadline=how.deadline,
                                            origin=origin,
                                            provider=call.instance.step.provider))
        else:
            artifacts.append(store_b64(cache, value, origin=origin))
    for url in poster_urls(call, response):
        try:  # decoration: a cover that cannot be fetched is left out, the step goes on
            poster = fetch_artifact(client, cache, url, deadline=how.deadline,
                                    origin=f"{instance_id} poster")
        except (DownloadError, TransportError):
            continue
        artifacts.append(dataclasses.replace(poster, role="poster"))
    return artifacts


def keep_answer(cache: Cache, call: PreparedCall, response: Any,
                redact: Callable[[str], str]) -> str | None:
    """Keep a paid answer whose results could not be stored, in the call's journal, where
    the next run takes it instead of paying again (the API key redacted, as in a cache
    entry); None when kept, else why not."""
    if not isinstance(response, dict):
        return "the answer is not a JSON object"
    text = json.dumps(response)
    if redact(text) != text:
        response = json.loads(redact(text))
    try:
        cache.write_task(call.key, TaskRecord(None, endpoint=call.endpoint.id,
                                              answer=response))
    except (OSError, CacheError) as exc:
        return getattr(exc, "strerror", None) or str(exc)
    return None


def unstored_answer(call: PreparedCall, cache: Cache, response: Any, exc: Exception, *,
                    redact: Callable[[str], str], keep: bool = True) -> CacheError:
    """The error of a paid call whose results could not be stored, its answer kept (with
    ``keep``; a submitted task's journal names its task already), said in the message."""
    reason = getattr(exc, "message", None) or getattr(exc, "strerror", None) or str(exc)
    problem = keep_answer(cache, call, response, redact) if keep else None
    if problem is None:
        return CacheError(f"{call.instance.id}: its paid answer could not be stored "
                          f"({reason}); the answer is kept in the cache, and the next run "
                          "takes it from there instead of paying again",
                          hint="fix the cause (disk space, permissions, the network), then "
                               "run again")
    return CacheError(f"{call.instance.id}: its paid answer could not be stored ({reason}), "
                      f"nor kept ({problem}): the next run calls again",
                      hint="free some disk space, or move the cache with --cache-dir")
