"""The lock file `<recipe-stem>.lock` beside the recipe: what each instance resolved to.

YAML inside (written by a small emitter here, read back through source.py); sorted keys, no
timestamps, no absolute paths, so it changes only when a result changes and is identical
across runs and machines. Written only after a successful run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cache import atomic_write_bytes
from .errors import SpecError
from .source import parse_text

LOCK_VERSION = 1
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def lock_path_for(recipe_path: Path) -> Path:
    return recipe_path.with_name(recipe_path.stem + ".lock")


def _key(key: str) -> str:
    return key if _PLAIN_KEY.match(key) and key not in ("true", "false", "null", "yes", "no",
                                                          "on", "off", "y", "n") \
        else json.dumps(key, ensure_ascii=False)


def _scalar(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(value, ensure_ascii=False)


def _emit(value: Any, indent: int, out: list[str]) -> None:
    pad = "  " * indent
    if isinstance(value, dict):
        for key in sorted(value):
            item = value[key]
            if isinstance(item, dict) and item:
                out.append(f"{pad}{_key(str(key))}:")
                _emit(item, indent + 1, out)
            elif isinstance(item, list) and item and any(isinstance(i, (dict, list)) for i in item):
                out.append(f"{pad}{_key(str(key))}:")
                _emit(item, indent + 1, out)
            else:
                out.append(f"{pad}{_key(str(key))}: {_flow(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, list) and item and any(isinstance(i, (dict, list)) for i in item):
                lines = []
                _emit(item, indent + 1, lines)
                out.append(f"{pad}- {lines[0].lstrip()}")
                out.extend(lines[1:])
            elif isinstance(item, dict) and item:
                lines: list[str] = []
                _emit(item, indent + 1, lines)
                first = lines[0].lstrip()
                out.append(f"{pad}- {first}")
                out.extend(lines[1:])
            else:
                out.append(f"{pad}- {_flow(item)}")


def _flow(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))
    return _scalar(value)


def render_lock(recipe_name: str, entries: dict[str, dict[str, Any]], provider: str) -> str:
    """The lock file's text for ``entries`` (instance id → entry)."""
    lines = [f"# flowrunner lock file for {recipe_name}: written by `flow run`. Commit it.",
             "# It records what each step instance resolved to; `flow status` and",
             "# `flow run --frozen` compare against it. Do not edit by hand.",
             f"version: {LOCK_VERSION}",
             f"recipe: {_scalar(recipe_name)}",
             f"provider: {_scalar(provider)}"]
    if entries:
        lines.append("instances:")
        _emit(entries, 1, lines)
    else:
        lines.append("instances: {}")
    return "\n".join(lines) + "\n"


def write_lock(path: Path, recipe_name: str, entries: dict[str, dict[str, Any]],
               provider: str) -> bool:
    """Write the lock file if its content changed; True when written."""
    text = render_lock(recipe_name, entries, provider)
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    atomic_write_bytes(path, text.encode())
    return True


@dataclass(frozen=True, slots=True)
class LockFile:
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
