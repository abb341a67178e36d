"""The sidecar files a finished run leaves behind besides the assets: the lock file's
entries, the run stamp, the gallery page and the CI step summary."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .cache import Cache
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


def write_run_gallery(plan: Plan, result: RunResult, output_dir: Path) -> str | None:
    """Write `index.html` with a card per saved asset; its path, or None if nothing saved."""
    from .gallery import Card, write_gallery

    matrices = {instance.id: instance.matrix for instance in plan.instances}
    order = {instance.id: n for n, instance in enumerate(plan.instances)}
    cards = []
    for item in sorted(result.results, key=lambda r: order.get(r.instance_id, 0)):
        if item.status not in ("ok", "cached"):
            continue
        for position, saved in enumerate(item.saved):
            artifact = item.artifacts[position] if position < len(item.artifacts) else {}
            cards.append(Card(file=saved, instance=item.instance_id, step=item.step_id,
                              endpoint=item.endpoint,
                              status="called" if item.status == "ok" else "cached",
                              credits=item.credits, unit=item.unit,
                              size_bytes=int(artifact.get("bytes", 0)),
                              matrix=matrices.get(item.instance_id, {}), params=item.params))
    if not cards:
        return None
    summary = (f"{len(result.results)} instances: {result.count('ok')} called, "
               f"{result.count('cached')} cached, {result.count('failed')} failed · "
               f"{result.amount('ok')} spent, {result.amount('cached')} saved by the "
               "cache")
    try:
        return display(write_gallery(output_dir, plan.recipe.name, cards, summary=summary))
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

