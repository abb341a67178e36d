"""`flow verify`: do the saved files still match the lock file (sha256)?"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from ..errors import SpecError, UsageError
from ..kit.lockfile import invalid_lines, lock_path_for, read_lock
from ..recipe.spec import load_recipe
from ..run.options import cache_root_for
from ..store.cache import sha256_file


def verify_outputs(path: Path, *, output_dir: Path | None, out: TextIO,
                   mock: bool = False) -> int:
    """`flow verify`: do the saved files still match the lock (sha256)? Without ``mock``,
    files the emulator made fail it, however well they match."""
    # the recipe's folders are all it needs: no rendering, and the lock file's parse is
    # shared with `flow run` through the cache's memo
    recipe, issues = load_recipe(path, display=str(path))
    if recipe is None:
        raise SpecError(issues)
    lock_file = lock_path_for(recipe.path)
    locked = read_lock(lock_file, memo=cache_root_for(recipe.path, None) / "parsed")
    lock = locked.instances
    for line in invalid_lines(locked, lock_file.name):
        sys.stderr.write(f"flow: warning: {line}\n")
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
    if locked.any_emulated and not mock:
        out.write(f"{checked} files match {lock_file.name}, but they were made by the emulator "
                  "(--mock), not by the provider · `flow run` without --mock makes them\n")
        return 1
    out.write(f"{checked} files match {lock_file.name}\n")
    return 0
