"""The pre-commit hooks of `.pre-commit-hooks.yaml`, run through the `pre-commit` tool itself
(`pre-commit try-repo`, which installs this repository as a hook repository) on a sample
repository holding a recipe, its lock file and its assets."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLES, IGNORED, REPO, flow

PRE_COMMIT = shutil.which("pre-commit") or str(Path(sys.executable).parent / "pre-commit")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path(PRE_COMMIT).exists(),
                                 reason="pre-commit is not installed (it is in the dev extra)")]


def _git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   cwd=folder, check=True, capture_output=True)


def _hooks(folder: Path, *files: str) -> dict[str, str]:
    """Both hooks on ``files``: each hook's verdict line and output, by hook id."""
    env = {**os.environ, "PRE_COMMIT_HOME": str(folder.parent / "pre-commit-home"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([PRE_COMMIT, "try-repo", str(REPO), "--files", *files, "--verbose"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    found: dict[str, str] = {}
    current = None
    for line in done.stdout.splitlines():
        if line.startswith(("flow validate", "flow lock check")):
            current = "flow-lock-check" if line.startswith("flow lock check") else \
                "flow-validate"
            found[current] = line
        elif current is not None:
            found[current] += "\n" + line
    assert set(found) == {"flow-validate", "flow-lock-check"}, done.stdout + done.stderr
    return found


def test_the_hooks_pass_a_kit_in_step_and_fail_a_stale_lock_or_a_broken_recipe(
        tmp_path: Path) -> None:
    repo = tmp_path / "brand"
    shutil.copytree(EXAMPLES, repo, ignore=IGNORED)
    (repo / "mkdocs.yml").write_text("site_name: docs\n")  # YAML that is no recipe
    assert flow("run", repo / "brand_assets.yaml", "--mock").code == 0
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "kit")

    fine = _hooks(repo, "brand_assets.yaml", "mkdocs.yml")
    assert all("Passed" in out.splitlines()[0] for out in fine.values()), fine

    recipe = repo / "brand_assets.yaml"
    recipe.write_text(recipe.read_text().replace("friendly red fox", "friendly blue fox", 1))
    broken = repo / "broken.yaml"  # another recipe, with a misspelt endpoint
    broken.write_text("version: 1\nsteps:\n  logo:\n    uses: recraft.generate_imag\n"
                      "    with: {prompt: x}\n")
    changed = _hooks(repo, "brand_assets.yaml", "broken.yaml", "mkdocs.yml")
    validate, lock = changed["flow-validate"], changed["flow-lock-check"]
    assert "Failed" in validate.splitlines()[0]
    assert "broken.yaml:4:11" in validate and "did you mean" in validate
    assert "brand_assets.yaml: ok" in validate  # the edited recipe is still valid
    assert "Failed" in lock.splitlines()[0]
    assert "logo: the recipe changed since the lock file was written" in lock
    assert "brand_assets.lock is not up to date with the recipe" in lock
