"""`flow plan`: instances in run order, their dependencies, parameters, cache state, cost."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from ..catalog.entries import CREDIT_UNITS
from ..kit.stamp import fresh_stamp
from ..recipe.graph import Plan
from ..recipe.spec import Step
from ..run.options import cache_root_for
from ..run.planning import known_params, load_plan
from ..run.survey import STATE_WORDS, Survey, survey_plan
from ..store.cache import Cache
from ..store.remote import inspection_cache

_TO_CALL = ("missing", "blocked", "unknown")  # the survey states a run would call


def _credit_history(cache: Cache) -> dict[tuple[str, str], float]:
    """Average credits per call of each endpoint at each provider, from the cache's results
    (each provider reports in its own unit)."""
    totals: dict[tuple[str, str], list[float]] = {}
    for _key, path in cache.iter_results():
        try:
            entry = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(entry, dict) and isinstance(entry.get("credits"), (int, float)):
            provider = str((entry.get("material") or {}).get("provider"))
            totals.setdefault((str(entry.get("endpoint")), provider), []).append(
                float(entry["credits"]))
    return {key: sum(v) / len(v) for key, v in totals.items() if v}


def _with_defaults(step: Any, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with the entry's defaults the step leaves out (what will be sent)."""
    if step.endpoint is None:
        return params
    return {**step.endpoint.defaults_for(params), **params}


def _defaulted(step: Any, params: dict[str, Any]) -> set[str]:
    """The names in ``params`` the entry filled in: its defaults and those of the model
    ``params`` name, less what the step wrote (not what `resolve` or `wire` add)."""
    endpoint = step.endpoint
    if endpoint is None:
        return set()
    model = params.get(endpoint.model_param)
    own = endpoint.model_defaults.get(model, {}) if isinstance(model, str) else {}
    return (set(endpoint.defaults) | set(own)) - set(step.params)


def _shown(value: Any) -> str:
    """One parameter's value on one plan line: text as is, files by digest, the rest as
    JSON; cut at 90 characters."""
    if isinstance(value, dict) and set(value) == {"sha256"}:
        value = f"file sha256:{value['sha256'][:12]}"
    elif isinstance(value, list) and value and all(
            isinstance(v, dict) and set(v) == {"sha256"} for v in value):
        value = ", ".join(f"file sha256:{v['sha256'][:12]}" for v in value)
    shown = value if isinstance(value, str) else json.dumps(value)
    return shown if len(shown) <= 90 else shown[:89] + "…"


def _estimate(item: Survey, history: dict[tuple[str, str], float], plan: Plan,
              identities: dict[str, str]) -> float:
    step = item.instance.step
    if step.endpoint is None:
        return 0.0
    known = (step.endpoint.id, identities[step.id])
    if known in history:
        return history[known]
    if not step.endpoint.priced_by_params:
        return step.endpoint.price_each
    params = item.call.params if item.call else known_params(plan, item.instance.matrix,
                                                              step.params)
    return step.endpoint.estimate_credits({k: v for k, v in params.items()
                                           if not isinstance(v, str) or "{{" not in v})


def show_plan(path: Path, *, var_overrides: dict[str, Any], cache_dir: Path | None, mock: bool,
              as_json: bool, out: TextIO, remote_cache: str | None = None,
              stamp_context: dict[str, Any] | None = None) -> int:
    """`flow plan`: instances in run order, their dependencies, parameters, cache state, cost.

    With ``stamp_context`` (what `flow run` with the same options would stamp), results a
    fresh run stamp vouches for are known cached without reading their entries."""
    plan, rows, default_unit = plan_rows(path, var_overrides=var_overrides,
                                         cache_dir=cache_dir, mock=mock, as_json=as_json,
                                         remote_cache=remote_cache,
                                         stamp_context=stamp_context)
    recipe = plan.recipe
    by_unit = _credits_to_call(rows)
    to_call = sum(row["state"] in _TO_CALL for row in rows)
    cached = sum(row["state"] == "cached" for row in rows)
    estimate = " + ".join(f"~{v:g} {u}" for u, v in by_unit.items()) or f"~0 {default_unit}"
    if as_json:
        json.dump({"recipe": recipe.display, "limits": limits(plan), "instances": rows,
                   "to_call": to_call,
                   "cached": cached, "estimated_credits": sum(by_unit.values()),
                   "estimated_by_unit": by_unit}, out, indent=2, default=str)
        out.write("\n")
        return 0
    _write_plan(plan, rows, out,
                total=f"\n{cached} cached, {to_call} to call, {estimate} estimated\n")
    return 0


def plan_rows(path: Path, *, var_overrides: dict[str, Any], cache_dir: Path | None,
              mock: bool, as_json: bool = False, remote_cache: str | None = None,
              stamp_context: dict[str, Any] | None = None
              ) -> tuple[Plan, list[dict[str, Any]], str]:
    """(the plan, one row per instance in run order, the default credit unit); the
    recipe's warnings go to stderr. Calls nothing."""
    plan = load_plan(path, var_overrides=var_overrides)
    for warning in plan.warnings:  # a model that shuts down soon
        sys.stderr.write(warning.format() + "\n")
    recipe = plan.recipe
    root = cache_root_for(plan.recipe.path, cache_dir)
    cache = inspection_cache(root, remote_cache)
    known = _stamped(recipe.path, root, stamp_context)
    survey = survey_plan(plan, cache=cache, mock=mock, known=known)
    default_unit = CREDIT_UNITS.get(recipe.default_provider.kind, "credits")
    rows = _plan_rows(plan, survey, cache=cache, mock=mock, as_json=as_json,
                      default_unit=default_unit)
    return plan, rows, default_unit


def _stamped(recipe_path: Path, root: Path, stamp_context: dict[str, Any] | None
             ) -> dict[str, tuple[str, float]] | None:
    """The cache key and credits of each instance a fresh run stamp vouches for, or None
    when there is no such stamp (or no ``stamp_context`` to find it by)."""
    stamp = fresh_stamp(recipe_path, root, stamp_context) if stamp_context else None
    return {str(item["id"]): (str(item.get("key")), float(item.get("credits", 0)))
            for item in stamp.instances} if stamp is not None else None


def _plan_rows(plan: Plan, survey: list[Survey], *, cache: Cache, mock: bool, as_json: bool,
               default_unit: str) -> list[dict[str, Any]]:
    """One row per surveyed instance, in run order: its state, needs, the parameters it
    will send, and its credits (spent, saved or estimated)."""
    recipe = plan.recipe
    history = _credit_history(cache) if any(s.state != "cached" for s in survey) else {}
    identities = {step_id: recipe.provider_of(step).identity(mock=mock)
                  for step_id, step in recipe.steps.items()}
    # per step: what every one of its instances shows alike
    units = {step_id: step.endpoint.unit if step.endpoint and not step.endpoint.local
             else default_unit for step_id, step in recipe.steps.items()}
    needs = {step_id: list(plan.depends_on[step_id]) for step_id in recipe.steps}
    rows: list[dict[str, Any]] = []
    for number, item in enumerate(survey, 1):
        step = item.instance.step
        credits = _credits(item, history, plan, identities)
        params = item.call.material["params"] if item.call else \
            _with_defaults(step, known_params(plan, item.instance.matrix, step.params))
        rows.append({"n": number, "instance": item.instance.id, "step": step.id,
                     "endpoint": step.uses, "state": item.state,
                     "needs": needs[step.id], "params": params,
                     "credits": credits, "unit": units[step.id],
                     "key": item.call.key if item.call and as_json else None,  # JSON only
                     "waits_for": item.waits_for,
                     "error": item.error.message if item.error else None})
    return rows


def _credits(item: Survey, history: dict[tuple[str, str], float], plan: Plan,
             identities: dict[str, str]) -> float:
    """An instance's credits: what it was charged (per the survey or its cache entry),
    else an estimate; none for a skipped one."""
    return item.credits if item.credits is not None else \
        float(item.entry.get("credits") or 0) if item.entry else \
        _estimate(item, history, plan, identities) if item.state not in ("skipped",) \
        else 0.0


def _credits_to_call(rows: list[dict[str, Any]]) -> dict[str, float]:
    """The credits the instances still to call would take, by unit (in order of first
    appearance)."""
    by_unit: dict[str, float] = {}
    for row in rows:
        if row["state"] in _TO_CALL:
            by_unit[row["unit"]] = by_unit.get(row["unit"], 0.0) + row["credits"]
    return by_unit


def limits(plan: Plan) -> dict[str, Any]:
    """The run's two limits: HTTP calls at once, and tasks in flight per provider profile
    (and per step where a step sets its own)."""
    recipe = plan.recipe
    return {"concurrency": recipe.concurrency,
            "max_in_flight": {name: profile.max_in_flight
                              for name, profile in sorted(recipe.providers.items())},
            "max_in_flight_steps": {s.id: s.max_in_flight for s in recipe.steps.values()
                                    if s.max_in_flight},
            "max_in_flight_families": {
                f"{s.provider}/{s.uses.split('.')[0]}": cap for s in recipe.steps.values()
                if s.endpoint is not None
                and (cap := s.endpoint.max_in_flight.get(recipe.provider_of(s).kind))}}


def _limits_line(plan: Plan) -> str:
    found = limits(plan)
    tasks = ", ".join(f"{name} {limit or 'no limit'}"
                      for name, limit in found["max_in_flight"].items())
    steps = ", ".join([f"step {s} {n}" for s, n in found["max_in_flight_steps"].items()]
                      + [f"{family} {n} (the provider's)"
                         for family, n in found["max_in_flight_families"].items()])
    return (f"limits: {found['concurrency']} HTTP calls at once (concurrency); tasks in "
            f"flight: {tasks}{'; ' + steps if steps else ''}\n")


def _write_plan(plan: Plan, rows: list[dict[str, Any]], out: TextIO, *, total: str) -> None:
    """Write the plan as text: a heading, each row's lines, then ``total``."""
    recipe = plan.recipe
    lines = [f"plan for {recipe.display}: {len(rows)} instances in {len(plan.step_order)} "
             f"steps\n", _limits_line(plan)]
    width = max(len(r["instance"]) for r in rows) if rows else 10
    for row in rows:
        lines.extend(_row_lines(row, recipe.steps[row["step"]], width))
        if len(lines) > 4096:  # written in blocks: few writes, little memory
            out.write("".join(lines))
            lines.clear()
    lines.append(total)
    out.write("".join(lines))


def _row_lines(row: dict[str, Any], step: Step, width: int) -> list[str]:
    """One row's lines: the instance with its state and cost, then its needs, parameters
    and error."""
    word = STATE_WORDS[row["state"]]
    cost = f"~{row['credits']:g} {row['unit']}" if row["state"] != "cached" else \
        f"{row['credits']:g} {row['unit']} saved"
    lines = [f"{row['n']:>4}. {row['instance']:<{width}}  {row['endpoint']:<26} "
             f"{word:<10} {cost}\n"]
    if row["needs"]:
        lines.append(f"      needs: {', '.join(row['needs'])}\n")
    # parameters the entry fills in (a pinned model): shown, and said to be defaults, so
    # a default that changes in a new release shows up as a change
    defaulted = _defaulted(step, row["params"])
    for name, value in row["params"].items():
        mark = " (default)" if name in defaulted else ""
        lines.append(f"      {name}: {_shown(value)}{mark}\n")
    if row["error"]:
        lines.append(f"      error: {row['error']}\n")
    return lines
