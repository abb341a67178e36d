"""The lock file `<recipe-stem>.lock` beside the recipe: what each instance resolved to.

YAML inside (yaml.safe_dump through source.py, read back through source.py); sorted keys,
no timestamps, no absolute paths, so it changes only when a result changes and is identical
across runs and machines. (The file, not file locking: that is `Cache.lock`.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cache import write_if_changed
from .errors import SpecError
from .providers import is_mock_identity
from .source import dump_yaml, parse_text

LOCK_VERSION = 1
_HEADER = """\
# flowrunner lock file for {recipe}: written by `flow run`. Commit it.
# It records what each step instance resolved to; `flow status` and
# `flow run --frozen` compare against it. Do not edit by hand.
"""


def lock_path_for(recipe_path: Path) -> Path:
    """`brand_assets.yaml` → `brand_assets.lock`, beside it."""
    return recipe_path.with_name(recipe_path.stem + ".lock")


def render_lock(recipe_name: str, entries: dict[str, dict[str, Any]], provider: str) -> str:
    """The lock file's text for ``entries`` (instance id → entry)."""
    # the fields that say what the file is first, then the instances (sorted)
    head = [{"version": LOCK_VERSION}, {"recipe": recipe_name}, {"provider": provider},
            {"instances": entries}]
    return _HEADER.format(recipe=recipe_name) + "".join(dump_yaml(part) for part in head)


def write_lock(path: Path, recipe_name: str, entries: dict[str, dict[str, Any]],
               provider: str) -> bool:
    """Write the lock file if its content changed; True when written."""
    return write_if_changed(path, render_lock(recipe_name, entries, provider))


@dataclass(frozen=True, slots=True)
class LockFile:
    """A lock file as read: the default provider it names and its instances."""

    provider: str | None
    instances: dict[str, dict[str, Any]]

    def emulated(self, instance_id: str) -> bool:
        """Whether the emulator (`--mock`) made this instance's entry."""
        return bool((self.instances.get(instance_id) or {}).get("emulated"))

    @property
    def any_emulated(self) -> bool:
        return any(self.emulated(name) for name in self.instances)


def merge_entries(old: dict[str, dict[str, Any]], finished: dict[str, dict[str, Any]],
                  ) -> dict[str, dict[str, Any]]:
    """The lock file's entries after a run that finished ``finished`` over ``old``.

    An old entry stays unless the run finished its instance, or saved a file at a path the
    old entry records (that file now belongs to the new entry, so the old one would no
    longer describe the disk).
    """
    claimed = {str(a["path"]) for entry in finished.values()
               for a in entry.get("artifacts", []) if a.get("path")}
    kept = {name: entry for name, entry in old.items() if name not in finished and not any(
        str(a.get("path")) in claimed for a in entry.get("artifacts", []) if a.get("path"))}
    return {**kept, **finished}


def read_lock(path: Path) -> LockFile:
    """The lock file's provider and instances; empty when there is none or it is unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
        data, _ = parse_text(text, str(path))
    except (OSError, SpecError):
        return LockFile(None, {})
    if not isinstance(data, dict) or not isinstance(data.get("instances"), dict):
        return LockFile(None, {})
    provider = data.get("provider") if isinstance(data.get("provider"), str) else None
    instances = {str(k): v for k, v in data["instances"].items() if isinstance(v, dict)}
    if is_mock_identity(provider):
        # written before entries said who made them: the file's provider says it for all
        for entry in instances.values():
            entry.setdefault("emulated", True)
    return LockFile(provider, instances)
