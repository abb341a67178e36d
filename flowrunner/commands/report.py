"""`flow report`: rebuild the gallery, `<output_dir>/index.html`, from the lock file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

from ..errors import UsageError
from ..kit.lockfile import lock_path_for, read_lock
from ..kit.sidecars import write_kit_gallery
from ..run.planning import load_plan


def build_report(path: Path, *, output_dir: Path | None, out: TextIO) -> int:
    """`flow report`: rebuild `<output_dir>/index.html` from the lock file.

    Raises:
        UsageError: there is no lock file yet.
    """
    plan = load_plan(path)
    recipe = plan.recipe
    lock_file = lock_path_for(recipe.path)
    lock = read_lock(lock_file)
    if not lock.instances:
        raise UsageError(f"no lock file for {recipe.display}", hint="run `flow run` first")
    folder = output_dir.resolve() if output_dir else recipe.output_dir
    shown = write_kit_gallery(plan, lock.instances, folder, lock_name=lock_file.name)
    count = sum(len(e.get("artifacts", [])) for e in lock.instances.values())
    out.write(f"wrote {shown or os.path.relpath(folder / 'index.html')} ({count} assets)\n")
    return 0
