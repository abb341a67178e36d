"""Comparing a recipe's results with those at a git base: which instances were added,
removed or changed, and for a change, why (the rendered parameters that differ and the
variables behind them). Pure: the caller reads the lock files and recipes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..recipe.graph import Plan
from .changes import param_changes, show


@dataclass(slots=True)
class Change:
    """One instance that differs from the base."""

    instance: str
    kind: str  # added | removed | changed
    step: str = ""
    endpoint: str = ""
    reasons: list[str] = field(default_factory=list)
    variables: list[str] = field(default_factory=list)
    before: list[dict[str, Any]] = field(default_factory=list)
    after: list[dict[str, Any]] = field(default_factory=list)
    credits: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"instance": self.instance, "change": self.kind, "step": self.step,
                "endpoint": self.endpoint, "reasons": self.reasons,
                "variables": self.variables, "before": self.before, "after": self.after,
                "credits": self.credits}


def changed_variables(base: dict[str, Any], current: dict[str, Any]) -> dict[str, str]:
    """Variable name → `old → new`, for the variables whose values differ."""
    found = {}
    for name in sorted(set(base) | set(current)):
        if base.get(name) != current.get(name):
            old = show(base[name], 40) if name in base else "(none)"
            new = show(current[name], 40) if name in current else "(none)"
            found[name] = f"{old} → {new}"
    return found


def compare(base: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]], *,
            plan: Plan, variables: dict[str, str]) -> list[Change]:
    """Every instance added, removed or changed between two lock states, in plan order."""
    order = {instance.id: n for n, instance in enumerate(plan.instances)}
    makers = {str(a.get("sha256")): instance_id for lock in (base, current)
              for instance_id, entry in lock.items() for a in entry.get("artifacts", [])}
    found: list[Change] = []
    for instance_id in sorted(set(base) | set(current),
                              key=lambda i: (order.get(i, len(order)), i)):
        old, new = base.get(instance_id), current.get(instance_id)
        entry = new or old or {}
        change = Change(instance_id, "", step=str(entry.get("step", "")),
                        endpoint=str(entry.get("endpoint", "")),
                        before=list((old or {}).get("artifacts", [])),
                        after=list((new or {}).get("artifacts", [])),
                        credits=float((new or {}).get("credits") or 0))
        if old is None:
            change.kind = "added"
        elif new is None:
            change.kind = "removed"
        elif old.get("key") != new.get("key") or _files(old) != _files(new):
            change.kind = "changed"
            change.reasons = param_changes(old.get("params", {}), new.get("params", {}))
            if old.get("endpoint") != new.get("endpoint"):
                change.reasons.append(f"uses: {old.get('endpoint')} → {new.get('endpoint')}")
            if not change.reasons:
                change.reasons.append("same parameters, other result (provider or cache "
                                      "format changed, or the step was refreshed)")
            change.reasons = [_name_maker(r, makers) for r in change.reasons]
            step = plan.recipe.steps.get(change.step)
            if step is not None:
                change.reasons = [_mark_default(r, step.params) for r in change.reasons]
                read = {str(ref[1]) for _, template in step.templates for ref in template.refs
                        if ref[0] == "vars" and len(ref) > 1}
                change.variables = [f"vars.{name}: {variables[name]}"
                                    for name in sorted(read & set(variables))]
        else:
            continue
        found.append(change)
    return found


def _name_maker(reason: str, makers: dict[str, str]) -> str:
    """`uploaded file changed (…)` → `… (the file logo made, which changed)`."""
    if "uploaded file changed" not in reason:
        return reason
    head = reason.split("sha256 ", 1)[-1].split("…")[0]
    maker = next((name for sha, name in makers.items() if sha.startswith(head)), None)
    return f"{reason}: {maker}'s file" if maker else reason


def _files(entry: dict[str, Any]) -> list[str]:
    return [str(a.get("sha256")) for a in entry.get("artifacts", [])]


def _mark_default(reason: str, written: dict[str, Any]) -> str:
    """Say when a changed parameter is not in the recipe: the endpoint's default moved."""
    name = reason.split(":", 1)[0].removeprefix("with.").split(".")[0].split("[")[0]
    if reason.startswith("with.") and name not in written:
        return f"{reason} (endpoint default)"
    return reason
