"""`flow report`: rebuild the gallery, `<output_dir>/index.html`, from the lock file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

from ..errors import UsageError
from ..gallery import Card, write_gallery
from ..lockfile import lock_path_for, read_lock
from ..planning import load_plan


def build_report(path: Path, *, output_dir: Path | None, out: TextIO) -> int:
    """`flow report`: rebuild `<output_dir>/index.html` from the lock file."""
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
