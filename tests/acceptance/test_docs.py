"""The README is the user's guide: its commands, recipes and references must stay true."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from conftest import EXAMPLES, REPO, flow

README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, re.S)


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_command() -> None:
    shell = [body.strip() for lang, body in BLOCKS if lang == "sh"]
    assert shell[0] == "pip install . && flow run examples/brand_assets.yaml --mock"
    assert shell[1] == "pip install '.[dev]' && pytest"
    assert README.index(shell[0]) < README.index("## A recipe")
    ci = (REPO / ".ci" / "run").read_text()
    assert shell[1] in ci.splitlines()
    # the gates run before the tests, on their pyproject configuration
    lines = ci.splitlines()
    assert lines.index("ruff check flowrunner tests benchmarks") < lines.index(shell[1])
    assert lines.index("mypy") < lines.index(shell[1])


def test_every_module_is_named_where_a_newcomer_looks() -> None:
    """The package's guide names every subpackage and top-level module; each subpackage's
    docstring names each of its modules; the README's map names every subpackage and
    every subcommand."""
    import ast

    package = REPO / "flowrunner"
    guide = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
    for path in package.glob("*.py"):
        if path.name not in ("__init__.py", "__main__.py"):
            assert f"`{path.stem}`" in guide, path.name
    for init in package.glob("*/__init__.py"):
        folder = init.parent
        assert f"`{folder.name}/`" in guide and f"`{folder.name}/`" in README, folder.name
        if folder.name == "emulator":
            continue
        own = ast.get_docstring(ast.parse(init.read_text())) or ""
        for path in folder.glob("*.py"):
            if path.name != "__init__.py" and folder.name != "commands":
                assert f"`{path.stem}`" in own, f"{folder.name}/{path.name}"
            if folder.name == "commands" and path.name != "__init__.py":
                assert f"`{path.stem}`" in README, path.name


def test_every_subcommand_is_documented_and_has_help() -> None:
    for command in ["run", "validate", "plan", "status", "why", "verify", "graph",
                    "endpoints", "schema", "cache", "emulator", "init", "report", "diff",
                    "watch"]:
        assert f"`flow {command}" in README, command
        result = flow(command, "--help")
        assert result.code == 0, (command, result)
        # `flow cache` is a group: its subcommands carry the examples
        assert "Example:" in result.out or command == "cache", command


def test_every_example_is_referenced() -> None:
    for example in EXAMPLES.glob("*.yaml"):
        assert f"examples/{example.name}" in README, example.name


def test_every_recipe_in_the_readme_validates(tmp_path: Path) -> None:
    recipes = [body for lang, body in BLOCKS if lang == "yaml" and body.lstrip().startswith(
        ("# yaml-language-server", "version:"))]
    assert recipes
    for number, body in enumerate(recipes):
        path = tmp_path / f"readme_{number}.yaml"
        path.write_text(body)
        result = flow("validate", path)
        assert result.code == 0, result


def test_every_exit_status_is_documented() -> None:
    for code in ["`0`", "`1`", "`2`", "`3`", "`4`", "`130`"]:
        assert code in README


def test_every_yaml_block_in_the_readme_parses() -> None:
    import yaml

    blocks = [body for lang, body in BLOCKS if lang == "yaml"]
    assert len(blocks) >= 2
    for body in blocks:
        assert yaml.safe_load(body) is not None


def test_every_example_points_editors_at_the_schema_flow_prints() -> None:
    import json

    printed = json.loads(flow("schema").out)
    for example in EXAMPLES.glob("*.yaml"):
        first = example.read_text().splitlines()[0]
        assert first == "# yaml-language-server: $schema=../schemas/recipe.schema.json", example
        target = (example.parent / "../schemas/recipe.schema.json").resolve()
        assert json.loads(target.read_text()) == printed


def test_the_ci_example_installs_this_projects_distribution() -> None:
    import tomllib

    name = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["name"]
    assert name != "flowrunner"  # another project's name on the package index
    for example in sorted((REPO / "examples" / "ci").glob("*.yml")):
        # through the action, which installs its own version of this project
        assert "/flowrunner@" in example.read_text(), example.name
    assert 'pip install --quiet "${GITHUB_ACTION_PATH}${extra}"' in \
        (REPO / "action.yml").read_text()
    for block in (body for lang, body in BLOCKS if lang in ("yaml", "sh")):
        for spec in re.findall(r"pip install\s+([^\s#.'\"$][^\s#]*)", block):
            assert re.split(r"[\[=<>@ ]", spec)[0] == name, spec


WORKFLOW = REPO / "examples" / "ci" / "github-actions.yml"


@pytest.mark.parametrize("example", ["github-actions.yml", "github-actions-sharded.yml"])
def test_the_ci_example_is_a_workflow_github_accepts(example: str) -> None:
    import shutil
    import subprocess
    import sys

    path = REPO / "examples" / "ci" / example
    checker = shutil.which("check-jsonschema") or str(Path(sys.executable).parent /
                                                      "check-jsonschema")
    result = subprocess.run([checker, "--builtin-schema", "vendor.github-workflows",
                             str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    import yaml

    workflow = yaml.safe_load(path.read_text())
    # it pushes: two runs of one branch must never regenerate and push at once
    assert workflow["concurrency"]["group"].endswith("-${{ github.ref }}")


def test_the_ci_examples_check_works_with_the_recipe_in_a_subfolder(tmp_path: Path) -> None:
    import yaml
    from actionrunner import run_action

    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = {step.get("name"): step for step in workflow["jobs"]["assets"]["steps"]}
    design = tmp_path / "design" / "brand"
    shutil.copytree(EXAMPLES, design, ignore=shutil.ignore_patterns(".flow", "assets", "*.lock",
                                                                     "ci"))
    # YAML at the root that is no recipe: the example must not try to validate it
    (tmp_path / "docker-compose.yml").write_text("services: {web: {image: nginx}}\n")
    check = steps["Check that nothing would be paid for (pull requests)"]["with"]
    assert check == {"recipe": "${{ env.RECIPE }}", "mode": "check"}
    status, context, uses = run_action({"recipe": "design/brand/brand_assets.yaml",
                                        "mode": check["mode"]}, workspace=tmp_path, env={})
    assert status == 4, context["log"]  # nothing cached: no call
    restore = next(u for u in uses if u["uses"] == "actions/cache/restore@v4")
    assert restore["path"] == "design/brand/.flow/cache"


def test_every_fault_kind_is_documented_in_one_list() -> None:
    from flowrunner.emulator.faults import FAULTS

    for kind in FAULTS:
        assert f"`{kind}`" in README, kind
    for command in (["emulator", "--help"], ["run", "--help"]):
        shown = "".join(flow(*command).out.split())  # click wraps at hyphens too
        assert all(kind in shown for kind in FAULTS), command


def test_the_changelog_has_the_version_and_the_version_lives_in_one_place() -> None:
    import tomllib

    from flowrunner import __version__

    changelog = (REPO / "CHANGELOG.md").read_text()
    assert f"## {__version__}" in changelog and "## Unreleased" in changelog
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"]  # read from flowrunner/__init__.py
    assert project["tool"]["hatch"]["version"]["path"] == "flowrunner/__init__.py"
    assert flow("--version").out.strip().endswith(__version__)
