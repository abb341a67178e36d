"""Whether a recipe's lock file is up to date with it, from the repository alone: the lock
file and the saved assets it names, no cache, no call (`flow validate --lock`, the
`flow-lock-check` pre-commit hook, a CI job before the cache is restored).

Each instance's cache key is worked out as a run would; a later step's inputs come from
the lock entries of the steps it reads (their outputs, and their saved files in place of
cache objects). An instance is up to date when the lock file holds its key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..records import CacheEntry
from ..run.planning import load_plan
from ..run.survey import survey_plan
from .lockfile import LockFile, lock_path_for, read_lock


class LockAsCache:
    """The few read methods of `Cache` a survey uses, answered from a lock file: an entry
    per recorded key, each artifact's bytes in the saved file the entry names."""

    def __init__(self, lock: LockFile, folder: Path) -> None:
        self.root = folder / ".flow" / "no-cache"  # nothing lives there: inputs are files
        self._by_key: dict[str, dict[str, Any]] = {}
        self._files: dict[str, Path] = {}
        for entry in lock.instances.values():
            if isinstance(entry.get("key"), str):
                self._by_key[entry["key"]] = entry
            for artifact in entry.get("artifacts", []):
                if artifact.get("path"):  # checked by read_lock: inside the recipe's folder
                    self._files.setdefault(artifact["sha256"], folder / artifact["path"])

    def holds_nothing(self) -> bool:
        return not self._by_key

    def prefetch(self, keys: Iterable[str]) -> None:
        """Everything is in memory already."""

    def get(self, key: str) -> CacheEntry | None:
        found = self._by_key.get(key)
        if found is None:
            return None
        return {"key": key, "outputs": dict(found.get("outputs") or {}),
                "artifacts": [{"sha256": a["sha256"], "bytes": a.get("bytes", 0)}
                              for a in found.get("artifacts", [])],
                "credits": float(found.get("credits") or 0), "response": {}}

    def object_file(self, sha256: str) -> str:
        return str(self._files.get(sha256, self.root / "objects" / sha256[:2] / sha256))

    def object_path(self, sha256: str) -> Path:
        return Path(self.object_file(sha256))


@dataclass(frozen=True, slots=True)
class LockCheck:
    """What `check_lock` found: the instances out of date (with why), those the lock file
    cannot tell about (with why), and the lock file."""

    lock_path: Path
    stale: tuple[tuple[str, str], ...]  # (instance, why)
    unchecked: tuple[tuple[str, str], ...] = ()  # (instance, why): not counted as stale

    @property
    def ok(self) -> bool:
        return not self.stale


def check_lock(recipe: Path) -> LockCheck:
    """Compare the recipe with its lock file (and the assets it names). A lock file made
    by `--mock` runs is compared as such, and one made with `--var` values with those.

    Raises:
        SpecError: the recipe is invalid.
    """
    path = lock_path_for(recipe.resolve())
    if not path.exists():
        return LockCheck(path, (("(all)", f"there is no lock file {path.name}"),))
    lock = read_lock(path)
    made_with = _made_with(lock)
    try:
        plan = load_plan(recipe, var_overrides=made_with)
    except UsageError:  # a variable the recipe no longer declares
        plan = load_plan(recipe)
    mock = bool(lock.instances) and all(lock.emulated(name) for name in lock.instances)
    cache: Any = LockAsCache(lock, plan.recipe.folder)
    stale: list[tuple[str, str]] = []
    unchecked: list[tuple[str, str]] = []
    planned = set()
    for item in survey_plan(plan, cache=cache, mock=mock):
        planned.add(item.instance.id)
        if item.state in ("cached", "skipped"):
            continue
        if item.state in ("error", "unknown") and plan.depends_on[item.instance.step_id]:
            # it reads what the lock file does not keep (a URL output, an answer) or a
            # saved file not in the repository: only a run with the cache can tell
            why = item.error.message if item.error else "its inputs are known only by a run"
            unchecked.append((item.instance.id, why))
            continue
        why = {"blocked": f"it reads {item.waits_for}, which is not up to date",
               "error": item.error.message if item.error else "it cannot be rendered",
               "unknown": "its inputs cannot be known without running"}.get(
            item.state, "the recipe changed since the lock file was written"
            if item.instance.id in lock.instances else "it is not in the lock file")
        stale.append((item.instance.id, why))
    stale += [(name, "in the lock file but no longer in the recipe")
              for name in sorted(set(lock.instances) - planned)]
    stale += [(name, f"its lock entry is unusable: {why}")
              for name, why in sorted(lock.invalid.items())]
    return LockCheck(path, tuple(stale), tuple(unchecked))


def _made_with(lock: LockFile) -> dict[str, Any]:
    """The `--var` values the lock file's entries were made with, when they agree."""
    found = [entry.get("vars") for entry in lock.instances.values()]
    first = found[0] if found else None
    if isinstance(first, dict) and all(other == first for other in found):
        return dict(first)
    return {}
