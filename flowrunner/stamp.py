"""The run stamp: what the last successful run of a recipe read and wrote, so that an
unchanged re-run is recognised without parsing, rendering or importing anything heavy.

A stamp records the recipe's sha256, the options that shape the run, and (size, mtime) of
every file the run depended on: local input files, the saved assets, the lock file and
the cache entries. If all still match, the run would only find cache hits and restore
nothing, so it is reported as such. Anything that differs, or any doubt, means a normal
run. Lives in `<cache>/runs/`. Imports only the JSON helper and the cache's atomic write.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._json import canonical_json

STAMP_VERSION = 1


def _stat(path: str) -> list[int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return [info.st_size, info.st_mtime_ns]


def stamp_file(cache_root: Path, recipe: Path, context: dict[str, Any]) -> Path:
    """Where the stamp of this recipe, run with these options, lives."""
    material = canonical_json({"recipe": str(recipe.resolve()), **context})
    return cache_root / "runs" / (hashlib.sha256(material.encode()).hexdigest()[:32] + ".json")


@dataclass(slots=True)
class Stamp:
    """What a successful run depended on and reported."""

    recipe_sha256: str
    files: dict[str, list[int] | None] = field(default_factory=dict)
    instances: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def record(self, path: Path | str) -> None:
        self.files[str(path)] = _stat(str(path))

    def write(self, target: Path) -> None:
        from .cache import atomic_write_bytes

        doc = {"v": STAMP_VERSION, "recipe_sha256": self.recipe_sha256, "files": self.files,
               "instances": self.instances, "summary": self.summary}
        atomic_write_bytes(target, json.dumps(doc, separators=(",", ":")).encode())


def read_fresh_stamp(target: Path, recipe: Path) -> Stamp | None:
    """The stamp at ``target`` if the recipe and every recorded file are unchanged."""
    try:
        doc = json.loads(target.read_bytes())
        recipe_bytes = recipe.read_bytes()
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("v") != STAMP_VERSION:
        return None
    if hashlib.sha256(recipe_bytes).hexdigest() != doc.get("recipe_sha256"):
        return None
    files = doc.get("files")
    if not isinstance(files, dict):
        return None
    for path, recorded in files.items():
        if _stat(path) != recorded:
            return None
    return Stamp(recipe_sha256=doc["recipe_sha256"], files=files,
                 instances=list(doc.get("instances", [])), summary=dict(doc.get("summary", {})))
