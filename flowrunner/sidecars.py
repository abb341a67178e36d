"""The sidecar files a finished run leaves behind besides the assets: the lock file's
entries, the run stamp, the gallery page and the CI step summary."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .cache import Cache
from .catalog import CREDIT_UNITS
from .graph import Plan
from .options import RunOptions
from .results import RunResult
from .stamp import Stamp, stamp_file


def display(path: Path) -> str:
    """``path`` relative to the working directory when inside it, else as given."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def lock_entries(result: RunResult, recipe_folder: Path,
                 output_dir: Path) -> dict[str, dict[str, Any]]:
    """The lock file's entry of every instance that succeeded (called or cached)."""
    entries: dict[str, dict[str, Any]] = {}
    for item in result.results:
        if item.status not in ("ok", "cached"):
            continue
        artifacts = []
        for position, artifact in enumerate(item.artifacts):
            record = {"sha256": artifact["sha256"], "bytes": artifact["bytes"]}
            if position < len(item.saved):
                relative = os.path.relpath(output_dir / item.saved[position], recipe_folder)
                record["path"] = item.saved[position] if relative.startswith("..") \
                    else Path(relative).as_posix()
            artifacts.append(record)
        # result URLs expire and differ per call: the lock keeps only stable outputs
        outputs = {k: v for k, v in item.outputs.items() if k != "credits" and not (
            isinstance(v, str) and v.startswith(("http://", "https://"))) and not (
            isinstance(v, list) and any(isinstance(u, str) and u.startswith("http") for u in v))}
        entries[item.instance_id] = {"step": item.step_id, "endpoint": item.endpoint,
                                     "key": item.key, "params": item.params,
                                     "credits": item.credits, "outputs": outputs,
                                     "artifacts": artifacts}
    return entries


def write_stamp(plan: Plan, result: RunResult, options: RunOptions, *, cache: Cache,
                inputs: list[str], lock_file: Path, output_dir: Path,
                concurrency: int) -> None:
    """Record what this successful run depended on, for the next unchanged re-run."""
    recipe = plan.recipe
    stamp = Stamp(recipe_sha256=recipe.digest)
    stamp.record(lock_file)
    for vars_file in options.vars_files:
        stamp.record(vars_file.resolve())
    for input_path in inputs:
        stamp.record(input_path)
    order = {instance.id: n for n, instance in enumerate(plan.instances)}
    for item in sorted(result.results, key=lambda r: order.get(r.instance_id, 0)):
        if item.status not in ("ok", "cached") or not item.key:
            return  # skipped instances need their condition evaluated: no stamp
        stamp.record(cache.result_path(item.key))
        for saved in item.saved:
            stamp.record(output_dir / saved)
        stamp.instances.append({"id": item.instance_id, "step": item.step_id,
                                "endpoint": item.endpoint, "key": item.key,
                                "credits": item.credits})
    stamp.summary = {"output_dir": result.output_dir, "lock": result.lock_path,
                     "concurrency": concurrency}
    try:
        stamp.write(stamp_file(cache.root, recipe.path, options.stamp_context()))
    except OSError:
        pass  # a stamp only saves time; a run never fails for want of one


def write_kit_gallery(plan: Plan, entries: dict[str, dict[str, Any]], output_dir: Path, *,
                      lock_name: str, mock: bool,
                      dimensions: dict[str, tuple[Any, Any]] | None = None) -> str | None:
    """Write `index.html`: the whole kit as the lock file records it, step by step.

    Returns its path for display, or None when nothing was saved or it cannot be written.
    """
    from .gallery import Asset, Card, Section, picture_size, render_gallery, write_gallery
    from .planning import known_params

    recipe = plan.recipe
    root = output_dir.resolve()
    saved: dict[str, list[str]] = {}  # step → its files, relative to the output folder
    sections = []
    for step_id in plan.step_order:
        step = recipe.steps[step_id]
        section = Section(step_id, step.description)
        for instance in plan.by_step[step_id]:
            entry = entries.get(instance.id)
            if entry is None:
                continue
            assets = []
            for artifact in entry.get("artifacts", []):
                if not artifact.get("path"):
                    continue
                target = (recipe.folder / str(artifact["path"])).resolve()
                if not target.is_relative_to(root):
                    continue
                relative = target.relative_to(root).as_posix()
                known = (dimensions or {}).get(str(artifact.get("sha256")))
                width, height = known if known and all(known) else picture_size(target)
                assets.append(Asset(relative, int(artifact.get("bytes", 0)), width, height))
            saved.setdefault(step_id, []).extend(a.file for a in assets)
            endpoint = step.endpoint
            badge = "local" if endpoint is not None and endpoint.local else \
                "mock" if mock else "called"
            references: list[str] = []
            if not assets and endpoint is not None and endpoint.files:
                shown = known_params(plan, instance.matrix, step.params)
                for name in endpoint.files:
                    values = shown.get(name)
                    for value in values if isinstance(values, list) else [values]:
                        if isinstance(value, str) and "{{" not in value and \
                                "://" not in value:
                            references.append(os.path.relpath(recipe.folder / value, root))
            made_from = [f for dep in plan.depends_on[step_id] for f in saved.get(dep, [])[:1]
                         if any(ref[:3] == ("steps", dep, "files")
                                for _, t in step.templates for ref in t.refs)]
            outputs = {k: v for k, v in entry.get("outputs", {}).items()
                       if k == "style_id"}
            section.cards.append(Card(
                instance.id, step_id, str(entry.get("endpoint", step.uses)), badge,
                assets=assets, references=references, made_from=made_from,
                credits=float(entry.get("credits") or 0),
                unit=endpoint.unit if endpoint is not None and not endpoint.local else
                CREDIT_UNITS.get(recipe.default_provider.kind, "credits"),
                matrix=instance.matrix, params=entry.get("params", {}), outputs=outputs))
        sections.append(section)
    files = sum(len(c.assets) for s in sections for c in s.cards)
    if not files:
        return None
    instances = sum(len(s.cards) for s in sections)
    header = (f"{files} asset{'s' * (files != 1)} from {instances} instances of "
              f"{len([s for s in sections if s.cards])} steps, as recorded in {lock_name}"
              + (" · made by the emulator (--mock), not by the providers" if mock else ""))
    page = render_gallery(recipe.name, recipe.description, header, sections)
    try:
        return display(write_gallery(output_dir, page))
    except OSError:
        return None


def append_step_summary(result: RunResult) -> None:
    """In GitHub Actions, add the run's Markdown summary to the job's page."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    from .reporting import markdown_summary

    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(markdown_summary(result))
    except OSError:
        pass  # a summary is a courtesy; never fail a run over it

