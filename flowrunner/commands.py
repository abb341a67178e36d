"""The read-only commands: validate, plan, graph, endpoints, schema.

Each takes typed arguments and a stream, prints, and returns an exit status or raises a
FlowError; cli.py only parses and calls these.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TextIO

from .catalog import get_endpoint, load_catalog, recipe_schema
from .errors import Issue, SpecError
from .graph import Plan, build_plan
from .spec import load_recipe
from .templating import TemplateProblem, is_template, parse_template, render_value

MAX_SHOWN_ISSUES = 200


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
    if not issues:
        issues.extend(check_rendered_params(plan))
    if issues:
        raise SpecError(_dedupe(issues))
    return plan


def check_rendered_params(plan: Plan) -> list[Issue]:
    """Render the templated parameters that need no step results and check them now.

    Parameters that read `steps.*` are checked after rendering at run time, before the call.
    """
    from .schema import check_params

    issues: list[Issue] = []
    smap = plan.recipe.source_map
    for step_id in plan.step_order:
        step = plan.recipe.steps[step_id]
        if step.endpoint is None:
            continue
        templated = [path for path, template in step.templates if path[2] == "with"]
        if not templated:
            for instance in plan.by_step[step_id]:
                plan.rendered[instance.id] = step.params
            continue
        if any(ref[0] == "steps" for path, t in step.templates if path[2] == "with"
               for ref in t.refs):
            continue
        seen: set[str] = set()
        for instance in plan.by_step[step_id]:
            context = {"vars": plan.recipe.vars, "matrix": instance.matrix}
            try:
                params = render_value(step.params, context)
                plan.rendered[instance.id] = params
            except TemplateProblem as exc:
                path = ("steps", step_id, "with", *getattr(exc, "path", ()))
                issues.append(Issue(smap.at(path), f"{'.'.join(map(str, path[1:]))}: "
                                                   f"{exc.message} (in {instance.id})"))
                break
            canonical = json.dumps(params, sort_keys=True, default=str)
            if canonical in seen:
                continue
            seen.add(canonical)
            for path, message, hint in check_params(step.endpoint, params):
                where = smap.at(("steps", step_id, "with", *path))
                label = ".".join(map(str, (step_id, "with", *path)))
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


def format_issues(issues: list[Issue], *, limit: int = MAX_SHOWN_ISSUES) -> str:
    ordered = sorted(issues, key=Issue.sort_key)
    lines = [issue.format() for issue in ordered[:limit]]
    if len(ordered) > limit:
        lines.append(f"... and {len(ordered) - limit} more errors")
    return "\n".join(lines)


def validate_files(paths: list[Path], *, as_json: bool, out: TextIO, err: TextIO) -> int:
    """`flow validate`: check every file, print every problem; 0 when all are valid, else 3."""
    results = []
    failed = False
    for path in paths:
        try:
            plan = load_plan(path)
        except SpecError as exc:
            failed = True
            results.append({"file": str(path), "valid": False,
                            "errors": [i.to_json() for i in exc.issues]})
            if not as_json:
                print(format_issues(exc.issues), file=err)
                if os.environ.get("GITHUB_ACTIONS") == "true":
                    from .reporting import github_annotation

                    for issue in exc.issues:
                        print(github_annotation(str(issue.location), issue.message), file=out)
            continue
        results.append({"file": str(path), "valid": True, "errors": [],
                        "steps": len(plan.step_order), "instances": len(plan.instances)})
        if not as_json:
            print(f"{path}: ok ({len(plan.step_order)} steps, {len(plan.instances)} instances)",
                  file=out)
    if as_json:
        json.dump({"valid": not failed, "files": results}, out, indent=2)
        out.write("\n")
    elif failed:
        count = sum(len(r["errors"]) for r in results)  # type: ignore[arg-type]
        bad = sum(1 for r in results if not r["valid"])
        print(f"{count} error{'s' * (count != 1)} in {bad} file{'s' * (bad != 1)}", file=err)
    return 3 if failed else 0


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


def _short(value: Any, width: int = 70) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def show_graph(path: Path, *, fmt: str, out: TextIO,
               var_overrides: dict[str, Any] | None = None) -> int:
    """`flow graph`: the step graph as Mermaid or Graphviz dot."""
    plan = load_plan(path, var_overrides=var_overrides)
    steps = plan.recipe.steps
    lines: list[str] = []
    if fmt == "mermaid":
        lines.append("flowchart LR")
        for step_id in plan.step_order:
            count = len(plan.by_step[step_id])
            label = f"{step_id}<br/><small>{steps[step_id].uses}" + \
                (f" ×{count}" if steps[step_id].matrix else "") + "</small>"
            lines.append(f'  {step_id}["{label}"]')
        for step_id in plan.step_order:
            for dep in plan.depends_on[step_id]:
                lines.append(f"  {dep} --> {step_id}")
    else:
        lines.append(f'digraph "{plan.recipe.name}" {{')
        lines.append("  rankdir=LR;")
        lines.append("  node [shape=box, fontname=Helvetica];")
        for step_id in plan.step_order:
            count = len(plan.by_step[step_id])
            label = f"{step_id}\\n{steps[step_id].uses}" + \
                (f" ×{count}" if steps[step_id].matrix else "")
            lines.append(f'  "{step_id}" [label="{label}"];')
        for step_id in plan.step_order:
            for dep in plan.depends_on[step_id]:
                lines.append(f'  "{dep}" -> "{step_id}";')
        lines.append("}")
    out.write("\n".join(lines) + "\n")
    return 0


def show_endpoints(endpoint_id: str | None, *, as_json: bool, out: TextIO) -> int:
    """`flow endpoints [ID]`: the catalog, or one endpoint's parameters with allowed values."""
    if endpoint_id is None:
        catalog = load_catalog()
        if as_json:
            json.dump([{"id": e.id, "title": e.title, "method": e.method, "path": e.path,
                        "task": e.task is not None} for e in catalog.values()], out, indent=2)
            out.write("\n")
            return 0
        width = max(len(k) for k in catalog)
        for endpoint in catalog.values():
            kind = " (task: submit, then poll)" if endpoint.task else ""
            out.write(f"{endpoint.id:<{width}}  {endpoint.title}{kind}\n")
        out.write("\n`flow endpoints ID` shows an endpoint's parameters.\n")
        return 0
    endpoint = get_endpoint(endpoint_id)
    if as_json:
        json.dump({"id": endpoint.id, "title": endpoint.title, "method": endpoint.method,
                   "path": endpoint.path, "body": endpoint.body,
                   "files": sorted(endpoint.files), "params": endpoint.params_schema,
                   "outputs": endpoint.output_names}, out, indent=2)
        out.write("\n")
        return 0
    from .schema import resolve_param_schema

    out.write(f"{endpoint.id} — {endpoint.title}\n")
    if endpoint.description:
        out.write(f"  {endpoint.description}\n")
    out.write(f"  {endpoint.method} {endpoint.path}  ({endpoint.body} body"
              + (", submit then poll" if endpoint.task else "") + ")\n\n")
    out.write("parameters:\n")
    required = set(endpoint.params_schema.get("required", []))
    for name in endpoint.param_names:
        schema = resolve_param_schema(endpoint, name)
        flags = []
        if name in required:
            flags.append("required")
        if name in endpoint.files:
            flags.append("file")
        kind = _describe_schema(schema)
        out.write(f"  {name:<20} {kind}{' (' + ', '.join(flags) + ')' if flags else ''}\n")
        if schema.get("description"):
            out.write(f"  {'':<20} {schema['description']}\n")
    out.write("\noutputs: " + ", ".join(endpoint.output_names) + ", files, response\n")
    return 0


def _describe_schema(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        values = [str(v) for v in schema["enum"]]
        return "one of: " + ", ".join(values)
    kind = schema.get("type", "any")
    kind = "/".join(kind) if isinstance(kind, list) else kind
    bounds = []
    for key, word in (("minimum", ">="), ("maximum", "<="), ("minItems", "items >="),
                      ("maxItems", "items <="), ("maxLength", "length <=")):
        if key in schema:
            bounds.append(f"{word} {schema[key]}")
    return kind + (f" ({', '.join(bounds)})" if bounds else "")


def print_schema(*, out: TextIO) -> int:
    """`flow schema`: the recipe JSON Schema, for editors."""
    json.dump(recipe_schema(), out, indent=2)
    out.write("\n")
    return 0


STARTER = """\
# yaml-language-server: $schema=.flow/recipe.schema.json
#
# A flowrunner recipe. Try it offline:   flow run {file} --mock
# Real calls need your key:             export ELKAPI_API_KEY=sk-...; flow run {file}
# Endpoints and their parameters:       flow endpoints [ID]
version: 1
name: {name}

vars:                      # read as vars.<name>; override with --var brand=Other
  brand: {title}
  sizes: [1024x1024, 1820x1024]

concurrency: 4             # calls at once
output_dir: assets         # where `save` writes, beside this file

steps:                     # keyed by step id; order comes from the dependencies
  logo:
    uses: recraft.generate_image
    with:
      prompt: "Minimal flat logo for {{{{ vars.brand }}}}, bold shapes, plain background"
      style: digital_illustration
      size: 1024x1024
    save: logo.png

  logo_clean:              # reads the logo's file, so it runs after it
    uses: recraft.remove_background
    with:
      image: "{{{{ steps.logo.files[0] }}}}"
    save: logo-transparent.png

  banner:                  # one instance per size
    uses: recraft.generate_image
    matrix:
      size: "{{{{ vars.sizes }}}}"
    with:
      prompt: "Wide banner for {{{{ vars.brand }}}}"
      size: "{{{{ matrix.size }}}}"
    save: "banner-{{{{ matrix.size }}}}.png"
"""


def init_recipe(name: str, *, folder: Path, out: TextIO) -> int:
    """`flow init`: write a commented starter recipe (and the schema editors read).

    Raises:
        UsageError: the file exists already.
    """
    from .errors import UsageError

    stem = name[:-5] if name.endswith(".yaml") else name
    target = folder / f"{stem}.yaml"
    if target.exists():
        raise UsageError(f"{target} exists already", hint="pick another name: flow init NAME")
    title = stem.replace("_", " ").replace("-", " ").title()
    target.write_text(STARTER.format(file=target.name, name=stem, title=title),
                      encoding="utf-8")
    schema_file = folder / ".flow" / "recipe.schema.json"
    schema_file.parent.mkdir(parents=True, exist_ok=True)
    schema_file.write_text(json.dumps(recipe_schema(), indent=2) + "\n", encoding="utf-8")
    shown, schema_shown = os.path.relpath(target), os.path.relpath(schema_file)
    out.write(f"wrote {shown} (and {schema_shown} for editors)\nnext: flow run {shown} --mock\n")
    return 0
