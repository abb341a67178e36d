"""What the cache already knows about a plan, without any request.

Walks the instances in order, rendering each with its upstream results taken from the
cache: each is `cached`, `missing` (would call), `blocked` (waits for an upstream call),
`skipped` (its condition is false), `unknown` (an input is a URL) or `error` (rendering
failed). Used by `--frozen`, `flow plan`, `flow status`, `flow why` and the key check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..call.context import condition_holds, render_context, step_view
from ..call.inputs import FileDigests
from ..call.preparation import PreparedCall, prepare_call
from ..errors import RenderFailed, RunError
from ..recipe.graph import Instance, Plan
from ..records import CacheEntry
from ..store.cache import Cache

State = Literal["cached", "missing", "blocked", "skipped", "unknown", "error"]
STATE_WORDS = {"cached": "cached", "missing": "will call", "blocked": "will call",
               "skipped": "skipped", "unknown": "will call", "error": "error"}


@dataclass(slots=True)
class Survey:
    """What the cache says of one instance (and the prepared call, when it could be made)."""

    instance: Instance
    state: State
    call: PreparedCall | None = None
    entry: CacheEntry | None = None
    waits_for: str | None = None
    error: RunError | None = None
    credits: float | None = None  # a cached instance's, when known without its entry


def survey_plan(plan: Plan, *, cache: Cache, mock: bool, selected: set[str] | None = None,
                refresh: frozenset[str] | set[str] = frozenset(),
                allowed: tuple[Path, ...] = (),
                known: dict[str, tuple[str, float]] | None = None) -> list[Survey]:
    """Survey every (selected) instance against the cache. Makes no request.

    ``mock`` says whose results count: the emulator's (`--mock` runs) or the providers'.
    ``known``: instance id → (key, credits) of results known to be whole in the cache (a
    fresh run stamp's); an instance of a step nothing else reads whose key matches is
    cached without reading its entry (`flow plan` of 100,000 cached instances).
    """
    recipe = plan.recipe
    digests = FileDigests()
    views: dict[str, Any] = {}
    unresolved: dict[str, str] = {}  # step id → the step it is blocked on
    found: list[Survey] = []
    read_by_others = {d for step_id in plan.step_order for d in plan.depends_on[step_id]}
    for step_id in plan.step_order:
        if selected is not None and step_id not in selected:
            continue
        step = recipe.steps[step_id]
        blocker = next((unresolved[d] for d in plan.depends_on[step_id] if d in unresolved), None)
        identity = recipe.provider_of(step).identity(mock=mock)
        prepared = _prepare_step(plan, step_id, views, blocker, provider=identity, cache=cache,
                                 digests=digests, allowed=allowed)
        usable = step.cache and step_id not in refresh and not cache.holds_nothing()
        if usable and known and step_id not in read_by_others:
            _vouch(prepared, known)
        step_views = _look_up(prepared, cache, usable, found)
        if step_views is not None:
            # (empty for a step nothing reads whose entries the stamp vouched for)
            views[step_id] = step_views if step.matrix else (step_views or [{}])[0]
        else:
            unresolved[step_id] = blocker or step_id
    return found


def _prepare_step(plan: Plan, step_id: str, views: dict[str, Any], blocker: str | None, *,
                  provider: str, cache: Cache, digests: FileDigests,
                  allowed: tuple[Path, ...]) -> list[Survey]:
    """A step's instances, their calls made, not looked up: each `blocked`, `skipped`,
    `error`, `unknown` or (its call prepared) `missing`."""
    recipe = plan.recipe
    prepared: list[Survey] = []
    for instance in plan.by_step[step_id]:
        if blocker is not None:
            prepared.append(Survey(instance, "blocked", waits_for=blocker))
            continue
        context_views = {d: views[d] for d in plan.depends_on[step_id]}
        try:
            context = render_context(recipe, instance, context_views)
            if not condition_holds(recipe, instance, context):
                prepared.append(Survey(instance, "skipped"))
                continue
            call = prepare_call(recipe, instance, context_views, provider=provider,
                                cache=cache, digests=digests, allowed=allowed,
                                rendered=plan.rendered.get(instance.id))
        except RenderFailed as exc:
            prepared.append(Survey(instance, "error", error=exc))
            continue
        prepared.append(Survey(instance, "unknown") if call is None else
                        Survey(instance, "missing", call=call))
    return prepared


def _vouch(prepared: list[Survey], known: dict[str, tuple[str, float]]) -> None:
    """Mark `cached`, without reading their entries, the prepared instances whose key a
    fresh run stamp vouches for (``known``: instance id → (key, credits))."""
    for item in prepared:
        vouched = known.get(item.instance.id)
        if item.call is not None and vouched is not None and vouched[0] == item.call.key:
            item.state, item.credits = "cached", vouched[1]


def _look_up(prepared: list[Survey], cache: Cache, usable: bool,
             found: list[Survey]) -> list[Any] | None:
    """Look a step's `missing` instances up in the cache (when ``usable``: its results
    count), adding every instance to ``found``. Returns the views of the step's results
    when all its instances are cached, else None (the steps after it are blocked)."""
    step_views: list[Any] = []
    step_ok = True
    if usable:  # a shared cache fetches the step's results at once, not one by one
        cache.prefetch(item.call.key for item in prepared
                       if item.call is not None and item.state == "missing")
    for item in prepared:
        if item.state == "missing" and usable:
            assert item.call is not None
            item.entry = cache.get(item.call.key)
            if item.entry is not None:
                item.state = "cached"
                step_views.append(step_view(item.entry, cache))
        found.append(item)
        step_ok = step_ok and item.state == "cached"
    return step_views if step_ok else None
