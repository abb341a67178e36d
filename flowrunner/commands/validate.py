"""`flow validate`: check recipe files without calling anything; with `--lock`, that each
lock file is up to date; with `--changed`, the recipes a set of changed files concerns
(what the pre-commit hooks in `.pre-commit-hooks.yaml` pass)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TextIO

from ..errors import SpecError, format_issues
from ..run.planning import load_plan
from ..run.reporting import github_annotation


def validate_files(paths: list[Path], *, as_json: bool, out: TextIO, err: TextIO,
                   lock: bool = False, changed: bool = False) -> int:
    """`flow validate`: check every file, print every problem; 0 when all are valid, else 3;
    with ``lock``, 4 when a valid recipe's lock file is out of date. With ``changed``,
    ``paths`` are changed files: the recipes among them and those that read a changed
    catalog entry or lock file are checked, other files skipped."""
    if changed:
        paths = recipes_concerned(paths)
    results: list[dict[str, Any]] = []
    failed = stale = False
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
                    for issue in exc.issues:
                        print(github_annotation(str(issue.location), issue.message), file=out)
            continue
        results.append({"file": str(path), "valid": True, "errors": [],
                        "warnings": [i.to_json() for i in plan.warnings],
                        "steps": len(plan.step_order), "instances": len(plan.instances)})
        found = _lock_problems(path, results[-1], out=err if not as_json else None) \
            if lock else 0
        stale = stale or bool(found)
        if not as_json:
            for warning in plan.warnings:  # said, but valid: exit 0
                print(warning.format(), file=err)
            verdict = "valid, its lock file out of date" if found else "ok"
            print(f"{path}: {verdict} ({len(plan.step_order)} steps, {len(plan.instances)} "
                  "instances)"
                  + (f", {len(plan.warnings)} warning{'s' * (len(plan.warnings) != 1)}"
                     if plan.warnings else ""), file=out)
    if as_json:
        json.dump({"valid": not failed, "files": results}, out, indent=2)
        out.write("\n")
    elif failed:
        count = sum(len(r["errors"]) for r in results)
        bad = sum(1 for r in results if not r["valid"])
        print(f"{count} error{'s' * (count != 1)} in {bad} file{'s' * (bad != 1)}", file=err)
    return 3 if failed else 4 if stale else 0


def _lock_problems(path: Path, result: dict[str, Any], *, out: TextIO | None) -> int:
    """Check the recipe's lock file; note what is out of date in ``result`` (and on
    ``out``). Returns how many instances are."""
    from ..kit.lockcheck import check_lock

    check = check_lock(path)
    result["lock"] = {"file": str(check.lock_path), "up_to_date": check.ok,
                      "stale": [{"instance": name, "reason": why} for name, why in check.stale],
                      "unchecked": [{"instance": name, "reason": why}
                                    for name, why in check.unchecked]}
    for name, why in check.unchecked if out is not None else ():
        print(f"{path}: note: {name} is not checked from the lock file: {why}", file=out)
    if out is not None and check.stale:
        for name, why in check.stale:
            print(f"{path}: {name}: {why}", file=out)
        print(f"{path}: {check.lock_path.name} is not up to date with the recipe: run `flow run "
              f"{path}` (cached results cost nothing) and commit the lock file", file=out)
    return len(check.stale)


def recipes_concerned(paths: list[Path]) -> list[Path]:
    """Of changed files: the recipes among them, the recipe beside each changed lock file,
    and every recipe under the working directory that reads a changed catalog entry. A
    file that is none of these is not a recipe's business (a workflow, a vars file)."""
    found: list[Path] = []
    entries: set[Path] = set()
    for path in paths:
        if path.suffix == ".lock":
            found += [r for r in (path.with_suffix(".yaml"), path.with_suffix(".yml"))
                      if r.is_file()]
        elif path.suffix in (".yaml", ".yml") and is_recipe(path):
            found.append(path)
        elif path.suffix in (".json", ".yaml", ".yml") and _looks_like_entry(path):
            entries.add(path.resolve())
    if entries:
        found += [r for r in _recipes_here() if _reads_any(r, entries)]
    unique: dict[Path, Path] = {}
    for recipe in found:
        unique.setdefault(recipe.resolve(), recipe)
    return list(unique.values())


def is_recipe(path: Path) -> bool:
    """Whether a YAML file is a flowrunner recipe (a mapping with `steps:` and `version:`)."""
    data = _plain(path)
    return isinstance(data, dict) and "steps" in data and "version" in data


def _plain(path: Path) -> Any:
    from ..recipe.source import load_plain_yaml

    try:
        return load_plain_yaml(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, SpecError):
        return None


def _looks_like_entry(path: Path) -> bool:
    """Whether a changed file is a catalog entry (an `id`, a `method` and a `path`)."""
    data = _plain(path)
    return isinstance(data, dict) and {"id", "method", "path"} <= set(data)


_NOT_SEARCHED = {"node_modules", "__pycache__", "site-packages", "dist", "build"}


def _recipes_here() -> list[Path]:
    """The recipes under the working directory, not looking into dot-folders (.git, .flow,
    .venv), virtual environments or dependency folders."""
    import os

    root = Path.cwd()
    found = []
    for folder, folders, files in os.walk(root):
        folders[:] = [name for name in folders if not name.startswith(".")
                      and name not in _NOT_SEARCHED
                      and not os.path.exists(os.path.join(folder, name, "pyvenv.cfg"))]
        for name in files:
            path = Path(folder, name)
            if path.suffix in (".yaml", ".yml") and is_recipe(path):
                found.append(path.relative_to(root))
    return sorted(found)


def _reads_any(recipe: Path, entries: set[Path]) -> bool:
    """Whether the recipe's `catalog:` names one of ``entries`` or a folder holding one
    (read from its text: a recipe broken by the change is found too)."""
    listed = (_plain(recipe) or {}).get("catalog")
    folder = recipe.resolve().parent
    for name in listed if isinstance(listed, list) else []:
        target = (folder / str(name)).resolve()
        if any(entry == target or entry.is_relative_to(target) for entry in entries):
            return True
    return False
