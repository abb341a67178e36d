"""Turns a recipe into an execution plan: references → dependencies, matrix → instances, order.

Pure: no I/O. Unknown references and cycles are found here, before anything runs.
"""

from __future__ import annotations

import difflib
import heapq
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import Issue, Location
from .spec import Recipe, Step, check_save_path
from .templating import TemplateProblem, is_template, parse_template, render_value

STEP_FIELDS = ("outputs", "files", "response")


@dataclass(frozen=True, slots=True)
class Instance:
    """One concrete run of a step: the step plus one combination of matrix values."""

    id: str
    step: Step
    matrix: dict[str, Any]
    position: int

    @property
    def step_id(self) -> str:
        return self.step.id


@dataclass(frozen=True, slots=True)
class Plan:
    """Instances in a deterministic topological order, with step-level dependencies."""

    recipe: Recipe
    instances: tuple[Instance, ...]
    step_order: tuple[str, ...]
    depends_on: dict[str, tuple[str, ...]]
    by_step: dict[str, tuple[Instance, ...]]
    # parameters already rendered (those that read no step results), by instance id
    rendered: dict[str, dict[str, Any]] = field(default_factory=dict)
    # what is worth saying but does not stop a run (a model that shuts down soon)
    warnings: tuple[Issue, ...] = ()

    def dependents(self, step_id: str) -> set[str]:
        """Every step that depends on ``step_id``, directly or not."""
        found: set[str] = set()
        frontier = [step_id]
        while frontier:
            current = frontier.pop()
            for other, deps in self.depends_on.items():
                if current in deps and other not in found:
                    found.add(other)
                    frontier.append(other)
        return found

    def closure(self, step_ids: set[str]) -> set[str]:
        """The given steps and everything they need."""
        found: set[str] = set()
        frontier = list(step_ids)
        while frontier:
            current = frontier.pop()
            if current not in found:
                found.add(current)
                frontier.extend(self.depends_on.get(current, ()))
        return found


def instance_id(step_id: str, matrix: dict[str, Any]) -> str:
    if not matrix:
        return step_id
    parts = [f"{k}={v if isinstance(v, (str, int, float)) else json.dumps(v, sort_keys=True)}"
             for k, v in matrix.items()]
    return f"{step_id}[{','.join(parts)}]"


def _near(name: str, options: list[str]) -> str | None:
    close = difflib.get_close_matches(name, options, n=1)
    return close[0] if close else None


def _check_refs(recipe: Recipe, step: Step, issues: list[Issue]) -> set[str]:
    """Check every reference in the step's templates; return the steps it reads."""
    reads: set[str] = set()
    smap = recipe.source_map
    var_names = list(recipe.vars)
    for path, template in step.templates:
        field = path[2]
        where = smap.at(path)
        label = ".".join(str(p) for p in path)
        allowed = {"vars", "steps"}
        if step.matrix and field != "matrix":
            allowed.add("matrix")
        if field == "matrix":
            allowed = {"vars"}
        if field == "outputs":
            allowed.add("response")
        for ref in sorted(template.refs, key=lambda r: tuple(map(str, r))):
            root = ref[0]
            if root not in allowed:
                if root == "matrix" and not step.matrix:
                    hint = "only a step with a `matrix:` can read matrix values"
                elif root == "response":
                    hint = "`response` is readable only in `outputs:`"
                else:
                    near = _near(str(root), sorted(allowed))
                    hint = (f"did you mean {near!r}? " if near else "") + \
                        "templates can read " + ", ".join(sorted(allowed))
                issues.append(Issue(where, f"{label}: unknown name {root!r}", hint))
                continue
            if len(ref) < 2:
                if root == "steps":
                    issues.append(Issue(where, f"{label}: read a step by name, as steps.<id>",
                                        "dependencies are found from steps.<id> references"))
                continue
            name = ref[1]
            if root == "vars" and name not in recipe.vars:
                near = _near(str(name), var_names)
                issues.append(Issue(where, f"{label}: unknown variable {name!r}",
                                    f"did you mean {near!r}?" if near else
                                    "declare it under `vars:`"))
            elif root == "matrix" and name not in step.matrix:
                near = _near(str(name), list(step.matrix))
                issues.append(Issue(where, f"{label}: unknown matrix value {name!r}",
                                    f"did you mean {near!r}?" if near else
                                    "matrix values: " + ", ".join(step.matrix)))
            elif root == "steps":
                _check_step_ref(recipe, step, ref, where, label, issues, reads)
    return reads


def _check_step_ref(recipe: Recipe, step: Step, ref: tuple[str | int, ...], where: Location,
                    label: str, issues: list[Issue], reads: set[str]) -> None:
    name = str(ref[1])
    target = recipe.steps.get(name)
    if target is None:
        near = _near(name, list(recipe.steps))
        hint = (f"did you mean {near!r}? (defined at {recipe.steps[near].location})"
                if near else "steps: " + ", ".join(recipe.steps))
        issues.append(Issue(where, f"{label}: unknown step {name!r}", hint))
        return
    if name == step.id:
        issues.append(Issue(where, f"{label}: step {name!r} cannot read its own results",
                            "`outputs:` reads this step's answer as `response`"))
        return
    reads.add(name)
    rest = list(ref[2:])
    if target.matrix:
        if rest and isinstance(rest[0], int):
            rest = rest[1:]
        elif rest:
            issues.append(Issue(where, f"{label}: {name!r} is a matrix step, so steps.{name} is "
                                       "a list of instances",
                                f"pick one, as steps.{name}[0].{rest[0]}, or loop over them"))
            return
    if not rest:
        return
    if rest[0] not in STEP_FIELDS:
        near = _near(str(rest[0]), list(STEP_FIELDS))
        issues.append(Issue(where, f"{label}: a step has no {rest[0]!r}",
                            f"did you mean {near!r}?" if near else
                            "a step has outputs, files and response"))
        return
    # (a step whose endpoint is unknown has its own error: its outputs are unknown too)
    if rest[0] == "outputs" and len(rest) > 1 and target.endpoint is not None and \
            rest[1] not in target.output_names:
        near = _near(str(rest[1]), target.output_names)
        hint = (f"did you mean {near!r}? " if near else "") + \
            f"step {name!r} outputs: " + ", ".join(target.output_names)
        issues.append(Issue(where, f"{label}: step {name!r} has no output {rest[1]!r}", hint))


def _expand_matrix(recipe: Recipe, step: Step, issues: list[Issue]) -> list[dict[str, Any]]:
    axes: list[tuple[str, list[Any]]] = []
    for key, value in step.matrix.items():
        where = recipe.source_map.at(("steps", step.id, "matrix", key))
        if is_template(value):
            try:
                value = render_value(value, {"vars": recipe.vars})
            except TemplateProblem as exc:
                issues.append(Issue(where, f"steps.{step.id}.matrix.{key}: {exc.message}"))
                return []
        if not isinstance(value, list) or not value:
            issues.append(Issue(where, f"steps.{step.id}.matrix.{key}: expected a non-empty list",
                                "a matrix value is a list, or a template such as "
                                "{{ vars.sizes }} that gives one"))
            return []
        axes.append((key, value))
    if not axes:
        return [{}]
    names = [name for name, _ in axes]
    return [dict(zip(names, combo, strict=True))
            for combo in itertools.product(*(v for _, v in axes))]


def _find_cycle(depends_on: dict[str, tuple[str, ...]], order: dict[str, int]) -> tuple[str, ...]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> tuple[str, ...] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(depends_on.get(node, ()), key=order.__getitem__):
            if state.get(dep) == 1:
                return (*stack[stack.index(dep):], dep)
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(depends_on, key=order.__getitem__):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return ()


def _order_steps(recipe: Recipe, depends_on: dict[str, tuple[str, ...]],
                 issues: list[Issue]) -> tuple[str, ...]:
    """Kahn's algorithm; ties go to the step declared first, so plans are stable."""
    order = {step_id: step.index for step_id, step in recipe.steps.items()}
    waiting = {step_id: len(set(deps)) for step_id, deps in depends_on.items()}
    users: dict[str, list[str]] = {step_id: [] for step_id in depends_on}
    for step_id, deps in depends_on.items():
        for dep in set(deps):
            users[dep].append(step_id)
    ready = [(order[s], s) for s, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    result: list[str] = []
    while ready:
        _, step_id = heapq.heappop(ready)
        result.append(step_id)
        for user in users[step_id]:
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, (order[user], user))
    if len(result) < len(depends_on):
        cycle = _find_cycle(depends_on, order)
        if cycle:
            shown = " → ".join(cycle)
            issues.append(Issue(recipe.steps[cycle[0]].location,
                                f"steps form a cycle: {shown}",
                                "each arrow reads 'needs'; remove one reference or `needs` entry"))
    return tuple(result)


def _check_saves(recipe: Recipe, by_step: dict[str, tuple[Instance, ...]],
                 issues: list[Issue]) -> None:
    owners: dict[str, str] = {}
    for step_id, instances in by_step.items():
        step = recipe.steps[step_id]
        for position, target in enumerate(step.save):
            listed = ("steps", step_id, "save", position)
            path = listed if listed in recipe.source_map.values else ("steps", step_id, "save")
            where = recipe.source_map.at(path)
            try:
                template = parse_template(target) if is_template(target) else None
            except TemplateProblem:
                continue  # reported with its place by spec.py
            if template and any(ref[0] == "steps" for ref in template.refs):
                continue  # known only at run time; checked then
            for instance in instances:
                try:
                    rendered = template.render({"vars": recipe.vars, "matrix": instance.matrix}) \
                        if template else target
                except TemplateProblem as exc:
                    # an unknown name there is already reported, at this place, by the
                    # reference check; anything else (`vars.brand + 1`) is said here
                    if not any(issue.location == where for issue in issues):
                        issues.append(Issue(where, f"steps.{step_id}.save: {exc.message} "
                                                   f"(in {instance.id})",
                                            "a save path renders to a file name; check the "
                                            "template's expression"))
                    break
                rendered = str(rendered)
                problem = check_save_path(rendered)
                if problem:
                    issues.append(Issue(where, f"steps.{step_id}.save: {problem}",
                                        "save paths stay inside output_dir"))
                    break
                key = rendered.replace("\\", "/").strip("/")
                other = owners.get(key)
                if other is not None:
                    hint = ("put a matrix value in the path, e.g. banner-{{ matrix.size }}.png"
                            if other.split("[")[0] == step_id else
                            "give each step its own file name")
                    issues.append(Issue(where, f"steps.{step_id}.save: {rendered!r} is also "
                                               f"written by {other}", hint))
                    break
                owners[key] = instance.id


def build_plan(recipe: Recipe) -> tuple[Plan, list[Issue]]:
    """Check references, expand matrices and order the steps.

    Returns:
        (plan, issues): every unknown reference, bad matrix, save collision and cycle is an
        issue; the plan is usable only when the issues are empty.

    Example:
        steps ``a`` and ``b`` where b's template reads ``steps.a.files[0]``: b depends on a,
        and the plan orders a before b; ``a → b → a`` is reported when a also needs b.
    """
    issues: list[Issue] = []
    depends_on: dict[str, tuple[str, ...]] = {}
    for step in recipe.steps.values():
        reads = _check_refs(recipe, step, issues)
        needs = [n for n in step.needs if n in recipe.steps]
        ordered = sorted(set(needs) | reads, key=lambda s: recipe.steps[s].index)
        depends_on[step.id] = tuple(d for d in ordered if d != step.id)
        if step.id in step.needs:
            issues.append(Issue(step.location, f"steps form a cycle: {step.id} → {step.id}",
                                "a step cannot need itself"))
    step_order = _order_steps(recipe, depends_on, issues)
    by_step: dict[str, tuple[Instance, ...]] = {}
    for step in recipe.steps.values():
        combos = _expand_matrix(recipe, step, issues)
        instances = tuple(Instance(instance_id(step.id, combo), step, combo, i)
                          for i, combo in enumerate(combos))
        if len({inst.id for inst in instances}) < len(instances):
            issues.append(Issue(recipe.source_map.at(("steps", step.id, "matrix")),
                                f"steps.{step.id}.matrix: the same combination appears twice",
                                "remove the repeated value"))
            instances = tuple({inst.id: inst for inst in instances}.values())
        by_step[step.id] = instances
    _check_saves(recipe, by_step, issues)
    instances = tuple(inst for step_id in step_order for inst in by_step[step_id])
    plan = Plan(recipe=recipe, instances=instances, step_order=step_order,
                depends_on=depends_on, by_step=by_step)
    return plan, issues
