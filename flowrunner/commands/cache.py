"""`flow cache ls|gc|clear`: list, prune and remove the cache a recipe's runs use."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from ..kit.lockfile import lock_path_for, read_lock
from ..run.options import cache_root_for
from ..run.planning import load_plan
from ..run.survey import survey_plan
from ..store.cache import Cache


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def cache_root(recipe: Path | None, cache_dir: Path | None) -> Path:
    """The cache `flow run RECIPE` uses (--cache-dir wins); without a recipe, --cache-dir,
    else `.flow/cache` in the working directory."""
    if recipe is not None:
        return cache_root_for(recipe, cache_dir)
    return (cache_dir or Path(".flow") / "cache").resolve()


def list_cache(recipe: Path | None, *, cache_dir: Path | None, as_json: bool,
               out: TextIO) -> int:
    """`flow cache ls`: every result entry with endpoint, size and age."""
    cache_dir = cache_root(recipe, cache_dir)
    cache = Cache(cache_dir, writable=False)
    now = time.time()
    rows: list[dict[str, Any]] = []
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
    if not rows and not as_json:
        out.write(f"no cache entries in {cache_dir}\n")
        return 0
    return _show(rows, cache_dir, as_json=as_json, out=out,
                 extra=lambda row: f"  {_age(row['age']):>4}")


def _show(rows: list[dict[str, Any]], where: Any, *, as_json: bool, out: TextIO,
          extra: Callable[[dict[str, Any]], str]) -> int:
    """`flow cache ls`'s table (or JSON): a line per entry, then the total."""
    if as_json:
        json.dump(rows, out, indent=2)
        out.write("\n")
        return 0
    for row in rows:
        out.write(f"{row['key'][:12]}  {str(row['endpoint']):<26} {str(row['instance']):<30} "
                  f"{row['bytes']:>10,} B{extra(row)}\n")
    total = sum(r["bytes"] for r in rows)
    out.write(f"{len(rows)} entries, {total:,} bytes of artifacts in {where}\n")
    return 0


def _referenced(paths: list[Path], cache_dir: Path | None) -> tuple[Cache, set[str], set[str]]:
    """(the first recipe's cache, keys and objects the recipes' plans and lock files use)."""
    keep_keys: set[str] = set()
    keep_objects: set[str] = set()
    cache: Cache | None = None
    for path in paths:
        plan = load_plan(path)
        cache = cache or Cache(cache_root_for(plan.recipe.path, cache_dir), writable=False)
        for mock in (False, True):
            for item in survey_plan(plan, cache=cache, mock=mock):
                if item.call is not None:
                    keep_keys.add(item.call.key)
        for entry in read_lock(lock_path_for(plan.recipe.path)).instances.values():
            if entry.get("key"):
                keep_keys.add(str(entry["key"]))
            keep_objects.update(a["sha256"] for a in entry.get("artifacts", []))
    assert cache is not None
    return cache, keep_keys, keep_objects


def _remote(url: str, root: Path | None = None) -> Any:
    """The remote cache, for listing and pruning.

    Raises:
        CacheError: the remote cannot be used.
    """
    from ..errors import CacheError
    from ..store.remote import open_remote

    # listing and deleting write no local file; pushing reads the given local cache
    cache = open_remote(root or cache_root(None, None), url)
    if not cache.available:
        raise CacheError(f"the remote cache {url} cannot be used: {cache.problem}",
                         hint="check AWS_ENDPOINT_URL, the credentials and the bucket")
    return cache


@contextlib.contextmanager
def _store_problems(url: str) -> Iterator[None]:
    """A store that fails half-way is a clear error, not a traceback.

    Raises:
        CacheError: it did.
    """
    from ..errors import CacheError
    from ..store.objectstore import StoreError

    try:
        yield
    except StoreError as exc:
        raise CacheError(f"the remote cache {url} failed: {exc.reason}",
                         hint="nothing half-done matters: run the command again") from exc


def list_remote(url: str, *, as_json: bool, out: TextIO) -> int:
    """`flow cache ls --remote`: every result entry in the remote cache."""
    remote = _remote(url)
    with _store_problems(url):
        found = remote.remote_results()
    rows = [{"key": key, "endpoint": (entry or {}).get("endpoint", "?"),
             "instance": (entry or {}).get("instance", "(unreadable)"),
             "bytes": sum(a.get("bytes", 0) for a in (entry or {}).get("artifacts", [])),
             "signed": bool((entry or {}).get("signature"))}
            for key, entry in found]
    rows.sort(key=lambda row: row["key"])
    return _show(rows, url, as_json=as_json, out=out,
                 extra=lambda row: "  signed" if row["signed"] else "")


def share_results(paths: list[Path], *, cache_dir: Path | None, url: str, mock: bool,
                  out: TextIO) -> int:
    """`flow cache push`: upload the given recipes' local results the remote lacks (a run
    uploads only what it calls; this seeds a new bucket from a laptop's cache)."""
    sent = present = 0
    for path in paths:
        plan = load_plan(path)
        local = Cache(cache_root_for(plan.recipe.path, cache_dir), writable=False)
        keys = [item.call.key for item in survey_plan(plan, cache=local, mock=mock)
                if item.state == "cached" and item.call is not None]
        with _store_problems(url):
            more, there = _remote(url, local.root).share(list(dict.fromkeys(keys)))
        sent, present = sent + more, present + there
    out.write(f"uploaded {sent} result{'s' * (sent != 1)} to {url}; {present} were already "
              f"there\n")
    return 0


def _collect_remote(url: str, keep_keys: set[str], keep_objects: set[str], *,
                    dry_run: bool, out: TextIO) -> int:
    remote = _remote(url)
    drop = []
    freed = 0
    with _store_problems(url):
        for key, entry in remote.remote_results():
            if key in keep_keys and entry is not None:
                keep_objects.update(a["sha256"] for a in entry.get("artifacts", []))
            else:
                drop.append(f"results/{key}.json")
        for sha, size in remote.remote_objects():
            if sha not in keep_objects:
                drop.append(f"objects/{sha}")
                freed += size
        if not dry_run:
            # entries first: no reader may see an entry whose objects are already gone
            remote.remove_remote([n for n in drop if n.startswith("results/")])
            remote.remove_remote([n for n in drop if n.startswith("objects/")])
    entries = sum(name.startswith("results/") for name in drop)
    verb = "would remove" if dry_run else "removed"
    out.write(f"{verb} {entries} entries and {freed:,} bytes of artifacts from {url}; kept "
              f"{len(keep_keys)} referenced keys\n")
    return 0


def collect_garbage(paths: list[Path], *, cache_dir: Path | None, dry_run: bool,
                    out: TextIO, remote_cache: str | None = None) -> int:
    """`flow cache gc`: keep what a given recipe's plan or lock file references (in the
    local cache, or with ``remote_cache`` in the remote one)."""
    cache, keep_keys, keep_objects = _referenced(paths, cache_dir)
    if remote_cache:
        return _collect_remote(remote_cache, keep_keys, keep_objects, dry_run=dry_run,
                               out=out)
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
    swept = 0 if dry_run else cache.sweep()
    verb = "would remove" if dry_run else "removed"
    out.write(f"{verb} {removed} entries and {freed:,} bytes of artifacts; kept "
              f"{len(keep_keys)} referenced keys"
              + (f"; removed {swept} stale lock and partial files" if swept else "") + "\n")
    return 0


def clear_cache(recipe: Path | None, *, cache_dir: Path | None, out: TextIO) -> int:
    """`flow cache clear`: remove every entry."""
    cache_dir = cache_root(recipe, cache_dir)
    count = Cache(cache_dir).clear() if cache_dir.exists() else 0
    out.write(f"removed {count} cache entries from {cache_dir}\n")
    return 0
