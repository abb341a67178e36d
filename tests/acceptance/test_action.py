"""The GitHub Action (`action.yml`): its metadata is what GitHub accepts, and its shell
steps, run here as the runner would run them (inputs through `env:`, $GITHUB_OUTPUT,
$GITHUB_STEP_SUMMARY), check, run and diff a recipe against the emulator."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from actionrunner import ACTION, run_action
from helpers import KEY_ENV, LOGO_CHAIN, recipe

from conftest import REPO, Emulator


def test_the_action_is_valid_metadata_for_github() -> None:
    checker = shutil.which("check-jsonschema")
    if checker is None:
        pytest.skip("check-jsonschema is not installed (it is in the dev extra)")
    checked = subprocess.run([checker, "--builtin-schema", "vendor.github-actions",
                              str(REPO / "action.yml")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert ACTION["runs"]["using"] == "composite"
    assert set(ACTION["inputs"]) >= {"recipe", "mode", "remote-cache", "remote-cache-mode",
                                     "budget", "python-version"}


def test_the_workflows_give_the_action_only_inputs_it_has() -> None:
    """examples/ci/*.yml and .ci/uses-action.yml (which gives every input): no unknown
    input, every required one given."""
    required = {name for name, spec in ACTION["inputs"].items() if spec.get("required")}
    files = [*sorted((REPO / "examples" / "ci").glob("*.yml")), REPO / ".ci" / "uses-action.yml"]
    seen = 0
    for path in files:
        workflow = yaml.safe_load(path.read_text())
        for job in workflow["jobs"].values():
            for step in job["steps"]:
                if step.get("uses") in ("./",) or "/flowrunner@" in step.get("uses", ""):
                    seen += 1
                    given = set(step.get("with", {}))
                    unknown = given - set(ACTION["inputs"])
                    assert not unknown, (path.name, unknown)
                    assert required <= given, (path.name, required - given)
    assert seen >= 5
    everything = yaml.safe_load((REPO / ".ci" / "uses-action.yml").read_text())
    assert set(everything["jobs"]["check"]["steps"][1]["with"]) == set(ACTION["inputs"])


@pytest.mark.slow
def test_check_fails_calling_nothing_then_run_then_check_passes(
        tmp_path: Path, emulator: Emulator) -> None:
    folder = tmp_path / "repo" / "design"
    folder.mkdir(parents=True)
    recipe(folder, emulator.base_url, LOGO_CHAIN)
    workspace = tmp_path / "repo"
    status, context, uses = run_action({"recipe": "design/brand.yaml"}, workspace=workspace,
                                       env=KEY_ENV)
    assert status == 4, context["log"]  # --frozen: nothing cached yet
    assert emulator.requests() == []
    installs = (workspace / ".runner" / "pip-installs").read_text()
    assert str(REPO) in installs  # the action's own version
    restore = next(u for u in uses if u["uses"] == "actions/cache/restore@v4")
    assert restore["path"] == "design/.flow/cache"
    # restored and saved under the same key: the lock file's hash (hashFiles, both times)
    keys = [step["with"]["key"] for step in ACTION["runs"]["steps"]
            if step.get("uses", "").startswith("actions/cache/")]
    assert keys == ["flow-${{ runner.os }}-${{ hashFiles(steps.locate.outputs.lock-file) }}"] * 2
    assert "--frozen: 3 instance(s) are not in the cache" in context["log"][-1]
    assert "### ❌ flow check `design/brand.yaml` (exit 4)" in context["summary"]
    assert "--frozen: 3 instance(s) are not in the cache" in context["summary"]

    shutil.rmtree(workspace / ".runner")
    words = '--var "brand=Acme Corp"'  # quoted words stay one argument, nothing expands
    status, context, uses = run_action({"recipe": "design/brand.yaml", "mode": "run",
                                        "budget": "100", "args": words},
                                       workspace=workspace, env=KEY_ENV)
    assert status == 0, context["log"]
    assert context["steps"]["flow"]["outputs"]["ok"] == "true"
    assert context["steps"]["flow"]["outputs"]["gallery"].endswith("design/assets/index.html")
    assert "flow run `design/brand.yaml`" in context["summary"]
    assert (folder / "assets" / "logo.svg").is_file() and (folder / "brand.lock").is_file()
    assert "Logo for Acme Corp" in (folder / "brand.lock").read_text()
    saved = next(u for u in uses if u["uses"] == "actions/cache/save@v4")
    assert saved["path"] == "design/.flow/cache"
    upload = next(u for u in uses if u["uses"] == "actions/upload-artifact@v4")
    assert upload["path"] == "design/assets" and (workspace / upload["path"]).is_dir()
    assert upload["name"] == "flowrunner-assets-run"  # one name per job and mode
    assert not any("comment" in str(u) for u in uses)  # nothing commented unless asked

    shutil.rmtree(workspace / ".runner")
    calls = len(emulator.requests())
    status, context, _ = run_action({"recipe": "design/brand.yaml", "args": words},
                                    workspace=workspace, env=KEY_ENV)
    assert status == 0, context["log"]
    assert len(emulator.requests()) == calls  # all cached: no request
    assert "✅ flow run `design/brand.yaml`" in context["summary"]  # the unchanged run too


@pytest.mark.slow
def test_diff_writes_the_review_page_and_a_summary(tmp_path: Path, emulator: Emulator) -> None:
    workspace = tmp_path / "repo"
    workspace.mkdir()
    path = recipe(workspace, emulator.base_url, LOGO_CHAIN)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=workspace, check=True)
    assert subprocess.run([sys.executable, "-m", "flowrunner", "run", str(path)],
                          env={**os.environ, **KEY_ENV}, capture_output=True).returncode == 0
    subprocess.run([*git, "add", "-A"], cwd=workspace, check=True)
    subprocess.run([*git, "commit", "-qm", "kit"], cwd=workspace, check=True)
    path.write_text(path.read_text().replace("Logo for", "A logo for"))
    assert subprocess.run([sys.executable, "-m", "flowrunner", "run", str(path)],
                          env={**os.environ, **KEY_ENV}, capture_output=True).returncode == 0
    status, context, uses = run_action({"recipe": "brand.yaml", "mode": "diff",
                                        "base": "HEAD"}, workspace=workspace, env=KEY_ENV)
    assert status == 0, context["log"]
    assert context["summary"].count("### flow diff") == 1 and "logo" in context["summary"]
    review = next(u for u in uses if u.get("name") == "flowrunner-assets-diff")
    assert [u["name"] for u in uses if "upload-artifact" in u["uses"]] == \
        ["flowrunner-assets-diff"]  # the gallery is a run's, not the diff's
    assert (workspace / review["path"]).is_file()
