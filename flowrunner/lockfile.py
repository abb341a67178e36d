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
    """A lock file as read: the provider that made it and its instances."""

    provider: str | None
    instances: dict[str, dict[str, Any]]


def read_lock(path: Path) -> LockFile:
    """The lock file's provider and instances; empty when there is none or it is unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
        data, _ = parse_text(text, str(path))
    except (OSError, SpecError):
        return LockFile(None, {})
    if not isinstance(data, dict) or not isinstance(data.get("instances"), dict):
        return LockFile(None, {})
    provider = data.get("provider")
    return LockFile(provider if isinstance(provider, str) else None, data["instances"])
