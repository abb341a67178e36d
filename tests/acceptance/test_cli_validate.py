"""`flow validate`, `plan`, `graph`, `endpoints`, `schema` from the real command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import EXAMPLES, IGNORED, REPO, flow, flow_in_process, write_recipe

INVALID = REPO / "tests" / "data" / "recipes" / "invalid"
CASES = sorted(p.stem for p in INVALID.glob("*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_invalid_recipe_reports_exact_lines_and_exit_3(name: str, tmp_path: Path) -> None:
    shutil.copy(INVALID / f"{name}.yaml", tmp_path)
    expected = (INVALID / f"{name}.expected").read_text()
    result = flow_in_process("validate", f"{name}.yaml", cwd=tmp_path)
    assert result.code == 3, result
    lines = result.err.splitlines()
    assert "\n".join(lines[:-1]) + "\n" == expected, result
    assert lines[-1].endswith("in 1 file")
    assert "Traceback" not in result.both


def test_every_rule_has_a_case() -> None:
    # each validation rule of the issue has a broken recipe pinned above
    for rule in ["yaml_syntax", "duplicate_key", "unknown_key", "wrong_type", "unknown_endpoint",
                 "bad_params", "unknown_param", "template_syntax", "unknown_reference",
                 "unknown_needs", "cycle", "save_escapes", "save_collision", "bad_version",
                 "matrix_bad_value", "empty", "not_mapping", "not_utf8"]:
        assert rule in CASES


@pytest.mark.parametrize("recipe", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_validate_and_plan(recipe: Path) -> None:
    result = flow_in_process("validate", recipe)
    assert result.code == 0, result
    assert result.out.startswith(f"{recipe}: ok (")
    planned = flow_in_process("plan", recipe)
    assert planned.code == 0, planned
    assert "instances in" in planned.out


def test_validate_many_files_reports_all_and_fails(tmp_path: Path) -> None:
    good = write_recipe(tmp_path, "version: 1\nsteps:\n  a:\n    uses: recraft.generate_image\n"
                                  "    with: {prompt: hi}\n", "good.yaml")
    bad = write_recipe(tmp_path, "version: 1\nsteps:\n  a:\n    uses: nope\n", "bad.yaml")
    result = flow("validate", good.name, bad.name, cwd=tmp_path)
    assert result.code == 3
    assert "good.yaml: ok (1 steps, 1 instances)" in result.out
    assert "bad.yaml:4:11: error: steps.a.uses: unknown endpoint 'nope'" in result.err


def test_validate_json_output_is_machine_readable(tmp_path: Path) -> None:
    shutil.copy(INVALID / "unknown_needs.yaml", tmp_path)
    result = flow("validate", "--json", "unknown_needs.yaml", cwd=tmp_path)
    assert result.code == 3
    doc = json.loads(result.out)
    assert doc["valid"] is False
    [error] = doc["files"][0]["errors"]
    assert (error["line"], error["col"]) == (9, 13)
    assert error["message"] == "steps.clean.needs: unknown step 'logoo'"
    assert error["hint"].startswith("did you mean 'logo'?")


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = flow("validate", "nowhere.yaml", cwd=tmp_path)
    assert result.code == 2
    assert "nowhere.yaml" in result.err and "does not exist" in result.err


def test_graph_mermaid_and_dot() -> None:
    recipe = EXAMPLES / "brand_assets.yaml"
    mermaid = flow("graph", recipe)
    assert mermaid.code == 0
    assert mermaid.out.startswith("flowchart LR\n")
    assert "  s_logo --> s_logo_transparent\n" in mermaid.out
    assert "  s_house_style --> s_banner\n" in mermaid.out
    dot = flow("graph", recipe, "--format", "dot")
    assert dot.code == 0
    assert '"logo_transparent" -> "logo_svg";' in dot.out
    assert dot.out.rstrip().endswith("}")


def test_plan_lists_instances_in_order_with_rendered_params(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "ex", ignore=IGNORED)
    result = flow("plan", tmp_path / "ex" / "brand_assets.yaml")
    assert result.code == 0, result
    lines = result.out.splitlines()
    order = [line.split()[1] for line in lines if line[:4].strip().rstrip(".").isdigit()]
    assert order.index("house_style") < order.index("logo") < order.index("logo_svg")
    assert "banner[size=2048x1024]" in order
    assert "      size: 2048x1024" in result.out
    assert "style_id: {{ steps.house_style.outputs.style_id }}" in result.out
    assert result.out.rstrip().endswith("credits estimated")


def test_endpoints_lists_catalog_and_shows_one() -> None:
    listing = flow("endpoints")
    assert listing.code == 0
    for endpoint in ["recraft.generate_image", "recraft.vectorize", "recraft.remove_background",
                     "recraft.crisp_upscale", "recraft.creative_upscale", "recraft.create_style",
                     "recraft.inpaint", "flux.generate", "http"]:
        assert endpoint in listing.out
    one = flow("endpoints", "recraft.generate_image")
    assert one.code == 0
    assert "POST /recraft/v1/images/generations" in one.out
    assert "  n                    integer (>= 1, <= 6)" in one.out
    assert "vector_illustration" in one.out
    assert "  prompt " in one.out and "(required)" in one.out
    wrong = flow("endpoints", "recraft.vectorise")
    assert wrong.code == 3
    assert "did you mean recraft.vectorize?" in wrong.err


def test_schema_prints_the_recipe_schema() -> None:
    result = flow("schema")
    assert result.code == 0
    schema = json.loads(result.out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema == json.loads((REPO / "schemas" / "recipe.schema.json").read_text())


def test_help_lists_every_command() -> None:
    result = flow("--help")
    assert result.code == 0
    for command in ["run", "validate", "plan", "status", "graph", "endpoints", "cache",
                    "schema", "emulator", "why", "verify"]:
        assert f"  {command} " in result.out


def test_init_writes_a_starter_that_validates_and_runs_with_mock(tmp_path: Path) -> None:
    result = flow("init", "brand_kit", cwd=tmp_path)
    assert result.code == 0, result
    assert result.out == ("wrote brand_kit.yaml (and recipe.schema.json for editors)\n"
                          "next: flow run brand_kit.yaml --mock\n")
    text = (tmp_path / "brand_kit.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=recipe.schema.json")
    assert (tmp_path / "recipe.schema.json").is_file()  # beside it, under version control
    assert flow("validate", "brand_kit.yaml", cwd=tmp_path).code == 0
    ran = flow("run", "brand_kit.yaml", "--mock", cwd=tmp_path)
    assert ran.code == 0, ran
    assert (tmp_path / "assets" / "logo-transparent.png").is_file()
    again = flow("init", "brand_kit", cwd=tmp_path)
    assert again.code == 2 and "exists already" in again.err
    assert (tmp_path / "brand_kit.yaml").read_text() == text


def test_init_handles_nested_parent_and_spaced_names(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    nested = flow("init", "sub/dir/kit", cwd=work)
    assert nested.code == 0, nested
    assert (work / "sub" / "dir" / "kit.yaml").is_file()
    assert (work / "sub" / "dir" / "recipe.schema.json").is_file()
    parent = flow("init", "../b/kit", cwd=work)
    assert parent.code == 0, parent
    assert (tmp_path / "b" / "kit.yaml").is_file() and (tmp_path / "b" /
                                                         "recipe.schema.json").is_file()
    spaced = flow("init", "my kit", cwd=work)
    assert spaced.code == 0, spaced
    assert spaced.out.endswith("next: flow run 'my kit.yaml' --mock\n")
    assert flow("validate", "my kit.yaml", cwd=work).code == 0


def test_mermaid_ids_cannot_clash_with_keywords(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, "version: 1\nsteps:\n  end:\n"
                                  "    uses: recraft.generate_image\n    with: {prompt: a}\n"
                                  "  graph:\n    uses: recraft.vectorize\n"
                                  "    with: {image: \"{{ steps.end.files[0] }}\"}\n")
    result = flow_in_process("graph", path)
    assert result.code == 0, result
    assert '  s_end["end<br/>' in result.out and "  s_end --> s_graph" in result.out


def test_a_later_matrix_instance_that_breaks_a_parameter_or_a_rule_is_named(
        tmp_path: Path) -> None:
    # the first instance is valid: the others are checked only where they differ from it
    # (the varying parameters and the rules that read them); that must still catch these
    long = "x" * 1001
    write_recipe(tmp_path, f"""version: 1
vars:
  prompts: ["a fox", "a cat", "{long}"]
  sizes: [1024x1024, 2048x1024, 999x999]
steps:
  shot:
    uses: recraft.generate_image
    matrix: {{p: "{{{{ vars.prompts }}}}"}}
    with: {{prompt: "{{{{ matrix.p }}}}", model: recraftv3, size: 1024x1024}}
  banner:
    uses: recraft.generate_image
    matrix: {{size: "{{{{ vars.sizes }}}}"}}
    with: {{prompt: "Banner", size: "{{{{ matrix.size }}}}"}}
""", "batch.yaml")
    result = flow_in_process("validate", "batch.yaml", cwd=tmp_path)
    assert result.code == 3, result
    assert "the prompt is longer than 1000 characters, the limit for recraftv3" in result.err
    assert "(in shot[p=" in result.err
    assert "steps.banner.with.size" in result.err and "(in banner[size=999x999])" in result.err
    assert "banner[size=1024x1024]" not in result.err
    assert "Traceback" not in result.both
