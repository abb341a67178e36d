"""Runway's official API format as gateways relay it (contracts/runway.json): a version
header on every call, an image-to-video submit checked per model (ratio, duration, what
each model requires), then a task polled until SUCCEEDED. The emulator's own model, from
Runway's SDK, not flowrunner's catalog."""

from __future__ import annotations

from typing import Any

from . import contract


def check(fields: dict[str, Any]) -> str | None:
    """Why Runway refuses this submit, or None."""
    spec = contract.load("runway.json")
    problem = contract.field_problem(fields, spec["fields"])
    for name in spec["required"]:
        if problem is None and not fields.get(name):
            problem = f"{name} is required"
    if problem is not None:
        return problem
    model = str(fields["model"])
    rules = spec["models"].get(model)
    if rules is None:  # gone from the list (gen3a_turbo, veo3), or never in it
        return f"model {model!r} is not available"
    return _model_problem(model, rules, fields)


def _model_problem(model: str, rules: dict[str, Any], fields: dict[str, Any]) -> str | None:
    for name in rules["requires"]:
        if fields.get(name) in (None, ""):
            return f"{name} is required for {model}"
    if rules.get("no_ratio") and "ratio" in fields:
        return f"{model} takes no ratio"
    if "ratio" in fields and "ratios" in rules and fields["ratio"] not in rules["ratios"]:
        return f"ratio must be one of {', '.join(rules['ratios'])} for {model}"
    duration = fields.get("duration")
    if duration == "auto" and not rules.get("auto_duration"):
        return f"duration \"auto\" is not supported for {model}"
    if duration is not None and duration != "auto" and (
            isinstance(duration, bool) or not isinstance(duration, int)):
        return "duration must be an integer"
    if duration == "auto":
        return None
    if duration is not None and "durations" in rules and duration not in rules["durations"]:
        return f"duration must be one of {', '.join(map(str, rules['durations']))} for {model}"
    if duration is not None and "duration" in rules and \
            not rules["duration"][0] <= duration <= rules["duration"][1]:
        low, high = rules["duration"]
        return f"duration must be {low} to {high} for {model}"
    return None
