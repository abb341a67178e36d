"""`flow graph`: the step graph as Mermaid or Graphviz dot."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

from ..run.planning import load_plan


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
            # prefixed ids: a step named `end` (a Mermaid keyword) cannot break the chart
            lines.append(f'  s_{step_id}["{label}"]')
        for step_id in plan.step_order:
            for dep in plan.depends_on[step_id]:
                lines.append(f"  s_{dep} --> s_{step_id}")
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
