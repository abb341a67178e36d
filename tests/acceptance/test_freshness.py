"""One definition of fresh: after any file a recipe reads changes (the recipe, a vars file,
a local catalog entry, a file added to a `catalog:` folder, an input file), `flow status`,
`flow plan`, `flow run --frozen` and `flow run` agree that work is to do (issue 24,
defect 5: the run stamp used to miss local catalog entries)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import KEY_ENV, recipe

from conftest import Emulator, flow


def _local_entry(folder: Path, model: str) -> None:
    from flowrunner.catalog.resources import read_json

    entry = read_json("endpoints", "recraft", "generate_image.json")
    entry["id"] = "team.logo"
    entry.setdefault("defaults", {})["model"] = model
    (folder / "logo.json").write_text(json.dumps(entry))


def _kit(tmp_path: Path, base_url: str) -> Path:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    _local_entry(catalog, "recraftv3")
    (tmp_path / "vars.yaml").write_text("brand: Acme\n")
    (tmp_path / "fox.png").write_bytes(_png())
    return recipe(tmp_path, base_url, """
  logo:
    uses: team.logo
    with: {prompt: "Logo for {{ vars.brand }}", size: 1024x1024}
    save: logo.png
  clean:
    uses: recraft.remove_background
    with: {image: fox.png}
    save: fox-clean.png
""", extra="catalog: [catalog]\n")


def _png() -> bytes:
    from flowrunner.emulator.images import png

    return png(256, 256, "fox")


def _edit_entry(tmp_path: Path) -> None:
    _local_entry(tmp_path / "catalog", "recraftv2")


def _add_entry_file(tmp_path: Path) -> None:
    # another file in the folder redefines the endpoint (entries later in order win)
    from flowrunner.catalog.resources import read_json

    entry = read_json("endpoints", "recraft", "generate_image.json")
    entry["id"] = "team.logo"
    entry.setdefault("defaults", {})["model"] = "recraftv2"
    (tmp_path / "catalog" / "zz-override.json").write_text(json.dumps(entry))


def _edit_vars_file(tmp_path: Path) -> None:
    (tmp_path / "vars.yaml").write_text("brand: Globex\n")


def _edit_input(tmp_path: Path) -> None:
    from flowrunner.emulator.images import png

    (tmp_path / "fox.png").write_bytes(png(256, 256, "another fox"))


def _edit_recipe(tmp_path: Path) -> None:
    path = tmp_path / "brand.yaml"
    path.write_text(path.read_text().replace("Logo for", "A logo for"))


@pytest.mark.parametrize("change", [_edit_entry, _add_entry_file, _edit_vars_file,
                                    _edit_input, _edit_recipe])
def test_every_file_a_recipe_reads_decides_whether_it_is_fresh(
        tmp_path: Path, emulator: Emulator, change: Callable[[Path], None]) -> None:
    path = _kit(tmp_path, emulator.base_url)
    vars_file = ["--vars-file", str(tmp_path / "vars.yaml")]
    first = flow("run", path, *vars_file, env=KEY_ENV)
    assert first.code == 0, first
    again = flow("run", path, *vars_file, env=KEY_ENV)
    assert "0 called" in again.out  # the stamp's no-op: nothing changed yet
    assert flow("run", path, "--frozen", *vars_file, env=KEY_ENV).code == 0
    change(tmp_path)
    status = flow("status", path, *vars_file)
    plan = flow("plan", path, *vars_file)
    frozen = flow("run", path, "--frozen", *vars_file, env=KEY_ENV)
    assert status.code == 1 and "missing" in status.out, status
    assert "1 cached, 1 to call" in plan.out, plan
    assert frozen.code == 4, frozen
    emulator.reset()
    run = flow("run", path, *vars_file, env=KEY_ENV)
    assert run.code == 0, run
    assert "1 called" in run.out, run  # exactly the instance the change touched
