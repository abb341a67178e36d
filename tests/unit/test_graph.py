"""The graph as tables: dependencies, order, cycles (STYLE B15.7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowrunner.recipe.graph import build_plan, instance_id
from flowrunner.recipe.spec import load_recipe


def _recipe(tmp_path: Path, steps: dict[str, str], extra: str = "") -> Path:
    lines = ["version: 1", extra, "steps:"]
    for name, image in steps.items():
        lines += [f"  {name}:", "    uses: recraft.vectorize", "    with:",
                  f"      image: {image!r}" if image else "      image: in.png"]
    path = tmp_path / "r.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(("steps", "order"), [
    # declaration order wins among independent steps
    ({"b": "", "a": ""}, ["b", "a"]),
    # a reference makes a dependency even when declared later
    ({"late": "{{ steps.early.files[0] }}", "early": ""}, ["early", "late"]),
    # a diamond: d after both b and c, b before c by declaration
    ({"d": "{{ steps.b.files[0] }}{{ steps.c.files[0] }}", "b": "{{ steps.a.files[0] }}",
      "c": "{{ steps.a.files[0] }}", "a": ""}, ["a", "b", "c", "d"]),
])
def test_order(tmp_path: Path, steps: dict[str, str], order: list[str]) -> None:
    recipe, issues = load_recipe(_recipe(tmp_path, steps))
    assert recipe is not None and not issues
    plan, graph_issues = build_plan(recipe)
    assert not graph_issues
    assert list(plan.step_order) == order


@pytest.mark.parametrize(("steps", "cycle"), [
    ({"a": "{{ steps.b.files[0] }}", "b": "{{ steps.a.files[0] }}"}, "a → b → a"),
    ({"x": "", "a": "{{ steps.c.files[0] }}", "b": "{{ steps.a.files[0] }}",
      "c": "{{ steps.b.files[0] }}"}, "a → c → b → a"),
])
def test_cycles_are_reported_with_their_path(tmp_path: Path, steps: dict[str, str],
                                             cycle: str) -> None:
    recipe, _ = load_recipe(_recipe(tmp_path, steps))
    assert recipe is not None
    _, issues = build_plan(recipe)
    assert [i.message for i in issues] == [f"steps form a cycle: {cycle}"]


def test_matrix_expands_to_the_cartesian_product_in_order(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "version: 1\nvars: {sizes: [1024x1024, 2048x1024]}\nsteps:\n  b:\n"
        "    uses: recraft.generate_image\n    matrix:\n      size: '{{ vars.sizes }}'\n"
        "      tone: [warm, cool, dark]\n    with:\n      prompt: '{{ matrix.tone }}'\n"
        "      size: '{{ matrix.size }}'\n    save: 'b-{{ matrix.size }}-{{ matrix.tone }}.png'\n")
    recipe, issues = load_recipe(path)
    assert recipe is not None and not issues
    plan, graph_issues = build_plan(recipe)
    assert not graph_issues
    assert [i.id for i in plan.instances] == [
        "b[size=1024x1024,tone=warm]", "b[size=1024x1024,tone=cool]",
        "b[size=1024x1024,tone=dark]", "b[size=2048x1024,tone=warm]",
        "b[size=2048x1024,tone=cool]", "b[size=2048x1024,tone=dark]"]


def test_instance_ids() -> None:
    assert instance_id("logo", {}) == "logo"
    assert instance_id("b", {"size": "1:1", "n": 2}) == "b[size=1:1,n=2]"
    assert instance_id("b", {"c": {"rgb": [1, 2, 3]}}) == 'b[c={"rgb": [1, 2, 3]}]'
