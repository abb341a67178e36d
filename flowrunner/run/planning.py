"""Recipe → Plan: load, check everything that can be checked before a call, and build the
Plan whole (with the parameters rendered while checking). Never calls anything.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from .._json import canonical_json
from ..catalog.entries import Endpoint
from ..errors import Issue, SpecError
from ..recipe.graph import Instance, Plan, build_plan
from ..recipe.schema import check_params, no_save_problem
from ..recipe.source import PathKey, SourceMap
from ..recipe.spec import Step, load_recipe
from ..recipe.templating import TemplateProblem, is_template, parse_template, render_value


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
    warnings: list[Issue] = []
    if not issues:
        for found in [*model_issues(plan, rendered), *caveat_issues(plan),
                      *_no_save_issues(plan, rendered)]:
            (issues if found.severity == "error" else warnings).append(found)
    if issues:
        raise SpecError(_dedupe(issues))
    return dataclasses.replace(plan, rendered=rendered, warnings=tuple(_dedupe(warnings)))


def model_issues(plan: Plan, rendered: dict[str, dict[str, Any]]) -> list[Issue]:
    """A retired model (an error) or one that shuts down soon (a warning), for each step
    that names one or leaves its entry's default (`catalog/models.py`), located at the model
    parameter (or at `uses` for a default)."""
    from ..catalog.models import today

    on = today()
    smap = plan.recipe.source_map
    found: list[Issue] = []
    for step_id in plan.step_order:
        step = plan.recipe.steps[step_id]
        endpoint = step.endpoint
        route = endpoint.lifecycle.problem(on) if endpoint and endpoint.lifecycle else None
        if route is not None:  # the route itself (a provider API shut down, or soon)
            severity, message, hint = route
            found.append(Issue(smap.at(("steps", step_id, "uses")),
                               f"steps.{step_id}.uses: {message}", hint, severity=severity))
            if severity == "error":
                continue  # its models do not matter any more
        if endpoint is None or not endpoint.models:
            continue
        param = endpoint.model_param
        names = {str(rendered[i.id].get(param)) for i in plan.by_step[step_id]
                 if i.id in rendered} or {str(step.params.get(param, endpoint.defaults.get(
                     param, "")))}
        for name in sorted(names):
            model = endpoint.models.get(name)
            problem = model.problem(on) if model is not None else None
            if problem is None:
                continue
            severity, message, hint = problem
            given = param in step.params
            where = smap.at(("steps", step_id, "with", param) if given
                            else ("steps", step_id, "uses"))
            label = f"steps.{step_id}.with.{param}" if given else \
                f"steps.{step_id}: {endpoint.id}'s default {param}"
            found.append(Issue(where, f"{label}: {message}", hint, severity=severity))
    return found


def caveat_issues(plan: Plan) -> list[Issue]:
    """A warning for each parameter a step gives that its provider may drop on the way
    (the entry's `caveats`: a gateway that rebuilds the body), at that parameter."""
    smap = plan.recipe.source_map
    found: list[Issue] = []
    for step_id in plan.step_order:
        step = plan.recipe.steps[step_id]
        if step.endpoint is None or not step.endpoint.caveats:
            continue
        for name in sorted(set(step.params) & set(step.endpoint.caveats)):
            found.append(Issue(smap.at(("steps", step_id, "with", name)),
                               f"steps.{step_id}.with.{name}: may never reach the provider",
                               step.endpoint.caveats[name], severity="warning"))
    return found


def _no_save_issues(plan: Plan, rendered: dict[str, dict[str, Any]]) -> list[Issue]:
    """A step that saves, whose parameters rendered from `vars` or `matrix` never give
    files (the entry's `no_save`); literal ones were refused with the recipe."""
    found: list[Issue] = []
    for step_id in plan.step_order:
        step = plan.recipe.steps[step_id]
        if step.endpoint is None or step.endpoint.no_save is None or not step.save:
            continue
        for instance in plan.by_step[step_id]:
            never = no_save_problem(step.endpoint, rendered.get(instance.id, {}))
            if never is not None:
                hint = never[1].replace("<this step>", step_id) if never[1] else None
                found.append(Issue(plan.recipe.source_map.at(("steps", step_id, "save")),
                                   f"steps.{step_id}.save: {never[0]} (in {instance.id})",
                                   hint))
                break
    return found


def _render_known_params(plan: Plan, rendered: dict[str, dict[str, Any]]) -> list[Issue]:
    """Render the parameters that need no step results, check each distinct set once, and
    keep them (into ``rendered``) so the run does not render or check them again.

    Parameters that read `steps.*` are rendered and checked at run time, before the call.
    """
    issues: list[Issue] = []
    for step_id in plan.step_order:
        step = plan.recipe.steps[step_id]
        if step.endpoint is None:
            continue
        templated = [(path, template) for path, template in step.templates
                     if path[2] == "with"]
        if not templated:
            params = step.endpoint.with_defaults(step.params)
            for instance in plan.by_step[step_id]:
                rendered[instance.id] = params
            continue
        if any(ref[0] == "steps" for _, template in templated for ref in template.refs):
            continue
        issues.extend(_render_matrix_step(plan, step_id, templated, rendered))
    return issues


def _render_matrix_step(plan: Plan, step_id: str,
                        templated: list[tuple[tuple[Any, ...], Any]],
                        rendered: dict[str, dict[str, Any]]) -> list[Issue]:
    """Render and check one step's parameters for each of its instances.

    The top-level parameters whose templates read only `vars` (or none) are the same in
    every instance: rendered once, and checked with the first instance. Each further
    instance renders and checks only the parameters that vary (those reading `matrix`):
    a batch of 100,000 instances then checks its constant parameters and rules once, not
    100,000 times. Any problem in the first instance, or a `with:` that is one template,
    checks every instance whole instead.
    """
    step = plan.recipe.steps[step_id]
    endpoint = step.endpoint
    assert endpoint is not None
    smap = plan.recipe.source_map
    instances = plan.by_step[step_id]
    whole, varying = _varying_params(endpoint, templated)
    try:  # the parameters that do not vary, once
        constant: dict[str, Any] = {} if whole else render_value(
            {k: v for k, v in step.params.items() if k not in varying},
            {"vars": plan.recipe.vars, "matrix": {}})
    except TemplateProblem as exc:
        return [_template_issue(smap, step_id, instances[0].id, exc)]
    issues: list[Issue] = []
    partial = False  # the first instance passed whole: the rest check what varies
    seen: set[str] = set()
    for instance in instances:
        try:
            params = _instance_params(plan, step, endpoint, instance, whole, varying, constant)
        except TemplateProblem as exc:
            issues.append(_template_issue(smap, step_id, instance.id, exc))
            break
        rendered[instance.id] = params
        if partial:
            problems = check_params(endpoint, params, varying=varying)
        else:
            canonical = canonical_json(params)
            if canonical in seen:
                continue
            seen.add(canonical)
            problems = check_params(endpoint, params)
            partial = not problems and not whole
        if problems:
            issues.extend(_param_issues(smap, step_id, instance.id, problems))
    return issues


def _varying_params(endpoint: Endpoint, templated: list[tuple[tuple[Any, ...], Any]]
                    ) -> tuple[bool, frozenset[str]]:
    """Whether a step's parameters are rendered whole for each instance (a `with:` that is
    one template), and else the top-level ones that vary between instances: those whose
    templates read more than `vars`, and a varying model's defaults."""
    whole = any(len(path) <= 3 for path, _ in templated)
    varying: frozenset[str] = frozenset() if whole else frozenset(
        path[3] for path, template in templated
        if any(ref[0] != "vars" for ref in template.refs))
    if endpoint.model_param in varying:  # each model brings its own defaults
        varying |= {name for values in endpoint.model_defaults.values() for name in values}
    return whole, varying


def _instance_params(plan: Plan, step: Step, endpoint: Endpoint, instance: Instance,
                     whole: bool, varying: frozenset[str],
                     constant: dict[str, Any]) -> dict[str, Any]:
    """One instance's parameters, the entry's defaults filled in: rendered whole, or only
    the varying ones rendered beside the ``constant`` ones rendered once for the step.

    Raises:
        TemplateProblem: a template fails to render.
    """
    context = {"vars": plan.recipe.vars, "matrix": instance.matrix}
    if whole:
        return endpoint.with_defaults(render_value(step.params, context))
    return endpoint.with_defaults(
        {k: render_value(v, context) if k in varying else constant[k]
         for k, v in step.params.items()})


def _template_issue(smap: SourceMap, step_id: str, instance_id: str,
                    exc: TemplateProblem) -> Issue:
    """A template of a step's `with:` that fails to render in one instance, at its place."""
    path = ("steps", step_id, "with", *exc.path)
    return Issue(smap.at(path), f"{'.'.join(map(str, path[1:]))}: "
                                f"{exc.message} (in {instance_id})")


def _param_issues(smap: SourceMap, step_id: str, instance_id: str,
                  problems: list[tuple[PathKey, str, str | None]]) -> list[Issue]:
    """One instance's parameters' problems with the endpoint schema, each at its parameter."""
    found: list[Issue] = []
    for where_path, message, hint in problems:
        where = smap.at(("steps", step_id, "with", *where_path))
        label = ".".join(map(str, (step_id, "with", *where_path)))
        found.append(Issue(where, f"steps.{label}: {message} (in {instance_id})", hint))
    return found


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
