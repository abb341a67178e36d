"""Recipe → Plan: load, check everything that can be checked before a call, and build the
Plan whole (with the parameters rendered while checking). Never calls anything.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ._json import canonical_json
from .errors import Issue, SpecError
from .graph import Plan, build_plan
from .schema import check_params
from .spec import load_recipe
from .templating import TemplateProblem, is_template, parse_template, render_value


def load_plan(path: Path, *, var_overrides: dict[str, Any] | None = None) -> Plan:
    """Load, check and plan a recipe file.

    Raises:
        SpecError: with every problem found, sorted by location.
        UsageError: a --var names no variable of the recipe.
    """
    recipe, issues = load_recipe(path, display=str(path), var_overrides=var_overrides)
    if recipe is None:
        raise SpecError(issues)
    plan, graph_issues = build_plan(recipe)
    issues.extend(graph_issues)
    rendered: dict[str, dict[str, Any]] = {}
    if not issues:
        issues.extend(_render_known_params(plan, rendered))
    if issues:
        raise SpecError(_dedupe(issues))
    return dataclasses.replace(plan, rendered=rendered)


def _render_known_params(plan: Plan, rendered: dict[str, dict[str, Any]]) -> list[Issue]:
    """Render the parameters that need no step results, check each distinct set once, and
    keep them (into ``rendered``) so the run does not render or check them again.

    Parameters that read `steps.*` are rendered and checked at run time, before the call.
    """
    issues: list[Issue] = []
    smap = plan.recipe.source_map
    for step_id in plan.step_order:
        step = plan.recipe.steps[step_id]
        if step.endpoint is None:
            continue
        templated = [template for path, template in step.templates if path[2] == "with"]
        if not templated:
            params = step.endpoint.with_defaults(step.params)
            for instance in plan.by_step[step_id]:
                rendered[instance.id] = params
            continue
        if any(ref[0] == "steps" for template in templated for ref in template.refs):
            continue
        seen: set[str] = set()
        for instance in plan.by_step[step_id]:
            context = {"vars": plan.recipe.vars, "matrix": instance.matrix}
            try:
                params = step.endpoint.with_defaults(render_value(step.params, context))
            except TemplateProblem as exc:
                path = ("steps", step_id, "with", *exc.path)
                issues.append(Issue(smap.at(path), f"{'.'.join(map(str, path[1:]))}: "
                                                   f"{exc.message} (in {instance.id})"))
                break
            rendered[instance.id] = params
            canonical = canonical_json(params)
            if canonical in seen:
                continue
            seen.add(canonical)
            for where_path, message, hint in check_params(step.endpoint, params):
                where = smap.at(("steps", step_id, "with", *where_path))
                label = ".".join(map(str, (step_id, "with", *where_path)))
                issues.append(Issue(where, f"steps.{label}: {message} (in {instance.id})", hint))
    return issues


def _dedupe(issues: list[Issue]) -> list[Issue]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for issue in issues:
        key = (issue.location, issue.message)
        if key not in seen:
            seen.add(key)
            out.append(issue)
    return out


def known_params(plan: Plan, instance_matrix: dict[str, Any], params: dict[str, Any]
                 ) -> dict[str, Any]:
    """Render what can be rendered before anything runs; step-dependent values stay templates."""
    context = {"vars": plan.recipe.vars, "matrix": instance_matrix}
    shown: dict[str, Any] = {}
    for key, value in params.items():
        if _reads_steps(value):
            shown[key] = value
            continue
        try:
            shown[key] = render_value(value, context)
        except TemplateProblem:
            shown[key] = value
    return shown


def _reads_steps(value: Any) -> bool:
    if isinstance(value, str):
        return is_template(value) and any(ref[0] == "steps" for ref in parse_template(value).refs)
    if isinstance(value, dict):
        return any(_reads_steps(v) for v in value.values())
    if isinstance(value, list):
        return any(_reads_steps(v) for v in value)
    return False
