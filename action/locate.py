"""The GitHub Action's `locate` step: where the recipe's cache, lock file, output folder and
gallery page are, written to $GITHUB_OUTPUT (paths relative to the workspace, as
actions/cache and actions/upload-artifact take them). An invalid recipe is not this step's
to report: `flow` reports it in the next step, with its annotations; here its output
folder is read from the text, or taken as the default."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

import flowrunner


def output_dir(recipe: flowrunner.RecipeFile) -> Path:
    try:
        return recipe.output_dir
    except flowrunner.FlowError:
        try:
            data = yaml.safe_load(recipe.path.read_text(encoding="utf-8"))
        except (OSError, ValueError, yaml.YAMLError):
            data = None
        named = data.get("output_dir") if isinstance(data, dict) else None
        return recipe.path.resolve().parent / (named if isinstance(named, str) else "assets")


def main() -> int:
    mode = os.environ.get("INPUT_MODE", "check")
    if mode not in ("check", "run", "diff"):
        print(f"::error title=flowrunner::mode {mode!r}: expected check, run or diff")
        return 2
    recipe = flowrunner.load(os.environ["INPUT_RECIPE"])
    workspace = Path(os.environ.get("GITHUB_WORKSPACE") or Path.cwd()).resolve()

    def shown(path: Path) -> str:
        try:
            return str(path.resolve().relative_to(workspace))
        except ValueError:
            return str(path.resolve())

    folder = output_dir(recipe)
    lines = {"cache-dir": shown(recipe.cache_root), "lock-file": shown(recipe.lock_file),
             "output-dir": shown(folder), "gallery-page": shown(folder / "index.html")}
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
