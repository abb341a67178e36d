"""Runs a plan: a bounded pool, each instance as soon as its dependencies finish.

For each instance: render → check → cache key → cache hit, or call (with the per-key lock
held) → store artifacts and the result atomically → place `save` targets. A failed
instance skips its dependents; independent branches finish; the lock file is written only
after a fully successful run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

from .budget import Budget
from .cache import Cache, copy_atomic, sha256_file
from .calls import (FileDigests, PreparedCall, RenderFailed, api_key_from_env, condition_holds,
                    is_inside, perform_call, prepare_call, provider_identity, render_context,
                    render_field, step_view)
from .commands import load_plan
from .errors import CacheError, FlowError, FrozenError, Interrupted, RunError, StepFailed, \
    UsageError
from .graph import Instance, Plan
from .http import HttpClient
from .lock import lock_path_for, write_lock
from .records import append_step_summary, display, lock_entries, write_run_gallery, write_stamp
from .reporting import JsonReporter, Reporter, TextReporter
from .results import RunResult, StepResult
from .run import RunOptions, cache_root_for, stamp_context
from .spec import check_save_path, parse_var_overrides
from .survey import survey_plan
from .throttle import Throttle


def _check_steps(plan: Plan, names: tuple[str, ...], option: str) -> set[str]:
    import difflib

    known = list(plan.recipe.steps)
    for name in names:
        base = name.split("[")[0]
        if base not in plan.recipe.steps:
            close = difflib.get_close_matches(base, known, n=1)
            raise UsageError(f"{option} {name}: no step {base!r} in {plan.recipe.display}",
                             hint=f"did you mean {close[0]!r}?" if close else
                             "steps: " + ", ".join(known))
    return {name.split("[")[0] for name in names}


class _Signals:
    """Turn SIGTERM into an interruption of the main thread, like Ctrl-C."""

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self._previous: Any = None

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        self.signal_number = signum
        raise KeyboardInterrupt

    def __exit__(self, *_: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


class Executor:
    """Schedules and runs the instances of one plan."""

    def __init__(self, plan: Plan, *, selected: set[str], refresh: set[str], cache: Cache,
                 client: HttpClient | Callable[[], HttpClient], base_url: str, provider: str,
                 output_dir: Path,
                 reporter: Reporter, concurrency: int, no_cache: bool, dry_run: bool,
                 allow_paths: tuple[Path, ...] = (), budget: Budget | None = None,
                 expect_calls: frozenset[str] = frozenset()) -> None:
        self.plan = plan
        self.recipe = plan.recipe
        self.selected = selected
        self.refresh = refresh
        self.cache = cache
        self._client = client
        self.base_url = base_url
        self.provider = provider
        self.output_dir = output_dir
        self.reporter = reporter
        self.concurrency = concurrency
        self.no_cache = no_cache
        self.dry_run = dry_run
        self.allow_paths = allow_paths
        self.digests = FileDigests()
        self.expect_calls = expect_calls  # instances the survey found uncached: no hit check
        self.budget = budget or Budget(None)
        self.views: dict[str, Any] = {}
        self.cancelled = threading.Event()
        self._client_lock = threading.Lock()
        self._notes: dict[str, list[str]] = {}
        self._output_root = output_dir.resolve()

    @property
    def client(self) -> HttpClient:
        """The HTTP client, made on first use: a run of cache hits never imports requests."""
        if not isinstance(self._client, HttpClient):
            with self._client_lock:
                if not isinstance(self._client, HttpClient):
                    self._client = self._client()
        return self._client

    def close(self) -> None:
        if isinstance(self._client, HttpClient):
            self._client.close()

    # --- one instance --------------------------------------------------------------------
    def _run_instance(self, instance: Instance, views: dict[str, Any], *,
                      hits_only: bool = False) -> StepResult | None:
        """Run one instance; with ``hits_only``, None when it needs a call (or a download)."""
        step = instance.step
        started = time.monotonic()
        result = StepResult(instance.id, step.id, step.uses, "ok", location=str(step.location))
        result.notes.extend(self._notes.pop(instance.id, []))
        try:
            self._run_into(result, instance, views, started, hits_only=hits_only)
        except _NeedsCall:
            if result.notes:  # said by the real attempt that follows
                self._notes[instance.id] = result.notes
            return None
        except (RunError, CacheError) as exc:
            result.status, result.error = "failed", exc
        except OSError as exc:
            result.status = "failed"
            result.error = RunError(f"{instance.id}: {exc.strerror or exc}"
                                    + (f": {exc.filename}" if exc.filename else ""),
                                    hint="free some disk space" if exc.errno == 28 else None)
        result.duration = time.monotonic() - started
        return result

    def _run_into(self, result: StepResult, instance: Instance, views: dict[str, Any],
                  started: float, *, hits_only: bool = False) -> None:
        step = instance.step
        deadline = started + step.timeout
        context = render_context(self.recipe, instance, views)
        if not condition_holds(self.recipe, instance, context):
            result.status, result.reason = "skipped", "condition is false"
            return
        call = prepare_call(self.recipe, instance, views, provider=self.provider,
                            cache=self.cache, digests=self.digests,
                            client=None if hits_only else self.client,
                            deadline=deadline, allowed=self.allow_paths,
                            rendered=self.plan.rendered.get(instance.id))
        if call is None:
            raise _NeedsCall
        result.key = call.key
        result.params = call.material["params"]
        use_cache = step.cache and not self.no_cache and step.id not in self.refresh
        entry = self._cached(call, result) if use_cache else None
        if entry is None and hits_only:
            raise _NeedsCall
        if entry is None and self.dry_run:
            result.status = "planned"
            return
        if entry is None:
            if self.cancelled.is_set():
                raise RunError(f"{instance.id}: not started: the run was interrupted")
            estimate = call.endpoint.estimate_credits(call.params)
            self.budget.reserve(instance.id, estimate)
            spent = 0.0
            try:
                with self.cache.lock(call.key):
                    entry = self._cached(call, result) if use_cache else None
                    if entry is None:
                        entry = self._call(call, views, deadline, result, store=use_cache or
                                           (step.cache and not self.no_cache))
                        spent = float(entry.get("credits") or 0)
            finally:
                self.budget.settle(estimate, spent)
            if result.status != "ok":
                result.status = "cached"
        else:
            result.status = "cached"
        result.credits = float(entry.get("credits") or 0)
        result.outputs = entry.get("outputs", {})
        result.artifacts = entry.get("artifacts", [])
        result.response = entry.get("response", {})
        if not self.dry_run:
            result.saved = self._place(instance, entry, context)

    def _cached(self, call: PreparedCall, result: StepResult) -> dict[str, Any] | None:
        entry, problem = self.cache.lookup(call.key, verify=True)
        if problem is not None:
            result.notes.append(f"{problem}; treated as missing and fetched again")
            self.cache.discard(call.key)
        return entry

    def _call(self, call: PreparedCall, views: dict[str, Any], deadline: float,
              result: StepResult, *, store: bool) -> dict[str, Any]:
        outcome = perform_call(call, client=self.client, cache=self.cache,
                               base_url=self.base_url, digests=self.digests, recipe=self.recipe,
                               views=views, deadline=deadline, retries=call.instance.step.retries)
        response = json.loads(self.client.redact(json.dumps(outcome.response)))
        entry = {"endpoint": call.endpoint.id, "instance": call.instance.id,
                 "material": call.material, "response": response,
                 "outputs": outcome.outputs, "credits": outcome.credits,
                 "artifacts": [a.to_json() for a in outcome.artifacts]}
        if outcome.task_id:
            entry["task_id"] = outcome.task_id
        if store:
            self.cache.put(call.key, entry)
        self.cache.drop_task(call.key)
        result.resumed = outcome.resumed
        return entry

    def _place(self, instance: Instance, entry: dict[str, Any],
               context: dict[str, Any]) -> list[str]:
        """Copy the artifacts to their `save` targets (atomic, verified, unchanged skipped)."""
        step = instance.step
        artifacts = entry.get("artifacts", [])
        if step.save and not artifacts:
            raise StepFailed(f"{instance.id}: nothing to save: the answer had no files")
        saved = []
        for position, target in enumerate(step.save):
            if position >= len(artifacts):
                raise StepFailed(f"{instance.id}: save lists {len(step.save)} files but the "
                                 f"step made {len(artifacts)}",
                                 hint="shorten the `save` list or raise `n`")
            field_path: tuple[str | int, ...] = ("save", position) if len(step.save) > 1 \
                else ("save",)
            rendered = str(render_field(self.recipe, instance, ".".join(map(str, field_path)),
                                        target, context))
            problem = check_save_path(rendered)
            if problem:
                raise RenderFailed(f"{instance.id}: {problem}",
                                   hint="save paths stay inside the output folder")
            artifact = artifacts[position]
            if not os.path.splitext(rendered)[1]:
                rendered += "." + artifact["ext"]
            destination = (self.output_dir / rendered)
            if not is_inside(destination.resolve(), self._output_root):
                raise RenderFailed(f"{instance.id}: save path {rendered!r} escapes the output "
                                   "folder (through a symlink?)")
            if not _same_file(destination, artifact):
                source = self.cache.object_path(artifact["sha256"])
                copy_atomic(source, destination, expect_sha256=artifact["sha256"])
            saved.append(rendered)
        return saved

    # --- scheduling ----------------------------------------------------------------------
    def run(self, result: RunResult) -> None:
        plan = self.plan
        order = [s for s in plan.step_order if s in self.selected]
        remaining = {s: len(plan.by_step[s]) for s in order}
        waiting = {s: {d for d in plan.depends_on[s] if d in self.selected} for s in order}
        step_views: dict[str, list[Any]] = {s: [None] * len(plan.by_step[s]) for s in order}
        broken: dict[str, str] = {}
        started: set[str] = set()
        running: dict[Future[StepResult], Instance] = {}
        # calls are bounded by the throttle; extra workers let downloads, hashing and cache
        # writes of finished calls overlap the next calls instead of holding their slots
        pool = ThreadPoolExecutor(max_workers=self.concurrency * 2, thread_name_prefix="flow")

        def finish_step(step_id: str) -> None:
            for other in order:
                if step_id in waiting[other]:
                    waiting[other].discard(step_id)

        def skip_dependents(step_id: str, why: str) -> None:
            for other in order:
                if other in started or other in broken:
                    continue
                if step_id in plan.depends_on[other]:
                    broken[other] = why
                    started.add(other)
                    status = "planned" if self.dry_run and why.endswith("(dry run)") \
                        else "skipped"
                    for instance in plan.by_step[other]:
                        skipped = StepResult(instance.id, other, instance.step.uses, status,
                                             reason=f"needs {why}")
                        result.results.append(skipped)
                        self.reporter.step_finished(skipped)
                    skip_dependents(other, why)

        def complete(instance: Instance, outcome: StepResult) -> None:
            result.results.append(outcome)
            self.reporter.step_finished(outcome)
            step_id = instance.step_id
            if outcome.status in ("ok", "cached"):
                step_views[step_id][instance.position] = step_view(
                    {"outputs": outcome.outputs, "artifacts": outcome.artifacts,
                     "response": outcome.response or {}}, self.cache)
            elif step_id not in broken:
                broken[step_id] = (f"{instance.id}, which failed"
                                   if outcome.status == "failed" else
                                   f"{instance.id}, which was skipped"
                                   if outcome.status == "skipped" else
                                   f"{instance.id}, which was not called (dry run)")
            remaining[step_id] -= 1
            if remaining[step_id] == 0:
                if step_id in broken:
                    skip_dependents(step_id, broken[step_id])
                else:
                    step = self.recipe.steps[step_id]
                    self.views[step_id] = step_views[step_id] if step.matrix \
                        else step_views[step_id][0]
                    finish_step(step_id)

        def launch_ready() -> None:
            # Cache hits are finished here, in this thread: a mostly cached run would spend
            # more on handing work to threads (and on the GIL) than on the work itself.
            progressed = True
            while progressed:
                progressed = False
                for step_id in order:
                    if step_id in started or waiting[step_id]:
                        continue
                    started.add(step_id)
                    progressed = True
                    views = {d: self.views[d] for d in plan.depends_on[step_id]
                             if d in self.views}
                    for instance in plan.by_step[step_id]:
                        self.reporter.step_started(instance.id)
                        outcome = None if instance.id in self.expect_calls else \
                            self._run_instance(instance, views, hits_only=True)
                        if outcome is None:
                            running[pool.submit(self._run_instance, instance, views)] = instance
                        else:
                            complete(instance, outcome)

        try:
            launch_ready()
            while running:
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    instance = running.pop(future)
                    outcome = future.result()
                    assert outcome is not None
                    complete(instance, outcome)
                launch_ready()
        except KeyboardInterrupt:
            self.cancelled.set()
            pool.shutdown(wait=False, cancel_futures=True)
            # give running instances a moment to finish their atomic writes
            wait(list(running), timeout=2.0)
            result.interrupted = True
            return
        pool.shutdown(wait=True)


class _NeedsCall(Exception):
    """Internal: a cache-hits-only attempt found that the instance needs a call."""


def _same_file(path: Path, artifact: dict[str, Any]) -> bool:
    try:
        if path.stat().st_size != artifact["bytes"]:
            return False
        return sha256_file(path) == artifact["sha256"]
    except OSError:
        return False


@contextlib.contextmanager
def _provider(options: RunOptions, recipe_base_url: str) -> Iterator[tuple[str, str | None]]:
    """(base URL, API key) for the run; under --mock, an in-process emulator."""
    if options.mock:
        from .emulator.server import running_emulator

        with running_emulator() as base_url:
            yield base_url, "flowrunner-mock-key"
        return
    yield recipe_base_url, None


def run_recipe_file(path: Path, *, options: RunOptions, stream: TextIO) -> int:
    """`flow run`: plan, check the cache and the key, run, write the lock file.

    Returns:
        0 when every instance succeeded, 1 when some failed.

    Raises:
        SpecError (3), UsageError (2), FrozenError (4), Interrupted (130/143).
    """
    started = time.monotonic()
    overrides = parse_var_overrides(list(options.var_pairs), list(options.vars_files))
    plan = load_plan(path, var_overrides=overrides)
    recipe = plan.recipe
    only = _check_steps(plan, options.only, "--only")
    refresh = _check_steps(plan, options.refresh, "--refresh")
    selected = plan.closure(only) if only else set(plan.step_order)
    refresh_all = set(refresh)
    for step_id in refresh:
        refresh_all |= plan.dependents(step_id)
    cache_root = cache_root_for(recipe.path, options.cache_dir)
    cache = Cache(cache_root, readable=not options.no_cache, writable=not options.no_cache)
    if options.no_cache:
        import tempfile

        scratch = Path(tempfile.mkdtemp(prefix="flow-nocache-"))
        cache = Cache(scratch, readable=False, writable=False)
    output_dir = options.output_dir.resolve() if options.output_dir else recipe.output_dir
    provider = provider_identity(recipe.base_url, mock=options.mock)
    live = stream.isatty() and not options.as_json and os.environ.get("TERM") != "dumb"
    in_github = os.environ.get("GITHUB_ACTIONS") == "true"
    reporter: Reporter = JsonReporter(stream) if options.as_json else \
        TextReporter(stream, live=live, verbosity=options.verbosity, annotate=in_github)
    instances = [i for i in plan.instances if i.step_id in selected]

    survey = []
    budget_given = options.max_credits is not None or recipe.budget is not None
    if options.frozen or not options.mock or budget_given:
        survey = survey_plan(plan, cache=cache, provider=provider, selected=selected,
                             refresh=refresh_all, allowed=options.allow_paths)
        to_call = [s for s in survey if s.state not in ("cached", "skipped")]
        if options.frozen and to_call:
            names = ", ".join(s.instance.id for s in to_call[:8]) + \
                (f" and {len(to_call) - 8} more" if len(to_call) > 8 else "")
            raise FrozenError(f"--frozen: {len(to_call)} instance(s) are not in the cache: {names}",
                              hint="run `flow run` without --frozen to make them (and commit "
                                   "the lock file), or restore the cache")
        remote = [s for s in to_call
                  if not (s.instance.step.endpoint and s.instance.step.endpoint.local)]
        key_needed = bool(remote) and not options.dry_run
        if key_needed and not options.mock and api_key_from_env(recipe.api_key_env) is None:
            raise UsageError(f"the environment variable {recipe.api_key_env} is not set, and "
                             f"{len(remote)} instance(s) need a call",
                             hint=f"export {recipe.api_key_env}=<your ElkAPI key>, or try the "
                                  "recipe offline with --mock")
    concurrency = options.concurrency or recipe.concurrency
    limit = options.max_credits if options.max_credits is not None else recipe.budget
    estimate = sum(s.instance.step.endpoint.estimate_credits(s.call.params if s.call else {})
                   for s in survey if s.state not in ("cached", "skipped")
                   and s.instance.step.endpoint is not None) if survey else 0.0
    result = RunResult(recipe=recipe.display)
    result.dry_run = options.dry_run
    with _Signals() as signals, _provider(options, recipe.base_url) as (base_url, mock_key):
        api_key = mock_key or api_key_from_env(recipe.api_key_env)
        log = (lambda line: print(f"  http: {line}", file=sys.stderr)) \
            if options.verbosity >= 2 else None
        def make_client() -> HttpClient:
            return HttpClient(api_key=api_key, pool_size=concurrency,
                              throttle=Throttle(concurrency, per_minute=recipe.rate_limit),
                              log=log)

        cache.ensure() if cache.writable else None
        executor = None
        expected = frozenset(s.instance.id for s in survey
                             if s.state in ("missing", "blocked", "unknown"))
        try:
            # a run that will surely call makes its client now, not in the first worker
            client: HttpClient | Callable[[], HttpClient] = \
                make_client() if expected and not options.dry_run else make_client
            executor = Executor(plan, selected=selected, refresh=refresh_all, cache=cache,
                                client=client, base_url=base_url, provider=provider,
                                output_dir=output_dir, reporter=reporter,
                                concurrency=concurrency, no_cache=options.no_cache,
                                dry_run=options.dry_run, allow_paths=options.allow_paths,
                                budget=Budget(limit), expect_calls=expected)
            reporter.run_started(recipe.display, len(instances), concurrency)
            if limit is not None and estimate > limit:
                reporter.note(f"the calls to make are estimated at ~{estimate:g} credits, over "
                              f"the budget of {limit:g}: calls past it will be refused")
            executor.run(result)
        finally:
            if executor is not None:
                executor.close()
        interrupted_by = signals.signal_number
    result.elapsed = time.monotonic() - started
    result.output_dir = display(output_dir)
    if result.ok and not options.dry_run and not only and not options.no_cache:
        lock_file = lock_path_for(recipe.path)
        write_lock(lock_file, recipe.path.name, lock_entries(result, recipe.folder, output_dir),
                   provider)
        result.lock_path = display(lock_file)
        inputs = executor.digests.paths() if executor is not None else []
        write_stamp(plan, result, options, cache=cache, inputs=inputs, lock_file=lock_file,
                    output_dir=output_dir, concurrency=concurrency)
    if not options.dry_run:
        result.gallery = write_run_gallery(plan, result, output_dir)
    reporter.run_finished(result)
    append_step_summary(result)
    if result.interrupted:
        raise Interrupted("interrupted; finished steps are cached, run again to resume",
                          signal_number=interrupted_by)
    if options.no_cache:
        import shutil

        shutil.rmtree(cache.root, ignore_errors=True)
    return 0 if result.ok else 1


__all__ = ["Executor", "RunOptions", "run_recipe_file", "FlowError"]
