"""The GitHub Action's `locate` step: where the recipe's cache, lock file and output folder
are, written to $GITHUB_OUTPUT (paths relative to the workspace, as actions/cache and
actions/upload-artifact take them)."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import flowrunner


def main() -> int:
    recipe = flowrunner.load(os.environ["INPUT_RECIPE"])
    mode = os.environ.get("INPUT_MODE", "check")
    if mode not in ("check", "run", "diff"):
        print(f"::error title=flowrunner::mode {mode!r}: expected check, run or diff")
        return 2
    lock = recipe.lock_file
    workspace = Path(os.environ.get("GITHUB_WORKSPACE") or Path.cwd()).resolve()

    def shown(path: Path) -> str:
        try:
            return str(path.resolve().relative_to(workspace))
        except ValueError:
            return str(path.resolve())

    digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:16] if lock.is_file() else "none"
    lines = {"cache-dir": shown(recipe.cache_root), "lock-file": shown(lock),
             "lock-hash": digest, "output-dir": shown(recipe.output_dir)}
    with open(os.environ.get("GITHUB_OUTPUT", os.devnull), "a", encoding="utf-8") as out:
        for name, value in lines.items():
            out.write(f"{name}={value}\n")
            print(f"{name}: {value}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except flowrunner.FlowError as exc:
        print(f"::error title=flowrunner::{exc.message}")
        sys.exit(exc.exit_code)
