"""`flow validate --lock` (the flow-lock-check hook): is the lock file up to date with its
recipe, from the repository alone (the lock file and the saved assets, no cache, no call)?
And `--changed`: which recipes a set of changed files concerns."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import KEY_ENV, recipe

from conftest import EXAMPLES, IGNORED, Emulator, flow


@pytest.fixture
def kit(tmp_path: Path) -> Path:
    """The brand example made with --mock, its cache gone (a fresh clone)."""
    shutil.copytree(EXAMPLES, tmp_path / "examples", ignore=IGNORED)
    path = tmp_path / "examples" / "brand_assets.yaml"
    assert flow("run", path, "--mock").code == 0
    shutil.rmtree(path.parent / ".flow")
    return path


def test_an_up_to_date_lock_file_passes_without_the_cache(kit: Path) -> None:
    checked = flow("validate", "--lock", kit)
    assert checked.code == 0, checked
    assert not (kit.parent / ".flow" / "cache" / "results").exists()  # nothing cached


def test_a_changed_prompt_fails_naming_the_instances_and_what_to_do(kit: Path) -> None:
    text = kit.read_text()
    kit.write_text(text.replace("friendly red fox", "friendly orange fox", 1))
    checked = flow("validate", "--lock", kit)
    assert checked.code == 4, checked
    assert "logo: the recipe changed since the lock file was written" in checked.err
    assert "favicons: it reads logo, which is not up to date" in checked.err
    assert "brand_assets.lock is not up to date with the recipe: run `flow run" in checked.err
    report = json.loads(flow("validate", "--lock", "--json", kit).out)
    stale = {s["instance"] for s in report["files"][0]["lock"]["stale"]}
    assert "logo" in stale and "house_style" not in stale
    # brought up to date (cached results cost nothing), it passes again
    assert flow("run", kit, "--mock").code == 0
    assert flow("validate", "--lock", kit).code == 0


def test_a_changed_saved_asset_and_a_missing_lock_file_fail(kit: Path) -> None:
    logo = kit.parent / "assets" / "logo.png"
    logo.write_bytes(logo.read_bytes() + b"\0")
    checked = flow("validate", "--lock", kit)
    assert checked.code == 4 and "logo_transparent" in checked.err, checked
    kit.with_suffix(".lock").unlink()
    missing = flow("validate", "--lock", kit)
    assert missing.code == 4 and "there is no lock file brand_assets.lock" in missing.err


def test_changed_files_pick_the_recipes_they_concern(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples", ignore=IGNORED)
    folder = tmp_path / "examples"
    (folder / "ci-workflow.yaml").write_text("on: push\njobs: {}\n")  # not a recipe
    (folder / "entries").mkdir()
    entry = json.loads((Path(__file__).parents[2] / "schemas" / "endpoints" / "recraft" /
                        "vectorize.json").read_text())
    entry["id"] = "local.vectorize"
    (folder / "entries" / "vectorize.json").write_text(json.dumps(entry))
    (folder / "local.yaml").write_text("version: 1\ncatalog: [entries]\nsteps:\n  svg:\n"
                                       "    uses: local.vectorize\n"
                                       "    with: {image: brand/moodboard-warm.png}\n")
    only_workflow = flow("validate", "--changed", "ci-workflow.yaml", cwd=folder)
    assert only_workflow.code == 0 and only_workflow.out == "", only_workflow
    picked = flow("validate", "--changed", "ci-workflow.yaml", "entries/vectorize.json",
                  cwd=folder)
    assert picked.code == 0 and "local.yaml: ok" in picked.out, picked
    assert "brand_assets.yaml" not in picked.out
    # a broken entry fails the recipe that reads it, located
    entry["method"] = 7
    (folder / "entries" / "vectorize.json").write_text(json.dumps(entry))
    broken = flow("validate", "--changed", "entries/vectorize.json", cwd=folder)
    assert broken.code == 3 and "vectorize.json" in broken.err, broken


def test_what_the_lock_file_cannot_tell_is_said_not_failed_and_vars_are_the_locks(
        tmp_path: Path, emulator: Emulator) -> None:
    """Review: a step reading an earlier step's URL output (the lock file keeps no URLs)
    is noted as not checkable, not stale; a lock file made with --var is checked with the
    values it was made with."""
    path = recipe(tmp_path, emulator.base_url, """
  logo:
    uses: recraft.generate_image
    with: {prompt: "Logo for {{ vars.brand }}", size: 1024x1024}
    save: logo.png
  fromurl:
    uses: recraft.vectorize
    with: {image: "{{ steps.logo.outputs.url }}"}
    save: logo.svg
""")
    assert flow("run", path, "--var", "brand=Globex", env=KEY_ENV).code == 0
    checked = flow("validate", "--lock", path)
    assert checked.code == 0, checked
    assert "fromurl is not checked from the lock file" in checked.err
    path.write_text(path.read_text().replace("Logo for", "A logo for"))
    assert flow("validate", "--lock", path).code == 4
