"""`flow why RECIPE STEP`: a step's cache key material, and what changed since the lock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from ..errors import UsageError
from ..kit.changes import param_changes
from ..kit.lockfile import lock_path_for, read_lock
from ..run.options import cache_root_for
from ..run.planning import load_plan
from ..run.survey import STATE_WORDS, survey_plan
from ..store.remote import inspection_cache


def explain_step(path: Path, step_id: str, *, var_overrides: dict[str, Any],
                 cache_dir: Path | None, mock: bool, out: TextIO,
                 remote_cache: str | None = None) -> int:
    """`flow why RECIPE STEP`: key material per instance and what changed since the lock."""
    plan = load_plan(path, var_overrides=var_overrides)
    recipe = plan.recipe
    if step_id.split("[")[0] not in recipe.steps:
        import difflib

        close = difflib.get_close_matches(step_id, list(recipe.steps), n=1)
        raise UsageError(f"no step {step_id!r} in {recipe.display}",
                         hint=f"did you mean {close[0]!r}?" if close else
                         "steps: " + ", ".join(recipe.steps))
    cache = inspection_cache(cache_root_for(plan.recipe.path, cache_dir), remote_cache)
    lock_file = read_lock(lock_path_for(recipe.path), memo=cache.root / "parsed")
    # without --mock, results the emulator made never count: a real run calls again
    if lock_file.any_emulated and not mock:
        out.write("the lock file records results made by the emulator (--mock): a run "
                  "without --mock calls the provider for those instances\n")
    survey = survey_plan(plan, cache=cache, mock=mock)
    lock = lock_file.instances
    for item in survey:
        if item.instance.step_id != step_id.split("[")[0] or \
                ("[" in step_id and item.instance.id != step_id):
            continue
        out.write(f"{item.instance.id}: {STATE_WORDS[item.state]}\n")
        if item.call is not None:
            out.write(f"  cache key: {item.call.key}\n")
            out.write("  key material (the API key and headers are never part of it):\n")
            for line in json.dumps(item.call.material, indent=2, sort_keys=True,
                                   ensure_ascii=False).splitlines():
                out.write(f"    {line}\n")
        if item.state == "cached":
            out.write("  cached: a run makes no request for it\n")
            continue
        if item.state == "blocked":
            out.write(f"  its key is known only after {item.waits_for} runs (that step is not "
                      "cached)\n")
        locked = lock.get(item.instance.id)
        if locked is None:
            out.write("  not in the lock file: it has never run successfully with this recipe\n")
            continue
        if item.call is None:
            continue
        changes: list[str] = []
        if locked.get("key") == item.call.key:
            out.write("  same key as in the lock file, but the cache has no entry for it "
                      "(cache deleted, or another machine)\n")
            continue
        changes.extend(param_changes(locked.get("params", {}), item.call.material["params"]))
        if locked.get("endpoint") != item.call.endpoint.id:
            changes.append(f"uses: {locked.get('endpoint')} → {item.call.endpoint.id}")
        out.write("  changed since the lock file:\n" if changes else
                  "  key differs from the lock file (provider or format changed)\n")
        for change in changes:
            out.write(f"    {change}\n")
    return 0
