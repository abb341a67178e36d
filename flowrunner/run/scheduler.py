"""The scheduler: runs a plan's instances on a bounded pool, each as soon as its
dependencies finish.

For each instance: render → check → cache key → cache hit, or call (with the per-key lock
held) → store artifacts and the result atomically → place `save` targets. A failed
instance skips its dependents; independent branches finish. The HTTP side is injected as a
`Client` (net/http.py's protocol), so tests can drive the scheduling with a fake one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FuturesTimeout
from pathlib import Path
from typing import Any

from ..call.calls import SlotsFull, TaskRun, perform_call, unstored_answer
from ..call.context import condition_holds, render_context, render_field, step_view
from ..call.inputs import FileDigests
from ..call.polling import Parked, PollState, poll_many
from ..call.preparation import PreparedCall, prepare_call
from ..cancellation import Cancellation
from ..errors import CacheError, RenderFailed, RunError, StepFailed
from ..net.http import Client
from ..net.providers import Route
from ..net.slots import TaskSlots
from ..recipe.graph import Instance, Plan
from ..recipe.spec import check_save_path
from ..records import ArtifactRecord, CacheEntry
from ..store.cache import Cache, place_file, sha256_file
from ..workers import WorkerPool
from .budget import Budget
from .options import Shard
from .reporting import Reporter
from .results import SHARD_REASON, RunResult, Status, StepResult


class Signals:
    """Turn SIGTERM into an interruption of the main thread, like Ctrl-C; both wait for the
    end of a `held()` section (recording a finished instance), so an interruption never
    falls between a file placed and its lock entry.

    A second signal exits at once (status 130 or 143), as a kill would: every write is a
    temp file renamed into place, submitted tasks are journaled, and the lock file's
    journal records the files placed, so the next run finds everything consistent."""

    _active: Signals | None = None

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self._previous: dict[int, Any] = {}
        self._holding = 0
        self._pending = False
        self._count = 0

    def __enter__(self) -> Signals:
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGTERM, signal.SIGINT):
                self._previous[number] = signal.signal(number, self._handle)
            Signals._active = self
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        self.signal_number = signum if signum != signal.SIGINT else self.signal_number
        self._count += 1
        if self._count > 1:
            os.write(2, b"\nflow: interrupted again: exiting now; finished steps are cached, "
                        b"run again to resume\n")
            os._exit(128 + signum)
        if self._holding:
            self._pending = True
            return
        raise KeyboardInterrupt

    def __exit__(self, *_: object) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        if Signals._active is self:
            Signals._active = None


@contextlib.contextmanager
def held() -> Any:
    """A section an interruption waits for (it is raised when the section ends)."""
    active = Signals._active
    if active is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    active._holding += 1
    try:
        yield
    finally:
        active._holding -= 1
        if not active._holding and active._pending:
            active._pending = False
            raise KeyboardInterrupt


@dataclasses.dataclass(frozen=True, slots=True)
class Work:
    """What to run: the plan, the part of it chosen, and what the survey already knows."""

    plan: Plan
    selected: set[str] | None = None  # steps (all when None)
    refresh: frozenset[str] = frozenset()  # steps called again whatever the cache holds
    # `--only banner[size=1024x1024]`: of that step, only the instances named
    only_instances: frozenset[str] = frozenset()
    expect_calls: frozenset[str] = frozenset()  # found uncached: no second hit check
    # found cached: their prepared call and entry, not read again
    surveyed: dict[str, tuple[PreparedCall, CacheEntry]] = dataclasses.field(
        default_factory=dict)
    # calls prepared for uncached instances of steps that read no other step: used once
    prepared: dict[str, PreparedCall] = dataclasses.field(default_factory=dict)
    shard: Shard | None = None  # `--shard I/N`: the calls of other shards are theirs


@dataclasses.dataclass(frozen=True, slots=True)
class Means:
    """How to run it: the cache, the client, where each provider is, and the run's limits."""

    cache: Cache
    client: Callable[[], Client]  # made on first use: a run of hits never imports urllib3
    routes: dict[str, Route]  # provider profile → base URL and identity
    concurrency: int
    budget: Budget = dataclasses.field(default_factory=lambda: Budget(None))
    cancel: Cancellation = dataclasses.field(default_factory=Cancellation)  # Ctrl-C
    no_cache: bool = False
    dry_run: bool = False
    allow_paths: tuple[Path, ...] = ()
    # provider profile → its tasks in flight (`max_in_flight`, lowered by busy refusals)
    task_slots: dict[str, TaskSlots] = dataclasses.field(default_factory=dict)
    park: bool = False  # a running task frees its thread between polls (see Poller)


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """Where results go and who hears of them."""

    output_dir: Path
    reporter: Reporter
    place: bool = True  # a shard places no files
    link: bool = False  # `--link hardlink`: saved files are hard links to cache objects
    # the lock keeper: each outcome as it is known; and each about to replace files,
    # journaled first, so a run killed outright leaves a record of every file it replaced
    on_finished: Callable[[StepResult], None] | None = None
    on_placing: Callable[[StepResult], None] | None = None


class Scheduler:
    """Schedules and runs the instances of one plan: `Work` (what), `Means` (how),
    `Delivery` (where results go)."""

    def __init__(self, work: Work, means: Means, delivery: Delivery) -> None:
        plan = work.plan
        self.plan, self.recipe = plan, plan.recipe
        self.selected = set(plan.step_order) if work.selected is None else work.selected
        self.refresh = work.refresh
        self.only_instances = work.only_instances
        self.expect_calls = work.expect_calls
        self.surveyed = work.surveyed
        self.prepared = dict(work.prepared)  # each used once, then dropped
        self.shard = work.shard
        self.cache, self._make_client, self.routes = means.cache, means.client, means.routes
        self.concurrency, self.budget, self.cancel = means.concurrency, means.budget, \
            means.cancel
        self.no_cache, self.dry_run, self.allow_paths = means.no_cache, means.dry_run, \
            means.allow_paths
        self.task_slots = means.task_slots
        self._step_slots: dict[str, TaskSlots] = {}
        self.park = means.park
        self._resuming: dict[str, _ParkedTask] = {}  # instance id → its parked task
        self.output_dir, self.reporter = delivery.output_dir, delivery.reporter
        self.place, self.link = delivery.place, delivery.link
        self.on_finished, self.on_placing = delivery.on_finished, delivery.on_placing
        self._client: Client | None = None
        self.digests = FileDigests()
        self.views: dict[str, Any] = {}
        # once cancelled, no worker starts replacing a file: an interrupted run's lock file
        # records every file it placed (see `_placing`)
        self._placement = threading.Condition()
        self._placing = 0
        self._placed: set[str] = set()  # instances whose files are in place
        self._client_lock = threading.Lock()
        self._notes: dict[str, list[str]] = {}
        self._output_root = delivery.output_dir.resolve()
        self._inside_folders: dict[str, bool] = {}  # output folder → inside the real root

    def _after_relaunch(self, instance: Instance, parked: _ParkedTask | None) -> None:
        """A relaunch that ended without its call taking the parked task's slots over (a
        cache hit: another instance of the same key finished it) gives them back; one
        woken from a slot wait passes the turn on if it did not take the slot."""
        if parked is None:
            return
        if parked.state is not None and parked.held:
            parked.held = False
            for slot in self._slots_for(instance):
                slot.release(started=True)
        elif parked.state is None and parked.slot is not None:
            parked.slot.nudge()

    def _task_run(self, instance: Instance) -> TaskRun:
        """How an instance's task runs: its slots, parked between polls (no thread held
        while the provider works), from where polling stood when it was parked."""
        parked = self._resuming.get(instance.id)
        if parked is None or parked.state is None:
            return TaskRun(self._slots_for(instance), park=self.park)

        def taken_over() -> None:
            parked.held = False  # the call gives the slots back from now on

        return TaskRun(self._slots_for(instance), park=self.park, poll_state=parked.state,
                       on_held=taken_over)

    def _slots_for(self, instance: Instance) -> tuple[TaskSlots, ...]:
        """The task slots an instance's task holds: its step's (`max_in_flight` on the
        step), then its provider's."""
        step = instance.step
        found = []
        family_cap = step.endpoint.max_in_flight.get(self.recipe.provider_of(step).kind) \
            if step.endpoint is not None else None
        for key, cap in ((f"step {step.id}", step.max_in_flight),
                         (f"family {step.provider}/{step.uses.split('.')[0]}", family_cap)):
            if cap:  # the step's own, then its family's on this provider (the catalog's)
                with self._client_lock:
                    if key not in self._step_slots:
                        self._step_slots[key] = TaskSlots(cap, self.cancel, name=step.provider)
                    found.append(self._step_slots[key])
        provider = self.task_slots.get(step.provider)
        if provider is not None:
            found.append(provider)
        return tuple(found)

    @property
    def client(self) -> Client:
        """The client, made on first use: a run of cache hits never imports urllib3."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # --- one instance --------------------------------------------------------------------
    def run_instance(self, instance: Instance, views: dict[str, Any], *,
                     hits_only: bool = False, parked: _ParkedTask | None = None
                     ) -> StepResult | _ParkedTask | None:
        """Run one instance; with ``hits_only``, None when it needs a call (or a download).
        A task still running at the provider (or waiting for a slot) comes back as a
        `_ParkedTask`, to be run again from where it stood (``parked``)."""
        step = instance.step
        # a parked task keeps its start (and so its deadline); one that waited for a slot
        # starts its timeout now
        started = parked.started if parked is not None and parked.state is not None \
            else time.monotonic()
        result = StepResult(instance.id, step.id, step.uses, "ok", location=str(step.location),
                            unit=step.endpoint.unit if step.endpoint and not step.endpoint.local
                            else self.budget.unit)
        result.notes.extend(self._notes.pop(instance.id, []))
        since = parked.since if parked is not None else started
        if parked is not None:
            self._resuming[instance.id] = parked
        try:
            if parked is not None and parked.state is None and \
                    time.monotonic() > since + step.timeout:
                raise RunError(f"{instance.id}: waited {time.monotonic() - since:.0f} s for a "
                               "free task slot (`max_in_flight`); nothing was submitted",
                               hint="raise the step's `timeout` or `max_in_flight`, or run "
                                    "fewer tasks at once")
            finished = self._run_into(result, instance, views, started, hits_only=hits_only)
        except Parked as exc:
            self._notes[instance.id] = result.notes
            return _ParkedTask(instance, views, exc.state, started, since, wait=exc.wait)
        except SlotsFull as exc:
            self._notes[instance.id] = result.notes
            return _ParkedTask(instance, views, None, started, since, slot=exc.slot)
        except (RunError, CacheError) as exc:
            result.status, result.error = "failed", exc
            finished = True
        except OSError as exc:
            result.status = "failed"
            result.error = RunError(f"{instance.id}: {exc.strerror or exc}"
                                    + (f": {exc.filename}" if exc.filename else ""),
                                    hint="free some disk space" if exc.errno == 28 else None)
            finished = True
        finally:
            self._resuming.pop(instance.id, None)
            self._after_relaunch(instance, parked)
        if not finished:
            if result.notes:  # said by the real attempt that follows
                self._notes[instance.id] = result.notes
            return None
        result.duration = time.monotonic() - since
        return result

    def _run_into(self, result: StepResult, instance: Instance, views: dict[str, Any],
                  started: float, *, hits_only: bool) -> bool:
        """Fill ``result``; False when ``hits_only`` and the instance needs a call."""
        step = instance.step
        deadline = started + step.timeout
        context = render_context(self.recipe, instance, views)
        if not condition_holds(self.recipe, instance, context):
            result.status, result.reason = "skipped", "condition is false"
            return True
        known = self.surveyed.get(instance.id) if hits_only else None
        ready = None if hits_only else self.prepared.pop(instance.id, None)
        call = known[0] if known else ready if ready is not None else prepare_call(
            self.recipe, instance, views, provider=self.routes[step.provider].identity,
            cache=self.cache, digests=self.digests, client=None if hits_only else self.client,
            deadline=deadline, allowed=self.allow_paths,
            rendered=self.plan.rendered.get(instance.id))
        if call is None:
            return False
        result.key = call.key
        result.params = call.material["params"]
        targets = self._save_targets(instance, context)  # wrong targets fail before paying
        use_cache = step.cache and not self.no_cache and step.id not in self.refresh
        if use_cache and known and not self.dry_run and \
                self._restore_surveyed(instance, call, known[1], targets, result):
            return True
        entry = None
        if use_cache and instance.id not in self.expect_calls:  # else: looked up under its lock
            entry = self._cached(call, result)
        if entry is None and hits_only:
            return False
        if entry is None and self.dry_run:
            result.status = "planned"
            return True
        if entry is None and self.shard is not None and not self.shard.owns(call.key):
            entry = self._from_other_shard(call, deadline, result)
            if entry is None:
                return True
        if entry is None:
            entry = self._call_once(call, views, deadline, result, use_cache=use_cache)
        else:
            result.status = "cached"
        _take_entry(result, entry)
        if not self.dry_run and self.place:
            with self._placing_files(instance):
                result.saved = self._place(instance, entry, targets, result,
                                           fresh=result.status == "ok")
        return True

    def _restore_surveyed(self, instance: Instance, call: PreparedCall, entry: CacheEntry,
                          targets: list[str], result: StepResult) -> bool:
        """A hit the survey read: True when its files are in place (a committed kit: one
        read of each file is the whole check) or were copied from their objects (verified
        by the copy itself; handing small copies to worker threads measured twice as slow,
        all of it in lock contention). False when an object is corrupt: the entry is
        discarded and fetched again."""
        saved = self._in_place(entry, targets) if self.place else []
        if saved is None:
            try:
                with self._placing_files(instance):
                    saved = self._place(instance, entry, targets, result)
            except CacheError as exc:  # a corrupt object: the entry is fetched again
                result.notes.append(f"{exc.message}; treated as missing and fetched again")
                self.cache.discard(call.key)
                return False
        result.status = "cached"
        _take_entry(result, entry)
        result.saved = saved
        return True

    @contextlib.contextmanager
    def _placing_files(self, instance: Instance) -> Any:
        """Hold off an interruption's bookkeeping while files are replaced."""
        with self._placement:
            if self.cancel.cancelled:
                raise RunError(f"{instance.id}: its files were not replaced: the run was "
                               "interrupted (the result is cached; run again to place them)")
            self._placing += 1
        placed = False
        try:
            yield
            placed = True
        finally:
            with self._placement:
                self._placing -= 1
                if placed:
                    self._placed.add(instance.id)
                self._placement.notify_all()

    def _cancel(self, wait: float) -> None:
        """Cancel the run (no worker starts replacing files after it: `_placing_files`
        looks under the same condition); wait (bounded) for those that are."""
        deadline = time.monotonic() + wait
        self.cancel.cancel()  # every wait ends, every read is closed
        with self._placement:
            while self._placing and time.monotonic() < deadline:
                self._placement.wait(max(0.0, deadline - time.monotonic()))

    def _call_once(self, call: PreparedCall, views: dict[str, Any], deadline: float,
                   result: StepResult, *, use_cache: bool) -> CacheEntry:
        """Call under the per-key lock (another run may have made it meanwhile)."""
        if self.cancel.cancelled:
            raise RunError(f"{call.instance.id}: not started: the run was interrupted")
        # a budget counts its own unit: a call to a provider that bills in another is not held
        counted = call.endpoint.local or call.endpoint.unit == self.budget.unit
        parked = self._resuming.get(call.instance.id)
        estimate = call.endpoint.estimate_credits(call.params) if counted else 0.0
        if parked is None or parked.state is None:  # a parked task's is still held
            self.budget.reserve(call.instance.id, estimate)
        spent, settle = 0.0, True
        try:
            with self.cache.lock(call.key, timeout=deadline - time.monotonic(),
                                 on_wait=lambda line: self.reporter.note(
                                     f"{call.instance.id}: {line}")):
                entry = self._cached(call, result) if use_cache else None
                if entry is not None:
                    result.status = "cached"
                    return entry
                try:
                    entry = self._call(call, views, deadline, result,
                                       store=call.instance.step.cache and not self.no_cache)
                except Parked:
                    settle = False  # paid for, running: its reservation stays
                    raise
                spent = float(entry.get("credits") or 0) if counted else 0.0
                return entry
        finally:
            if settle:
                self.budget.settle(estimate, spent)

    def _from_other_shard(self, call: PreparedCall, deadline: float, result: StepResult
                          ) -> CacheEntry | None:
        """Another shard makes this call: skip it, or, when later steps need its result,
        wait for that result in the shared cache.

        Raises:
            RunError: the result did not come before the step's timeout.
        """
        step_id = call.instance.step_id
        if not any(step_id in self.plan.depends_on[other] for other in self.selected):
            result.status, result.reason = "skipped", f"{SHARD_REASON} (--shard {self.shard})"
            return None
        self.reporter.note(f"{call.instance.id}: waiting for another shard's call of "
                           f"{call.key[:12]}…")
        entry = self.cache.wait_for(call.key, deadline)
        if entry is None:
            raise RunError(f"{call.instance.id}: another shard's result of {call.key[:12]}… "
                           "did not reach the remote cache before the step's timeout",
                           hint="check that every shard of --shard runs with the same "
                                "--remote-cache, or raise the step's `timeout`")
        result.status = "cached"
        return entry

    def _cached(self, call: PreparedCall, result: StepResult) -> CacheEntry | None:
        entry, problem = self.cache.lookup(call.key, verify=True)
        if problem is not None:
            result.notes.append(f"{problem}; treated as missing and fetched again")
            self.cache.discard(call.key)
        return entry

    def _call(self, call: PreparedCall, views: dict[str, Any], deadline: float,
              result: StepResult, *, store: bool) -> CacheEntry:
        outcome = perform_call(call, client=self.client, cache=self.cache,
                               base_url=self.routes[call.instance.step.provider].base_url,
                               digests=self.digests, recipe=self.recipe,
                               views=views, deadline=deadline, retries=call.instance.step.retries,
                               task=self._task_run(call.instance))
        import json

        text = json.dumps(outcome.response)
        redacted = self.client.redact(text)
        # the key never reaches the cache, even when a provider echoes it back
        response = outcome.response if redacted == text else json.loads(redacted)
        entry: CacheEntry = {"endpoint": call.endpoint.id, "instance": call.instance.id,
                 "material": call.material, "response": response,
                 "outputs": outcome.outputs, "credits": outcome.credits,
                 "artifacts": [a.to_json() for a in outcome.artifacts]}
        if outcome.task_id:
            entry["task_id"] = outcome.task_id
        if outcome.credits_estimated:
            entry["credits_estimated"] = True
        if store:
            try:
                self.cache.put(call.key, entry)
            except CacheError as exc:
                # a task's journal still names it; any other paid answer is kept there
                raise unstored_answer(call, self.cache, response, exc,
                                      redact=self.client.redact,
                                      keep=not outcome.task_id) from None
        if outcome.task_id or outcome.resumed:  # its journal has served
            self.cache.drop_task(call.key)
        result.resumed = outcome.resumed
        if outcome.note:
            result.notes.append(outcome.note)
        return entry

    def _save_targets(self, instance: Instance, context: dict[str, Any]) -> list[str]:
        """The instance's rendered `save` paths, checked to stay in the output folder.

        Raises:
            RenderFailed: a template fails, or a path escapes the output folder.
        """
        step = instance.step
        targets = []
        for position, target in enumerate(step.save):
            name = "save" if len(step.save) == 1 else f"save.{position}"
            rendered = str(render_field(self.recipe, instance, name, target, context))
            problem = check_save_path(rendered)
            if problem:
                raise RenderFailed(f"{instance.id}: {problem}",
                                   hint="save paths stay inside the output folder")
            targets.append(rendered)
        return targets

    def _in_place(self, entry: CacheEntry, targets: list[str]) -> list[str] | None:
        """The saved names when every target already holds its artifact, else None."""
        files, posters = _split(entry.get("artifacts", []))
        if len(targets) > len(files) or (targets and not files):
            return None
        saved = [_saved_name(rendered, artifact)
                 for rendered, artifact in zip(targets, files, strict=False)]
        saved += _poster_names(saved, files, posters)
        # only read here: `_place` checks symlinks before it writes anything
        if all(_same_file(self.output_dir / name, artifact)
               for name, artifact in zip(saved, files + posters, strict=False)):
            return saved
        return None

    def _inside_output(self, destination: Path) -> bool:
        """Whether writing ``destination`` stays in the output folder, symlinks followed.

        Each folder is resolved once per run (a restore of thousands of files into a few
        folders would otherwise resolve every path component of every file)."""
        if os.path.islink(destination):
            return Path(os.path.realpath(destination)).is_relative_to(self._output_root)
        folder = os.path.dirname(destination)
        inside = self._inside_folders.get(folder)
        if inside is None:
            inside = self._inside_folders[folder] = Path(
                os.path.realpath(folder)).is_relative_to(self._output_root)
        return inside

    def _place(self, instance: Instance, entry: CacheEntry, targets: list[str],
               result: StepResult | None = None, *, fresh: bool = False) -> list[str]:
        """Copy the artifacts to their `save` targets (atomic, verified, unchanged skipped),
        and each file's poster beside it (`NAME.poster.EXT`) when every file is saved.
        ``fresh``: this run just made the call, and hashed its objects as it stored them.

        The names come back in the entry's order of artifacts (files, then posters), which
        the lock file and the stamp pair them by."""
        files, posters = _split(entry.get("artifacts", []))
        if targets and not files:
            raise StepFailed(f"{instance.id}: nothing to save: the answer had no files")
        if len(targets) > len(files):
            raise StepFailed(f"{instance.id}: save lists {len(targets)} files but the "
                             f"step made {len(files)}",
                             hint="shorten the `save` list or raise `n`")
        names = [_saved_name(target, artifact)
                 for target, artifact in zip(targets, files, strict=False)]
        names += _poster_names(names, files, posters)
        if self.on_placing is not None and result is not None and names:
            intended = dataclasses.replace(result, saved=names)
            _take_entry(intended, entry)
            self.on_placing(intended)
        saved = []
        for rendered, artifact in zip(names, files + posters, strict=False):
            destination = self.output_dir / rendered
            if not self._inside_output(destination):
                raise RenderFailed(f"{instance.id}: save path {rendered!r} escapes the output "
                                   "folder (through a symlink?)")
            if not _same_file(destination, artifact):
                # a call's objects were hashed as they were stored, a moment ago
                place_file(self.cache.object_file(artifact["sha256"]), destination,
                           sha256=artifact["sha256"], link=self.link,
                           checked=fresh)
            saved.append(rendered)
        return saved

    # --- scheduling ----------------------------------------------------------------------
    def run(self, result: RunResult) -> None:
        """Run every selected instance into ``result``; on Ctrl-C, mark it interrupted."""
        # as many threads as calls in flight: each does its call, download and cache write,
        # as a plain thread pool would (more threads only fight over the interpreter lock);
        # a shard's instances of other shards wait for their results without calling: room
        # for them, while the per-provider throttle still caps the calls at `concurrency`
        workers = self.concurrency * (self.shard.count if self.shard else 1)
        run = _Progress(self.plan, self.selected, self.only_instances, result,
                        WorkerPool(workers, name="flow"))
        run.poller = Poller(lambda due: self._poll_due(run, due), run.finished.put)
        try:
            self._launch_ready(run)
            while run.running or run.parked:
                item = run.finished.get()
                if isinstance(item, _ParkedTask):  # its next poll (or a free slot) is due
                    self._relaunch(run, item)
                    continue
                with held():  # taken off `running` and recorded, or neither
                    instance = run.running.pop(item)
                    outcome = item.result()
                    assert outcome is not None  # hits_only=False always finishes
                    if isinstance(outcome, _ParkedTask):
                        self._park(run, outcome)
                        continue
                    self._complete(run, instance, outcome)
                self._launch_ready(run)
        except KeyboardInterrupt:
            self._stop(run)
            return
        finally:
            if run.poller is not None:
                run.poller.close()
        run.pool.shutdown(wait=True)

    def _park(self, run: _Progress, parked: _ParkedTask) -> None:
        """A task the provider still runs (polled again after its wait), or one waiting
        for a slot (run again when one frees): no thread is held meanwhile."""
        run.parked += 1
        assert run.poller is not None
        if parked.state is None:
            assert parked.slot is not None
            parked.slot.when_free(lambda: run.finished.put(parked))
            # and at its timeout, should no slot free before: it then fails, unsubmitted
            run.poller.add(parked, max(0.0, parked.since + parked.instance.step.timeout
                                       - time.monotonic()) + 0.05)
        else:
            run.parked_tasks += 1
            run.poller.add(parked, parked.wait)

    def _poll_due(self, run: _Progress, due: list[_ParkedTask]) -> None:
        """Hand back the parked tasks whose poll is due; those of a family with a batch
        route (Midjourney, Suno) are polled together first, in one request per provider
        and family, and each then reads its own answer from it."""
        groups: dict[tuple[str, str], list[_ParkedTask]] = {}
        for parked in due:
            key = _batch_key(parked)
            if key is not None:
                groups.setdefault(key, []).append(parked)
            else:
                run.finished.put(parked)
        for key, group in groups.items():
            assert run.poller is not None  # the family's other tasks come along
            group += run.poller.take(lambda other, key=key: _batch_key(other) == key)  # type: ignore[misc]
            most = group[0].instance.step.endpoint.task.batch_max  # type: ignore[union-attr]
            for start in range(0, len(group), most):
                chunk = group[start:start + most]
                if len(chunk) == 1:
                    run.finished.put(chunk[0])
                else:
                    run.pool.submit(self._batch_poll, run, chunk)

    def _batch_poll(self, run: _Progress, chunk: list[_ParkedTask]) -> None:
        """One batch poll for ``chunk``; every task goes back to the run, with its answer
        when the batch had it (else it polls alone)."""
        step = chunk[0].instance.step
        try:
            assert step.endpoint is not None
            found = poll_many(step.endpoint, step.provider, self.client,
                              self.routes[step.provider].base_url,
                              [p.state.task_id for p in chunk if p.state is not None],
                              deadline=time.monotonic() + 60, retries=step.retries)
        except Exception:  # noqa: BLE001 - each task then polls alone, as without a batch
            found = {}
        for parked in chunk:
            if parked.state is not None and parked.state.task_id in found:
                parked.state = dataclasses.replace(parked.state,
                                                   prefetched=found[parked.state.task_id])
            run.finished.put(parked)

    def _run_parked(self, parked: _ParkedTask) -> StepResult | _ParkedTask | None:
        return self.run_instance(parked.instance, parked.views, parked=parked)

    def _relaunch(self, run: _Progress, parked: _ParkedTask) -> None:
        if parked.relaunched:  # woken twice (a free slot, then its timeout): once is enough
            if parked.slot is not None:
                parked.slot.nudge()  # the wake-up it took goes to the next waiter
            return
        parked.relaunched = True
        run.parked -= 1
        if parked.state is not None:
            run.parked_tasks -= 1
        future = run.pool.submit(self._run_parked, parked)
        run.running[future] = parked.instance
        future.add_done_callback(run.finished.put)

    def _launch_ready(self, run: _Progress) -> None:
        """Start every step whose dependencies are done. Cache hits are finished here, in
        this thread: a mostly cached run would spend more on handing work to threads (and
        on the GIL) than on the work itself."""
        while run.ready:
            run.ready.sort(key=run.order.index)
            step_id = run.ready.pop(0)
            if step_id in run.started:
                continue
            run.started.add(step_id)
            views = {d: self.views[d] for d in self.plan.depends_on[step_id]
                     if d in self.views}
            for instance in run.instances_of[step_id]:
                self.reporter.step_started(instance.id)
                with held():  # its files placed here are recorded before any interrupt
                    outcome = None if instance.id in self.expect_calls else \
                        self.run_instance(instance, views, hits_only=True)
                    if isinstance(outcome, StepResult):  # a hit (a check parks nothing)
                        self._complete(run, instance, outcome)
                if outcome is None:
                    future = run.pool.submit(self.run_instance, instance, views)
                    run.running[future] = instance
                    future.add_done_callback(run.finished.put)

    def _complete(self, run: _Progress, instance: Instance, outcome: StepResult) -> None:
        """Record a finished instance; when its step is done, free its dependents (or skip
        them, when it failed)."""
        run.result.results.append(outcome)
        self.reporter.step_finished(outcome)
        if self.on_finished is not None:
            self.on_finished(outcome)
        step_id = instance.step_id
        if outcome.status in ("ok", "cached"):
            if run.dependents[step_id]:  # what later templates read of it
                run.step_views[step_id][instance.position] = step_view(
                    {"outputs": outcome.outputs, "artifacts": outcome.artifacts,
                     "response": outcome.response or {}}, self.cache)
            outcome.response = None  # kept for the views only: 50,000 answers add up
        elif step_id not in run.broken:
            run.broken[step_id] = f"{instance.id}, which " + (
                "failed" if outcome.status == "failed" else "was skipped"
                if outcome.status == "skipped" else "was not called (dry run)")
        run.remaining[step_id] -= 1
        if run.remaining[step_id]:
            return
        if step_id in run.broken:
            self._skip_dependents(run, step_id, run.broken[step_id])
            return
        step = self.recipe.steps[step_id]
        self.views[step_id] = run.step_views[step_id] if step.matrix \
            else run.step_views[step_id][0]
        for other in run.dependents[step_id]:
            run.waiting[other].discard(step_id)
            if not run.waiting[other] and other not in run.started:
                run.ready.append(other)

    def _skip_dependents(self, run: _Progress, step_id: str, why: str) -> None:
        for other in run.dependents[step_id]:
            if other in run.started or other in run.broken:
                continue
            run.broken[other] = why
            run.started.add(other)
            status: Status = "planned" if self.dry_run and why.endswith("(dry run)") \
                else "skipped"
            for instance in self.plan.by_step[other]:
                skipped = StepResult(instance.id, other, instance.step.uses, status,
                                     reason=f"needs {why}")
                run.result.results.append(skipped)
                self.reporter.step_finished(skipped)
            self._skip_dependents(run, other, why)

    def _stop(self, run: _Progress) -> None:
        """Ctrl-C: cancel every wait, let running instances finish their atomic writes a
        moment, record what finished meanwhile, and say what may have been billed."""
        self._cancel(wait=2.0)
        in_flight = {future for future in run.running if future.running()}
        run.pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + 2.0
        for future in list(run.running):
            with contextlib.suppress(CancelledError, FuturesTimeout):  # let it go
                future.exception(timeout=max(0.0, deadline - time.monotonic()))
        # what finished meanwhile (files placed before the interruption) is recorded; an
        # instance whose files are in place is only returning: wait for it
        for future, instance in list(run.running.items()):
            if instance.id in self._placed:
                with contextlib.suppress(CancelledError, FuturesTimeout):
                    future.exception(timeout=30)
            if future.done() and not future.cancelled() and future.exception() is None:
                outcome = future.result()
                if isinstance(outcome, StepResult) and outcome.status in ("ok", "cached"):
                    run.running.pop(future)
                    self._complete(run, instance, outcome)
        run.result.stopped = len(in_flight & set(run.running)) + run.parked_tasks  # journaled
        run.result.interrupted = True
        unanswered = getattr(self._client, "submits_in_flight", 0)
        if unanswered:
            self.reporter.note(f"{unanswered} paid submit(s) had no answer yet when the run "
                               "stopped: they may have been billed; check the provider's "
                               "dashboard before running again")


class _Progress:
    """One run's progress through the step graph: which steps wait on which, which are
    ready, started or broken, how many instances each has left, what finished instances
    give later templates, and the futures in flight."""

    def __init__(self, plan: Plan, selected: set[str], only: frozenset[str],
                 result: RunResult, pool: WorkerPool) -> None:
        self.order = [s for s in plan.step_order if s in selected]
        named = {i.split("[")[0] for i in only}
        self.instances_of = {s: tuple(i for i in plan.by_step[s]
                                      if s not in named or i.id in only)
                             for s in self.order}
        self.remaining = {s: len(self.instances_of[s]) for s in self.order}
        self.waiting = {s: {d for d in plan.depends_on[s] if d in selected}
                        for s in self.order}
        self.dependents: dict[str, list[str]] = {s: [] for s in self.order}
        for step_id in self.order:
            for dep in self.waiting[step_id]:
                self.dependents[dep].append(step_id)
        self.step_views: dict[str, list[Any]] = {s: [None] * len(plan.by_step[s])
                                                 for s in self.order}
        self.broken: dict[str, str] = {}
        self.started: set[str] = set()
        self.ready = [s for s in self.order if not self.waiting[s]]
        self.result, self.pool = result, pool
        self.running: dict[Future[Any], Instance] = {}
        # finished futures, and parked tasks that are due
        self.finished: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.parked = 0  # tasks running at the provider with no thread, or waiting a slot
        self.parked_tasks = 0  # of which submitted (journaled), not waiting for a slot
        self.poller: Poller | None = None


def _batch_key(parked: _ParkedTask) -> tuple[str, str] | None:
    """(provider profile, endpoint) of a parked task polled with others of its kind, or
    None when its family has no batch route."""
    endpoint = parked.instance.step.endpoint
    if parked.state is None or not parked.state.task_id or endpoint is None \
            or endpoint.task is None or endpoint.task.batch is None:
        return None
    return parked.instance.step.provider, endpoint.id


@dataclasses.dataclass(slots=True)
class _ParkedTask:
    """An instance whose task runs at the provider with no thread held (polled again
    after ``wait``, from ``state``), or that waits for a free ``slot`` (``state`` None)."""

    instance: Instance
    views: dict[str, Any]
    state: PollState | None
    started: float  # its timeout runs from here
    since: float  # its first launch (the duration it reports)
    wait: float = 0.0
    slot: TaskSlots | None = None
    held: bool = True  # a running task's slots, until a relaunch's call takes them over
    relaunched: bool = False  # handed back once (a slot wait can be woken twice)


class Poller:
    """One thread for every parked task of a run: it keeps them by next poll time and
    hands each back (``due``) when its time comes; the run's pool does the polling."""

    def __init__(self, due: Callable[[list[_ParkedTask]], None],
                 fallback: Callable[[_ParkedTask], None]) -> None:
        import heapq

        self._heap: list[tuple[float, int, _ParkedTask]] = []
        self._push, self._pop = heapq.heappush, heapq.heappop
        self._due, self._fallback = due, fallback
        self._count = 0
        self._changed = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def add(self, parked: _ParkedTask, after: float) -> None:
        with self._changed:
            self._count += 1
            self._push(self._heap, (time.monotonic() + after, self._count, parked))
            self._changed.notify()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="flow-poller",
                                                daemon=True)
                self._thread.start()

    def take(self, wanted: Callable[[_ParkedTask], bool]) -> list[_ParkedTask]:
        """Take out the parked tasks ``wanted`` says, due or not (a batch poll reads them
        with those that are due)."""
        import heapq

        with self._changed:
            taken = [entry[2] for entry in self._heap if wanted(entry[2])]
            if taken:
                self._heap = [entry for entry in self._heap if not wanted(entry[2])]
                heapq.heapify(self._heap)
            return taken

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._closed and (not self._heap or
                                            self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._changed.wait(timeout)
                if self._closed:
                    return
                due = []
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    due.append(self._pop(self._heap)[2])
            try:
                self._due(due)
            except Exception:  # noqa: BLE001 - never lose a task: hand them back unbatched
                for parked in due:
                    self._fallback(parked)


def _take_entry(result: StepResult, entry: CacheEntry) -> None:
    """What an instance's result says of its cache entry (called or cached)."""
    result.credits = float(entry.get("credits") or 0)
    result.credits_estimated = bool(entry.get("credits_estimated"))
    result.outputs = entry.get("outputs", {})
    result.artifacts = entry.get("artifacts", [])
    result.response = entry.get("response", {})


def _split(artifacts: list[ArtifactRecord]) -> tuple[list[ArtifactRecord],
                                                    list[ArtifactRecord]]:
    """(the step's files, their posters): posters are not files a `save` names."""
    return ([a for a in artifacts if a.get("role") != "poster"],
            [a for a in artifacts if a.get("role") == "poster"])


def _poster_names(saved: list[str], files: list[ArtifactRecord],
                  posters: list[ArtifactRecord]) -> list[str]:
    """Where each file's poster goes (`NAME.poster.EXT` beside file NAME.EXT): only when
    every file is saved, so names and artifacts keep one order."""
    if not posters or len(saved) != len(files):
        return []
    return [f"{os.path.splitext(saved[i])[0]}.poster.{poster['ext']}"
            for i, poster in enumerate(posters[:len(saved)])]


def _saved_name(target: str, artifact: ArtifactRecord) -> str:
    """A `save` target, with the artifact's extension when it names none."""
    return target if os.path.splitext(target)[1] else f"{target}.{artifact['ext']}"


def _same_file(path: Path, artifact: ArtifactRecord) -> bool:
    try:
        if path.stat().st_size != artifact["bytes"]:
            return False
        return sha256_file(path) == artifact["sha256"]
    except OSError:
        return False
