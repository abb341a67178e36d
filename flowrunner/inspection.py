"""Commands that look at a recipe's state without calling anything: plan, status, why,
verify, and the cache commands (ls, gc, clear).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, TextIO

from .cache import Cache, sha256_file
from .calls import provider_identity
from .commands import known_params, load_plan
from .errors import UsageError
from .graph import Plan
from .lock import LockFile, lock_path_for, read_lock
from .survey import Survey, survey_plan

_STATE_WORDS = {"cached": "cached", "missing": "will call", "blocked": "will call",
                "skipped": "skipped", "unknown": "will call", "error": "error"}


def _cache_for(plan: Plan, cache_dir: Path | None) -> Cache:
    root = cache_dir.resolve() if cache_dir else plan.recipe.folder / ".flow" / "cache"
    return Cache(root, writable=False)


def _credit_history(cache: Cache) -> dict[str, float]:
    """Average credits per call of each endpoint, from the cache's results."""
    totals: dict[str, list[float]] = {}
    for _key, path in cache.iter_results():
        try:
            entry = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(entry, dict) and isinstance(entry.get("credits"), (int, float)):
            totals.setdefault(str(entry.get("endpoint")), []).append(float(entry["credits"]))
    return {endpoint: sum(v) / len(v) for endpoint, v in totals.items() if v}


def _estimate(item: Survey, history: dict[str, float], plan: Plan) -> float:
    step = item.instance.step
    if step.endpoint is None:
        return 0.0
    if step.endpoint.id in history:
        return history[step.endpoint.id]
    params = item.call.params if item.call else known_params(plan, item.instance.matrix,
                                                              step.params)
    return step.endpoint.estimate_credits({k: v for k, v in params.items()
                                           if not isinstance(v, str) or "{{" not in v})


def show_plan(path: Path, *, var_overrides: dict[str, Any], cache_dir: Path | None, mock: bool,
              as_json: bool, out: TextIO) -> int:
    """`flow plan`: instances in run order, their dependencies, parameters, cache state, cost."""
    plan = load_plan(path, var_overrides=var_overrides)
    recipe = plan.recipe
    cache = _cache_for(plan, cache_dir)
    provider = provider_identity(recipe.base_url, mock=mock)
    survey = survey_plan(plan, cache=cache, provider=provider)
    history = _credit_history(cache) if any(s.state != "cached" for s in survey) else {}
    rows = []
    for number, item in enumerate(survey, 1):
        step = item.instance.step
        credits = float(item.entry.get("credits") or 0) if item.entry else \
            _estimate(item, history, plan) if item.state not in ("skipped",) else 0.0
        params = item.call.material["params"] if item.call else \
            known_params(plan, item.instance.matrix, step.params)
        rows.append({"n": number, "instance": item.instance.id, "step": step.id,
                     "endpoint": step.uses, "state": item.state,
                     "needs": list(plan.depends_on[step.id]), "params": params,
                     "credits": credits, "key": item.call.key if item.call else None,
                     "waits_for": item.waits_for,
                     "error": item.error.message if item.error else None})
    to_call = [r for r in rows if r["state"] in ("missing", "blocked", "unknown")]
    estimate = sum(r["credits"] for r in to_call)
    if as_json:
        json.dump({"recipe": recipe.display, "instances": rows, "to_call": len(to_call),
                   "cached": sum(1 for r in rows if r["state"] == "cached"),
                   "estimated_credits": estimate}, out, indent=2, default=str)
        out.write("\n")
        return 0
    out.write(f"plan for {recipe.display}: {len(rows)} instances in {len(plan.step_order)} "
              f"steps\n")
    width = max(len(r["instance"]) for r in rows) if rows else 10
    for row in rows:
        word = _STATE_WORDS[row["state"]]
        cost = f"~{row['credits']:g} credits" if row["state"] != "cached" else \
            f"{row['credits']:g} credits saved"
        out.write(f"{row['n']:>4}. {row['instance']:<{width}}  {row['endpoint']:<26} "
                  f"{word:<10} {cost}\n")
        if row["needs"]:
            out.write(f"      needs: {', '.join(row['needs'])}\n")
        for name, value in row["params"].items():
            if isinstance(value, dict) and set(value) == {"sha256"}:
                value = f"file sha256:{value['sha256'][:12]}"
            elif isinstance(value, list) and value and all(
                    isinstance(v, dict) and set(v) == {"sha256"} for v in value):
                value = ", ".join(f"file sha256:{v['sha256'][:12]}" for v in value)
            shown = value if isinstance(value, str) else json.dumps(value)
            shown = shown if len(shown) <= 90 else shown[:89] + "…"
            out.write(f"      {name}: {shown}\n")
        if row["error"]:
            out.write(f"      error: {row['error']}\n")
    cached = sum(1 for r in rows if r["state"] == "cached")
    out.write(f"\n{cached} cached, {len(to_call)} to call, ~{estimate:g} credits estimated\n")
    return 0


def _provider(base_url: str, mock: bool, lock: LockFile) -> str:
    """--mock, else the provider the lock file was made with (a `--mock` lock stays a
    `--mock` lock), else the recipe's base URL."""
    if mock:
        return provider_identity(base_url, mock=True)
    return lock.provider or provider_identity(base_url, mock=False)


def _status_rows(plan: Plan, survey: list[Survey], lock: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for item in survey:
        locked = lock.get(item.instance.id)
        key = item.call.key if item.call else None
        if item.state == "skipped":
            state, why = "fresh", "skipped: condition is false"
        elif locked is not None and key is not None and key != locked.get("key"):
            state, why = "stale", "the recipe changed since the lock file was written"
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
    for name in sorted(set(lock) - planned):
        rows.append({"instance": name, "state": "stale",
                     "reason": "in the lock file but no longer in the recipe", "key": None})
    return rows


def show_status(path: Path, *, var_overrides: dict[str, Any], cache_dir: Path | None,
                mock: bool, as_json: bool, out: TextIO) -> int:
    """`flow status`: fresh / stale / missing per instance; 0 only when all are fresh."""
    plan = load_plan(path, var_overrides=var_overrides)
    recipe = plan.recipe
    cache = _cache_for(plan, cache_dir)
    lock = read_lock(lock_path_for(recipe.path))
    survey = survey_plan(plan, cache=cache, provider=_provider(recipe.base_url, mock, lock))
    rows = _status_rows(plan, survey, lock.instances)
    all_fresh = all(r["state"] == "fresh" for r in rows)
    if as_json:
        json.dump({"recipe": recipe.display, "fresh": all_fresh, "instances": rows}, out,
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


def _diff(old: Any, new: Any, path: str, found: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        if set(old) == {"sha256"} and set(new) == {"sha256"}:
            if old != new:
                found.append(f"{path}: uploaded file changed (sha256 {old['sha256'][:12]}… → "
                             f"{new['sha256'][:12]}…)")
            return
        for key in sorted(set(old) | set(new)):
            where = f"{path}.{key}" if path else key
            if key not in old:
                found.append(f"{where}: added ({_show(new[key])})")
            elif key not in new:
                found.append(f"{where}: removed (was {_show(old[key])})")
            else:
                _diff(old[key], new[key], where, found)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new)):
            _diff(a, b, f"{path}[{index}]", found)
    elif old != new:
        found.append(f"{path}: {_show(old)} → {_show(new)}")


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:79] + "…"


def explain_step(path: Path, step_id: str, *, var_overrides: dict[str, Any],
                 cache_dir: Path | None, mock: bool, out: TextIO) -> int:
    """`flow why RECIPE STEP`: key material per instance and what changed since the lock."""
    plan = load_plan(path, var_overrides=var_overrides)
    recipe = plan.recipe
    if step_id.split("[")[0] not in recipe.steps:
        import difflib

        close = difflib.get_close_matches(step_id, list(recipe.steps), n=1)
        raise UsageError(f"no step {step_id!r} in {recipe.display}",
                         hint=f"did you mean {close[0]!r}?" if close else
                         "steps: " + ", ".join(recipe.steps))
    cache = _cache_for(plan, cache_dir)
    lock_file = read_lock(lock_path_for(recipe.path))
    survey = survey_plan(plan, cache=cache, provider=_provider(recipe.base_url, mock, lock_file))
    lock = lock_file.instances
    for item in survey:
        if item.instance.step_id != step_id.split("[")[0] or \
                ("[" in step_id and item.instance.id != step_id):
            continue
        out.write(f"{item.instance.id}: {_STATE_WORDS[item.state]}\n")
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
        _diff(locked.get("params", {}), item.call.material["params"], "with", changes)
        if locked.get("endpoint") != item.call.endpoint.id:
            changes.append(f"uses: {locked.get('endpoint')} → {item.call.endpoint.id}")
        out.write("  changed since the lock file:\n" if changes else
                  "  key differs from the lock file (provider or format changed)\n")
        for change in changes:
            out.write(f"    {change}\n")
    return 0


def verify_outputs(path: Path, *, output_dir: Path | None, out: TextIO) -> int:
    """`flow verify`: do the saved files still match the lock (sha256)?"""
    plan = load_plan(path)
    recipe = plan.recipe
    lock_file = lock_path_for(recipe.path)
    lock = read_lock(lock_file).instances
    if not lock:
        raise UsageError(f"no lock file at {lock_file}", hint="run `flow run` first")
    drifted = checked = 0
    for instance_id in sorted(lock):
        for artifact in lock[instance_id].get("artifacts", []):
            rel = artifact.get("path")
            if not rel:
                continue
            target = recipe.folder / rel
            if output_dir is not None:
                try:
                    target = output_dir / Path(rel).relative_to(
                        recipe.output_dir.relative_to(recipe.folder))
                except ValueError:
                    pass
            checked += 1
            if not target.is_file():
                out.write(f"missing  {rel}  ({instance_id})\n")
                drifted += 1
            elif sha256_file(target) != artifact["sha256"]:
                out.write(f"changed  {rel}  ({instance_id}: sha256 differs from the lock)\n")
                drifted += 1
    if drifted:
        out.write(f"{drifted} of {checked} files drifted · `flow run` restores them from the "
                  "cache\n")
        return 1
    out.write(f"{checked} files match {lock_file.name}\n")
    return 0


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def list_cache(cache_dir: Path, *, as_json: bool, out: TextIO) -> int:
    """`flow cache ls`: every result entry with endpoint, size and age."""
    cache = Cache(cache_dir, writable=False)
    now = time.time()
    rows = []
    for key, path in cache.iter_results():
        try:
            entry = json.loads(path.read_bytes())
        except (OSError, ValueError):
            rows.append({"key": key, "endpoint": "?", "instance": "(unreadable)", "bytes": 0,
                         "age": 0})
            continue
        size = sum(a.get("bytes", 0) for a in entry.get("artifacts", []))
        rows.append({"key": key, "endpoint": entry.get("endpoint"),
                     "instance": entry.get("instance"), "bytes": size,
                     "files": len(entry.get("artifacts", [])), "credits": entry.get("credits"),
                     "age": now - path.stat().st_mtime})
    if as_json:
        json.dump(rows, out, indent=2)
        out.write("\n")
        return 0
    if not rows:
        out.write(f"no cache entries in {cache_dir}\n")
        return 0
    for row in rows:
        out.write(f"{row['key'][:12]}  {str(row['endpoint']):<26} {str(row['instance']):<30} "
                  f"{row['bytes']:>10,} B  {_age(row['age']):>4}\n")
    total = sum(r["bytes"] for r in rows)
    out.write(f"{len(rows)} entries, {total:,} bytes of artifacts in {cache_dir}\n")
    return 0


def collect_garbage(paths: list[Path], *, cache_dir: Path | None, dry_run: bool,
                    out: TextIO) -> int:
    """`flow cache gc`: keep what a given recipe's plan or lock file references."""
    keep_keys: set[str] = set()
    keep_objects: set[str] = set()
    cache: Cache | None = None
    for path in paths:
        plan = load_plan(path)
        cache = cache or _cache_for(plan, cache_dir)
        for mock in (False, True):
            for item in survey_plan(plan, cache=cache,
                                    provider=provider_identity(plan.recipe.base_url, mock=mock)):
                if item.call is not None:
                    keep_keys.add(item.call.key)
        for entry in read_lock(lock_path_for(plan.recipe.path)).instances.values():
            if entry.get("key"):
                keep_keys.add(str(entry["key"]))
            keep_objects.update(a["sha256"] for a in entry.get("artifacts", []))
    assert cache is not None
    removed = freed = 0
    for key, result_path in list(cache.iter_results()):
        if key in keep_keys:
            try:
                entry = json.loads(result_path.read_bytes())
                keep_objects.update(a["sha256"] for a in entry.get("artifacts", []))
            except (OSError, ValueError):
                pass
            continue
        removed += 1
        if not dry_run:
            result_path.unlink(missing_ok=True)
    objects = cache.root / "objects"
    if objects.is_dir():
        for folder in objects.iterdir():
            for blob in folder.iterdir():
                if blob.name not in keep_objects:
                    freed += blob.stat().st_size
                    if not dry_run:
                        blob.unlink(missing_ok=True)
    if not dry_run:
        shutil.rmtree(cache.root / "tmp", ignore_errors=True)
    verb = "would remove" if dry_run else "removed"
    out.write(f"{verb} {removed} entries and {freed:,} bytes of artifacts; kept "
              f"{len(keep_keys)} referenced keys\n")
    return 0


def clear_cache(cache_dir: Path, *, out: TextIO) -> int:
    """`flow cache clear`: remove every entry."""
    count = Cache(cache_dir).clear() if cache_dir.exists() else 0
    out.write(f"removed {count} cache entries from {cache_dir}\n")
    return 0


__all__ = ["show_plan", "show_status", "explain_step", "verify_outputs", "list_cache",
           "collect_garbage", "clear_cache"]


def build_report(path: Path, *, output_dir: Path | None, out: TextIO) -> int:
    """`flow report`: rebuild `<output_dir>/index.html` from the lock file."""
    from .gallery import Card, write_gallery

    plan = load_plan(path)
    recipe = plan.recipe
    lock = read_lock(lock_path_for(recipe.path)).instances
    if not lock:
        raise UsageError(f"no lock file for {recipe.display}", hint="run `flow run` first")
    folder = output_dir.resolve() if output_dir else recipe.output_dir
    matrices = {instance.id: instance.matrix for instance in plan.instances}
    cards = []
    for instance_id in [i.id for i in plan.instances if i.id in lock]:
        entry = lock[instance_id]
        for artifact in entry.get("artifacts", []):
            if not artifact.get("path"):
                continue
            target = recipe.folder / artifact["path"]
            try:
                relative = target.resolve().relative_to(folder.resolve()).as_posix()
            except ValueError:
                continue
            cards.append(Card(file=relative, instance=instance_id, step=entry.get("step", ""),
                              endpoint=entry.get("endpoint", ""), status="locked",
                              credits=float(entry.get("credits") or 0),
                              size_bytes=int(artifact.get("bytes", 0)),
                              matrix=matrices.get(instance_id, {}),
                              params=entry.get("params", {})))
    target = write_gallery(folder, recipe.name, cards,
                           summary=f"{len(cards)} assets recorded in "
                                   f"{lock_path_for(recipe.path).name}")
    out.write(f"wrote {os.path.relpath(target)} ({len(cards)} assets)\n")
    return 0
