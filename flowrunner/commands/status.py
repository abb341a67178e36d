"""`flow status`: fresh / stale / missing per instance; 0 only when all are fresh."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from ..kit.lockfile import LockFile, lock_path_for, read_lock
from ..run.options import cache_root_for
from ..run.planning import load_plan
from ..run.survey import Survey, survey_plan
from ..store.remote import inspection_cache

MADE_BY_EMULATOR = ("made by the emulator (--mock), not by the provider: `flow run` without "
                    "--mock makes it")


def _overridden(locked: dict[str, Any], overrides: dict[str, Any]) -> str | None:
    """`--var brand=Globex` when the entry was made with variables this check lacks."""
    made_with = locked.get("vars")
    if not isinstance(made_with, dict) or made_with == overrides:
        return None
    return " ".join(f"--var {name}={value}" for name, value in sorted(made_with.items()))


def _status_rows(survey: list[Survey], lock: LockFile, *, mock: bool,
                 overrides: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for item in survey:
        locked = lock.instances.get(item.instance.id)
        key = item.call.key if item.call else None
        if item.state == "skipped":
            state, why = "fresh", "skipped: condition is false"
        elif locked is not None and lock.emulated(item.instance.id) and not mock:
            # placeholders never pass for real results, however well they match the recipe
            state, why = "stale", MADE_BY_EMULATOR
        elif locked is not None and not lock.emulated(item.instance.id) and mock:
            state, why = "stale", "made by the provider; --mock checks the emulator's results"
        elif locked is not None and key is not None and key != locked.get("key"):
            made_with = _overridden(locked, overrides)
            state, why = "stale", (f"made with {made_with}; the recipe as it is gives another "
                                   "result" if made_with else
                                   "the recipe changed since the lock file was written")
        elif item.state == "blocked":
            state, why = "missing", f"waits for {item.waits_for}"
        elif item.state == "error":
            state, why = "stale", item.error.message if item.error else "cannot render"
        elif item.state != "cached":
            state, why = "missing", "not in the cache"
        elif locked is None:
            state, why = "stale", "cached, but not in the lock file yet"
        else:
            state, why = "fresh", ""
        rows.append({"instance": item.instance.id, "state": state, "reason": why, "key": key})
    planned = {item.instance.id for item in survey}
    for name in sorted(set(lock.instances) - planned):
        made_with = _overridden(lock.instances[name], overrides)
        rows.append({"instance": name, "state": "stale",
                     "reason": f"made with {made_with}; not in the recipe as it is"
                     if made_with else "in the lock file but no longer in the recipe",
                     "key": None})
    return rows


def _rows_from_stamp(path: Path, cache_dir: Path | None,
                     context: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Every instance fresh, when the last complete run with these options left a stamp
    that still matches (recipe, lock file, cache entries and assets, by time or content):
    then its lock entries are exactly what the recipe makes now. None otherwise."""
    from ..kit.stamp import fresh_stamp

    stamp = fresh_stamp(path, cache_root_for(path, cache_dir), context)
    if stamp is None:
        return None
    return [{"instance": item["id"], "state": "fresh", "reason": "", "key": item.get("key")}
            for item in stamp.instances]


def show_status(path: Path, *, var_overrides: dict[str, Any], cache_dir: Path | None,
                mock: bool, as_json: bool, out: TextIO,
                stamp_context: dict[str, Any] | None = None,
                remote_cache: str | None = None) -> int:
    """`flow status`: fresh / stale / missing per instance; 0 only when all are fresh.

    With ``stamp_context`` (what `flow run` with the same options would stamp), an
    unchanged kit is answered from the run stamp without planning."""
    rows = _rows_from_stamp(path, cache_dir, stamp_context) if stamp_context else None
    display = str(path)
    if rows is None:
        plan = load_plan(path, var_overrides=var_overrides)
        recipe = plan.recipe
        display = recipe.display
        cache = inspection_cache(cache_root_for(plan.recipe.path, cache_dir), remote_cache)
        lock = read_lock(lock_path_for(recipe.path), memo=cache.root / "parsed")
        survey = survey_plan(plan, cache=cache, mock=mock)
        rows = _status_rows(survey, lock, mock=mock, overrides=var_overrides)
    all_fresh = all(r["state"] == "fresh" for r in rows)
    if as_json:
        json.dump({"recipe": display, "fresh": all_fresh, "instances": rows}, out,
                  indent=2)
        out.write("\n")
        return 0 if all_fresh else 1
    width = max(len(r["instance"]) for r in rows) if rows else 10
    for row in rows:
        reason = f"  ({row['reason']})" if row["reason"] else ""
        out.write(f"{row['state']:<8} {row['instance']:<{width}}{reason}\n")
    counts = {s: sum(1 for r in rows if r["state"] == s) for s in ("fresh", "stale", "missing")}
    out.write(f"\n{counts['fresh']} fresh, {counts['stale']} stale, {counts['missing']} missing"
              + ("" if all_fresh else " · `flow run` brings them up to date") + "\n")
    return 0 if all_fresh else 1
