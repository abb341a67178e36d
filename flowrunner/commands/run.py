"""`flow run`: recognise an unchanged re-run from its stamp, else plan, check the cache and
the key, run the scheduler, and write the lock file, stamp, gallery and CI summary.

The stamp path is kept light on purpose: a no-op re-run of a large recipe reads one stamp
and stats some files, and never imports the parser, templating, schemas or HTTP stack.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from ..kit.stamp import read_fresh_stamp, stamp_file
from ..run.options import RunOptions, cache_root_for, display


def run_recipe(path: Path, *, options: RunOptions, stream: TextIO) -> int:
    """`flow run`. Returns 0 when every instance succeeded, 1 when some failed.

    Raises:
        SpecError (3), UsageError (2), FrozenError (4), Interrupted (130/143).
    """
    return 0 if execute_run(path, options=options, stream=stream).ok else 1


def execute_run(path: Path, *, options: RunOptions, stream: TextIO,
                listener: Callable[[Any], None] | None = None) -> Any:
    """Run the recipe (or recognise an unchanged re-run) and return its `RunResult`. The
    summary goes to ``stream``, or each event to ``listener`` (a `RunEvent`) when given.

    Raises:
        SpecError, UsageError, FrozenError, BudgetExceeded, Interrupted.
    """
    if options.remote_cache:  # a wrong URL is a usage error, even when nothing is to do
        from ..store.objectstore import check_url

        check_url(options.remote_cache)
    if options.stamp_eligible and not os.environ.get("FLOW_NO_STAMP"):
        target = stamp_file(cache_root_for(path, options.cache_dir), path,
                            options.stamp_context(path))
        root = cache_root_for(path, options.cache_dir)
        stamp = read_fresh_stamp(target, path, objects=root / "objects")
        if stamp is not None and _restore_from_stamp(stamp, root, target, options=options):
            return _report_unchanged(path, stamp, options, _make_reporter(options, stream,
                                                                          listener),
                                     job_summary=listener is None)
    from ..errors import Interrupted
    from ..limits import max_answer_bytes, max_artifact_bytes
    from ..run.scheduler import Signals

    max_answer_bytes(), max_artifact_bytes()  # a bad FLOW_MAX_*_MB fails before any call
    if (options.mock_latency or options.mock_faults) and not options.mock:
        from ..errors import UsageError

        raise UsageError("--latency and --fault shape the emulator: they go with --mock",
                         hint="add --mock, or use `flow emulator --latency … --fault …` and "
                              "point the recipe's provider at it")
    for fault in options.mock_faults:
        from ..emulator.faults import FAULT_HELP, FAULT_KINDS

        if fault.partition(":")[0] not in FAULT_KINDS:
            from ..errors import UsageError

            raise UsageError(f"--fault {fault}: unknown fault", hint=f"known: {FAULT_HELP}")
    with Signals() as signals:
        # --no-cache: a scratch cache for this run only, removed however the run ends
        scratch = Path(tempfile.mkdtemp(prefix="flow-nocache-")) if options.no_cache else None
        try:
            return _run(path, options=options, stream=stream, scratch=scratch,
                        signals=signals, listener=listener)
        except KeyboardInterrupt:
            raise Interrupted("interrupted; finished steps are cached, run again to resume",
                              signal_number=signals.signal_number) from None
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)


def _restore_from_stamp(stamp: Any, cache_root: Path, target: Path, *,
                        options: RunOptions) -> bool:
    """Copy back the saved assets the stamp found missing or changed, each from its cache
    object (verified as it is copied), inside the output folder only: the one the command
    line or the recipe's own text names, never the stamp's word for it, and never a folder
    that holds the recipe (a stamp lives in a cache a CI job may restore from elsewhere).
    False when any cannot be: the normal run then decides."""
    if not stamp.restore:
        return True
    from ..errors import CacheError
    from ..store.cache import place_file

    declared = str(options.output_dir.resolve()) if options.output_dir else \
        stamp.declared_output and stamp.path_of(stamp.declared_output)
    if not declared:
        return False  # the recipe's output folder cannot be told without parsing it
    output = os.path.realpath(declared)
    if (os.path.realpath(stamp.base) + os.sep).startswith(output + os.sep):
        return False  # it holds the recipe (and the repository's files): not from a stamp
    folders = {os.path.realpath(f) for f in {os.path.dirname(path) for path, _ in stamp.restore}}
    if any(not (f + os.sep).startswith(output + os.sep) for f in folders):
        return False  # a folder now leads elsewhere (a symlink): the normal run refuses it
    try:  # one after another: four threads measured 40 % slower (interpreter lock)
        for path, digest in stamp.restore:
            place_file(f"{cache_root}/objects/{digest[:2]}/{digest}", path, sha256=digest,
                       link=options.link == "hardlink")
    except (CacheError, OSError):
        return False
    for path, digest in stamp.restore:
        stamp.record(path, sha256=digest, object_of=True)
    with contextlib.suppress(OSError):
        stamp.write(target)
    return True


def _report_unchanged(path: Path, stamp: Any, options: RunOptions, reporter: Any, *,
                      job_summary: bool = True) -> Any:
    from ..run.reporting import append_step_summary
    from ..run.results import RunResult, StepResult

    started = time.monotonic()
    summary = stamp.summary
    reporter.run_started(str(path), len(stamp.instances),
                         options.concurrency or summary.get("concurrency", 1))
    shown = {name: display(stamp.path_of(summary[name])) if summary.get(name) else None
             for name in ("output_dir", "lock", "gallery")}
    result = RunResult(recipe=str(path), output_dir=shown["output_dir"],
                       lock_path=shown["lock"], gallery=shown["gallery"], mock=options.mock,
                       unit=summary.get("unit", "credits"))
    restored = len(stamp.restore)  # copied back by `_restore_from_stamp`
    if restored:
        reporter.note(f"restored {restored} file{'s' * (restored != 1)} from the cache")
    for item in stamp.instances:
        step = StepResult(item["id"], item["step"], item["endpoint"], "cached",
                          key=item.get("key"), credits=float(item.get("credits", 0)),
                          credits_estimated=bool(item.get("credits_estimated")),
                          unit=item.get("unit", result.unit))
        result.results.append(step)
        reporter.step_finished(step)
    result.elapsed = time.monotonic() - started
    reporter.run_finished(result)
    if job_summary:  # a CI job's page says an unchanged run was checked too
        append_step_summary(result)
    return result


def _uncached_costs(survey: list[Any], unit: str) -> dict[str, tuple[int, float]]:
    """Per step (in plan order): how many calls the run would make and their estimate, in
    the budget's unit (calls billed in another unit are not held against it)."""
    costs: dict[str, tuple[int, float]] = {}
    for item in survey:
        endpoint = item.instance.step.endpoint
        if item.state in ("cached", "skipped") or endpoint is None or endpoint.unit != unit:
            continue
        calls, cost = costs.get(item.instance.step_id, (0, 0.0))
        costs[item.instance.step_id] = (calls + 1, cost + endpoint.estimate_credits(
            item.call.params if item.call else {}))
    return costs


def _refuse_over_budget(plan: Any, by_step: dict[str, tuple[int, float]], *, estimate: float,
                        limit: float, unit: str, flag: str, stream: TextIO) -> None:
    """A budget is a ceiling: when the uncached work is estimated over it, call nothing,
    show what each step would cost and what would fit.

    Raises:
        BudgetExceeded: always.
    """
    from ..errors import BudgetExceeded
    from ..run.budget import steps_within

    costs = {step_id: cost for step_id, (_, cost) in by_step.items()}
    calls = {step_id: count for step_id, (count, _) in by_step.items()}
    width = max(map(len, costs), default=4)
    stream.write(f"the uncached work is estimated at ~{estimate:g} {unit}, over the budget "
                 f"of {limit:g} {unit} ({flag}):\n")
    for step_id, cost in costs.items():
        stream.write(f"  {step_id:<{width}}  {calls[step_id]} call"
                     f"{'s' * (calls[step_id] != 1)}  ~{cost:g} {unit}\n")
    fits = steps_within(costs, {s: set(plan.depends_on[s]) for s in costs}, limit)
    fitting = sum(costs[s] for s in fits)
    # --only brings a step's dependencies along: name only the steps nothing chosen needs
    fits = [s for s in fits if not any(s != t and s in plan.closure({t}) for t in fits)]
    hint = (f"within the budget: `{' '.join('--only ' + s for s in fits)}` (~{fitting:g} "
            f"{unit}); or raise {flag}" if fits else
            f"no step fits in {limit:g} {unit}: raise {flag}")
    raise BudgetExceeded(f"nothing was called: the run needs ~{estimate:g} {unit} and the "
                         f"budget is {limit:g} {unit}", hint=hint)


def _check_steps(plan: Any, names: tuple[str, ...], option: str) -> set[str]:
    import difflib

    from ..errors import UsageError

    known = list(plan.recipe.steps)
    for name in names:
        base = name.split("[")[0]
        if base not in plan.recipe.steps:
            close = difflib.get_close_matches(base, known, n=1)
            raise UsageError(f"{option} {name}: no step {base!r} in {plan.recipe.display}",
                             hint=f"did you mean {close[0]!r}?" if close else
                             "steps: " + ", ".join(known))
    return {name.split("[")[0] for name in names}


def _open_remote(root: Path, options: RunOptions, reporter: Any, cancel: Any) -> Any:
    """The local cache with the remote behind it; a remote that does not answer is a
    warning (the run goes on from the local cache), except under --frozen.

    Raises:
        FrozenError: --frozen, and the remote cannot be used.
    """
    from ..errors import FrozenError
    from ..store.remote import open_remote

    assert options.remote_cache is not None
    cache = open_remote(root, options.remote_cache, mode=options.remote_mode,
                        warn=lambda line: reporter.note(f"warning: {line}"),
                        threads=max(16, options.concurrency or 0), cancel=cancel)
    if not cache.available and options.frozen:
        raise FrozenError(f"--frozen: the remote cache {options.remote_cache} cannot be used: "
                          f"{cache.problem}", hint="check AWS_ENDPOINT_URL, the credentials "
                          "and the bucket, or run without --remote-cache")
    return cache


MOCK_KEY = "flowrunner-mock-key"


@contextlib.contextmanager
def _routes(profiles: list[Any], *, mock: bool, latency: float = 0.0,
            faults: tuple[str, ...] = ()) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """(route per profile, API key per profile) for the run. Under --mock, an in-process
    emulator per kind of provider (the gateway, Recraft's own API, BFL's) stands in."""
    from ..net.providers import Route, api_key_from_env

    if not mock:
        keys = {p.name: key for p in profiles if (key := api_key_from_env(p.api_key_env))}
        yield {p.name: Route(p.base_url, p.identity(mock=False)) for p in profiles}, keys
        return
    from ..emulator.server import running_emulator

    with contextlib.ExitStack() as stack:
        urls = {kind: stack.enter_context(running_emulator(kind=kind, latency=latency,
                                                           faults=list(faults)))
                for kind in sorted({p.kind for p in profiles})}
        yield ({p.name: Route(urls[p.kind], p.identity(mock=True)) for p in profiles},
               {p.name: MOCK_KEY for p in profiles})


@dataclasses.dataclass(slots=True)
class _Selection:
    """What the command line chose of the recipe's plan."""

    plan: Any
    selected: set[str]  # steps, with what they need
    only: set[str]  # steps named by --only
    only_instances: frozenset[str]  # `--only banner[size=1024x1024]`
    refresh: set[str]  # steps called again, with their dependents
    instances: list[Any]
    profiles: list[Any]  # provider profiles the chosen steps use
    output_dir: Path


def _select(path: Path, options: RunOptions) -> _Selection:
    """Load: parse the recipe with its overrides and resolve --only and --refresh.

    Raises:
        SpecError: the recipe is invalid. UsageError: a step or instance is unknown.
    """
    from ..recipe.spec import parse_var_overrides
    from ..run.planning import load_plan

    overrides = parse_var_overrides(list(options.var_pairs), list(options.vars_files))
    overrides.update(options.var_values)
    plan = load_plan(path, var_overrides=overrides)
    recipe = plan.recipe
    only = _check_steps(plan, options.only, "--only")
    only_instances = _check_instances(plan, options.only)
    refresh = set(_check_steps(plan, options.refresh, "--refresh"))
    for step_id in set(refresh):
        refresh |= plan.dependents(step_id)
    selected = plan.closure(only) if only else set(plan.step_order)
    narrowed = {name.split("[")[0] for name in only_instances}
    instances = [i for i in plan.instances if i.step_id in selected and not (
        i.step_id in narrowed and i.id not in only_instances)]
    profiles = sorted({recipe.provider_of(recipe.steps[s]) for s in selected} |
                      {recipe.default_provider}, key=lambda p: p.name)
    output_dir = options.output_dir.resolve() if options.output_dir else recipe.output_dir
    return _Selection(plan, selected, only, only_instances, refresh, instances, profiles,
                      output_dir)


def _check_instances(plan: Any, names: tuple[str, ...]) -> frozenset[str]:
    """The `step[…]` names of --only, each an instance of the plan.

    Raises:
        UsageError: no such instance.
    """
    import difflib

    from ..errors import UsageError

    only_instances = frozenset(name for name in names if "[" in name)
    for name in sorted(only_instances):
        ids = [i.id for i in plan.by_step[name.split("[")[0]]]
        if name not in ids:
            close = difflib.get_close_matches(name, ids, n=1)
            raise UsageError(f"--only {name}: no such instance",
                             hint=f"did you mean {close[0]!r}?" if close else
                             "instances: " + ", ".join(ids))
    return only_instances


def _make_reporter(options: RunOptions, stream: TextIO,
                   listener: Callable[[Any], None] | None = None) -> Any:
    from ..run.reporting import CallbackReporter, JsonReporter, TextReporter

    if listener is not None:
        return CallbackReporter(listener)
    if options.as_json:
        return JsonReporter(stream)
    live = stream.isatty() and os.environ.get("TERM") != "dumb"
    return TextReporter(stream, live=live, verbosity=options.verbosity,
                        annotate=os.environ.get("GITHUB_ACTIONS") == "true")


def _open_cache(recipe: Any, options: RunOptions, reporter: Any, cancel: Any,
                scratch: Path | None) -> Any:
    """The run's cache: a scratch one under --no-cache, the remote behind the local one
    under --remote-cache, else the local one.

    Raises:
        UsageError: --shard without a remote cache. FrozenError: see `_open_remote`.
    """
    from ..errors import UsageError
    from ..store.cache import Cache

    if options.shard and not options.remote_cache:
        raise UsageError(f"--shard {options.shard}: shards share their results through a "
                         "remote cache", hint="add --remote-cache s3://BUCKET/PREFIX (or set "
                                              "FLOW_REMOTE_CACHE) on every shard")
    if scratch is not None:
        if options.remote_cache:
            reporter.note("--no-cache: the remote cache is neither read nor written either")
        return Cache(scratch, readable=False, writable=False, cancel=cancel)
    root = cache_root_for(recipe.path, options.cache_dir)
    if options.remote_cache:
        return _open_remote(root, options, reporter, cancel)
    return Cache(root, cancel=cancel)


def _survey(chosen: _Selection, cache: Any, options: RunOptions) -> list[Any]:
    """Survey: what the cache holds of the chosen instances, when anything depends on it
    before the run (--frozen, a key to check, a budget, a remote cache). Makes no request.

    Raises:
        FrozenError: --frozen and some are not cached. UsageError: a key is missing.
    """
    from ..run.survey import survey_plan

    recipe = chosen.plan.recipe
    budget_given = options.max_credits is not None or recipe.budget is not None
    if not (options.frozen or not options.mock or budget_given or options.remote_cache):
        return []
    survey = survey_plan(chosen.plan, cache=cache, mock=options.mock,
                         selected=chosen.selected, refresh=chosen.refresh,
                         allowed=options.allow_paths)
    if chosen.only_instances:
        wanted = {i.id for i in chosen.instances}
        survey = [s for s in survey if s.instance.id in wanted]
    to_call = [s for s in survey if s.state not in ("cached", "skipped")]
    if options.frozen and to_call:
        from ..errors import FrozenError

        names = ", ".join(s.instance.id for s in to_call[:8]) + \
            (f" and {len(to_call) - 8} more" if len(to_call) > 8 else "")
        raise FrozenError(f"--frozen: {len(to_call)} instance(s) are not in the cache: {names}",
                          hint="run `flow run` without --frozen to make them (and commit "
                               "the lock file), or restore the cache")
    if not options.dry_run and not options.mock:
        _check_keys(chosen.profiles, to_call)
    return survey


def _check_keys(profiles: list[Any], to_call: list[Any]) -> None:
    """Raises: UsageError: a provider some instance must call has no API key set."""
    from ..errors import UsageError
    from ..net.providers import api_key_from_env

    remote = [s for s in to_call
              if not (s.instance.step.endpoint and s.instance.step.endpoint.local)]
    for profile in profiles:
        needing = [s for s in remote if s.instance.step.provider == profile.name]
        if needing and api_key_from_env(profile.api_key_env) is None:
            raise UsageError(f"the environment variable {profile.api_key_env} is not set, "
                             f"and {len(needing)} instance(s) need a call"
                             + (f" through provider {profile.name!r}"
                                if profile.name != "default" else ""),
                             hint=f"export {profile.api_key_env}=<your key>, or try the "
                                  "recipe offline with --mock")


@dataclasses.dataclass(frozen=True, slots=True)
class _Spend:
    """The run's budget: its limit, unit, and the estimate of the calls to make."""

    limit: float | None
    unit: str
    estimate: float


def _check_budget(chosen: _Selection, survey: list[Any], options: RunOptions,
                  stream: TextIO) -> _Spend:
    """Budget: the uncached work's estimate against the limit; over it, nothing is called.

    Raises:
        BudgetExceeded: over the limit (a dry run only says so).
    """
    from ..catalog.entries import CREDIT_UNITS

    recipe = chosen.plan.recipe
    limit = options.max_credits if options.max_credits is not None else recipe.budget
    unit = CREDIT_UNITS.get(recipe.default_provider.kind, "credits")
    by_step = _uncached_costs(survey, unit)
    estimate = sum(cost for _, cost in by_step.values())
    if limit is not None and estimate > limit and not options.dry_run:
        _refuse_over_budget(chosen.plan, by_step, estimate=estimate, limit=limit, unit=unit,
                            flag="--max-credits" if options.max_credits is not None
                            else "budget:", stream=stream)
    return _Spend(limit, unit, estimate)


def _lock_keeper(chosen: _Selection, cache: Any, options: RunOptions) -> Any:
    """The lock file's keeper (none for a dry run or a shard, which write no lock file)."""
    if options.dry_run or options.shard:
        return None
    from ..kit.lockfile import lock_path_for
    from ..kit.sidecars import LockKeeper

    recipe = chosen.plan.recipe
    return LockKeeper(
        lock_path_for(recipe.path), recipe_name=recipe.path.name,
        provider=recipe.default_provider.identity(mock=False), recipe_folder=recipe.folder,
        output_dir=chosen.output_dir, mock=options.mock, overrides=recipe.var_overrides,
        memo=cache.root / "parsed" if cache.writable else None)


def _client_factory(profiles: list[Any], keys: dict[str, str], *, concurrency: int,
                    options: RunOptions, cancel: Any) -> Callable[[], Any]:
    """Makes the run's HTTP client: the environment's proxies and CA roots (the local
    emulator is always direct), one throttle per provider profile.

    Raises:
        UsageError: a wrong proxy or CA setting, before anything is called.
    """
    from ..net.http import HttpClient
    from ..net.proxies import NetworkSettings
    from ..net.throttle import Throttle

    log = (lambda line: sys.stderr.write(f"  http: {line}\n")) \
        if options.verbosity >= 2 else None
    network = NetworkSettings.from_environment(proxies=not options.mock)

    def make_client() -> Any:
        return HttpClient(
            credentials={p.name: p.credential(keys[p.name]) for p in profiles
                         if p.name in keys},
            secrets=list(keys.values()), pool_size=concurrency, log=log, cancel=cancel,
            network=network,
            throttles={p.name: Throttle(concurrency, per_minute=p.rate_limit)
                       for p in profiles})

    return make_client


def _scheduler(chosen: _Selection, survey: list[Any], *, cache: Any, routes: dict[str, Any],
               make_client: Callable[[], Any], keeper: Any, reporter: Any, spend: _Spend,
               options: RunOptions, cancel: Any) -> Any:
    """Execute, set up: the scheduler with what the survey already knows."""
    concurrency = options.concurrency or chosen.plan.recipe.concurrency
    from ..net.slots import TaskSlots
    from ..run.budget import Budget
    from ..run.scheduler import Delivery, Means, Scheduler, Work

    plan = chosen.plan
    expected = frozenset(s.instance.id for s in survey
                         if s.state in ("missing", "blocked", "unknown"))
    # a run that will surely call makes its client now, not in the first worker
    client = make_client() if expected and not options.dry_run else None
    work = Work(plan, selected=chosen.selected, refresh=frozenset(chosen.refresh),
                only_instances=chosen.only_instances, expect_calls=expected,
                surveyed={s.instance.id: (s.call, s.entry) for s in survey
                          if s.state == "cached" and s.call and s.entry},
                prepared={s.instance.id: s.call for s in survey
                          if s.state == "missing" and s.call is not None
                          and not plan.depends_on[s.instance.step_id]},
                shard=options.shard)
    means = Means(cache, client=(lambda: client) if client else make_client, routes=routes,
                  concurrency=concurrency, budget=Budget(spend.limit, unit=spend.unit),
                  cancel=cancel, no_cache=options.no_cache, dry_run=options.dry_run,
                  allow_paths=options.allow_paths,
                  task_slots={p.name: TaskSlots(p.max_in_flight, cancel, name=p.name)
                              for p in chosen.profiles},
                  park=True)  # a running task holds no thread: one poller per run
    delivery = Delivery(chosen.output_dir, reporter, place=options.shard is None,
                        link=options.link == "hardlink",
                        on_finished=keeper.add if keeper is not None else None,
                        on_placing=keeper.intend if keeper is not None else None)
    return Scheduler(work, means, delivery)


def _execute(chosen: _Selection, survey: list[Any], *, cache: Any, keeper: Any,
             reporter: Any, spend: _Spend, options: RunOptions, cancel: Any,
             result: Any) -> Any:
    """Execute: run the chosen instances (under --mock, against in-process emulators).
    Returns the file digests the run read (for the stamp)."""
    recipe = chosen.plan.recipe
    concurrency = options.concurrency or recipe.concurrency
    with _routes(chosen.profiles, mock=options.mock, latency=options.mock_latency,
                 faults=options.mock_faults) as (routes, keys):
        make_client = _client_factory(chosen.profiles, keys, concurrency=concurrency,
                                      options=options, cancel=cancel)
        if cache.writable:
            cache.ensure()
        scheduler = _scheduler(chosen, survey, cache=cache, routes=routes,
                               make_client=make_client, keeper=keeper, reporter=reporter,
                               spend=spend, options=options, cancel=cancel)
        survey.clear()  # its calls and entries live on in the scheduler; the rest can go
        try:
            reporter.run_started(recipe.display, len(chosen.instances), concurrency)
            for line in keeper.problems if keeper is not None else []:
                reporter.note(f"warning: {line}")
            for warning in chosen.plan.warnings:  # a model that shuts down soon
                reporter.note(f"{warning.location}: warning: {warning.message}")
            if spend.limit is not None and spend.estimate > spend.limit:  # a dry run
                reporter.note(f"the calls to make are estimated at ~{spend.estimate:g} "
                              f"{spend.unit}, over the budget of {spend.limit:g} "
                              f"{spend.unit}: a run would call nothing")
            scheduler.run(result)
        finally:
            scheduler.close()
            cache.close()
            reporter.flush()
    return scheduler.digests


def _write_kit(chosen: _Selection, result: Any, *, keeper: Any, cache: Any, digests: Any,
               options: RunOptions) -> None:
    """Write the kit: the lock file (every kind of run leaves it describing the files on
    disk; one that made the whole recipe writes exactly its entries), the gallery, and the
    stamp of a complete run."""
    from ..kit.sidecars import write_kit_gallery, write_stamp

    if keeper is None:
        return
    complete = result.ok and not chosen.only and not options.dry_run
    keeper.flush(complete=complete)
    if keeper.entries or keeper.path.exists():
        result.lock_path = display(keeper.path)
    known = {str(a.get("sha256")): (a.get("width"), a.get("height"))
             for item in result.results for a in item.artifacts}
    result.gallery = write_kit_gallery(chosen.plan, keeper.entries, chosen.output_dir,
                                       lock_name=keeper.path.name, dimensions=known)
    if complete and not options.no_cache:
        write_stamp(chosen.plan, result, options, cache=cache, inputs=digests.paths(),
                    lock_file=keeper.path, output_dir=chosen.output_dir,
                    concurrency=options.concurrency or chosen.plan.recipe.concurrency)


def _report(result: Any, *, cache: Any, reporter: Any, options: RunOptions,
            interrupted_by: int | None, summary: bool = True) -> None:
    """Report: what the remote did, the summary, the CI step summary.

    Raises:
        Interrupted: the run was stopped by Ctrl-C or SIGTERM.
    """
    from ..errors import Interrupted
    from ..run.reporting import append_step_summary

    if options.remote_cache:  # what the remote did: never silent
        from ..store.remote import RemoteCache  # (only then: a plain run never imports it)

        if isinstance(cache, RemoteCache):
            result.remote, result.remote_line = cache.report(), cache.summary()
            reporter.note(result.remote_line)
    reporter.run_finished(result)
    if summary:  # the command line's, in a CI job (a Python caller prints nothing)
        append_step_summary(result)
    if result.interrupted:
        # the summary above already said what was kept and how to resume: one short line
        raise Interrupted("stopped by " + ("SIGTERM" if interrupted_by == 15 else "Ctrl-C"),
                          signal_number=interrupted_by, hint=None)


def _run(path: Path, *, options: RunOptions, stream: TextIO, scratch: Path | None,
         signals: Any, listener: Callable[[Any], None] | None) -> Any:
    """The phases of a run that is not a no-op: load, open the cache, survey, budget,
    execute, write the kit, report."""
    from ..cancellation import Cancellation
    from ..run.results import RunResult

    started = time.monotonic()
    cancel = Cancellation()  # set on Ctrl-C: every wait in the run ends
    chosen = _select(path, options)
    reporter = _make_reporter(options, stream, listener)
    cache = _open_cache(chosen.plan.recipe, options, reporter, cancel, scratch)
    survey = _survey(chosen, cache, options)
    spend = _check_budget(chosen, survey, options, stream)
    result = RunResult(recipe=chosen.plan.recipe.display, unit=spend.unit, mock=options.mock,
                       dry_run=options.dry_run)
    keeper = _lock_keeper(chosen, cache, options)
    digests = _execute(chosen, survey, cache=cache, keeper=keeper, reporter=reporter,
                       spend=spend, options=options, cancel=cancel, result=result)
    result.elapsed = time.monotonic() - started
    result.output_dir = display(chosen.output_dir)
    _write_kit(chosen, result, keeper=keeper, cache=cache, digests=digests, options=options)
    _report(result, cache=cache, reporter=reporter, options=options,
            interrupted_by=signals.signal_number, summary=listener is None)
    return result
