"""The editor schema (`flow schema`, `schemas/recipe.schema.json`) knows the catalog: a
standard JSON Schema validator, as an editor runs it, flags what it can of what
`flow validate` flags, and nothing in a valid recipe."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from flowrunner.commands.schema import print_schema

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "recipes" / "invalid"
# what a JSON Schema can see: shapes, names and values; not templates, the graph or YAML
CATCHABLE = {"alias_bomb", "bad_params", "bad_version", "empty", "missing_param",
             "not_mapping", "unknown_endpoint", "unknown_key", "unknown_param", "wrong_type"}


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((ROOT / "schemas" / "recipe.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_shipped_file_is_what_flow_schema_prints() -> None:
    out = io.StringIO()
    print_schema(out=out)
    assert (ROOT / "schemas" / "recipe.schema.json").read_text() == out.getvalue(), \
        "the catalog changed: run `flow schema -o schemas/recipe.schema.json`"


def test_examples_are_valid_for_an_editor(validator) -> None:
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
        assert errors == [], path


def test_the_broken_recipe_corpus_is_flagged_where_a_schema_can_see_it(validator) -> None:
    caught = set()
    for path in sorted(CORPUS.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_bytes())
        except (yaml.YAMLError, UnicodeDecodeError):
            continue  # the editor's YAML parser reports these itself
        if any(validator.iter_errors(data)):
            caught.add(path.stem)
    assert caught == CATCHABLE


def test_parameters_are_checked_per_endpoint_and_templates_pass(validator) -> None:
    def errors(step: dict[str, object], **top: object) -> list[str]:
        recipe = {"version": 1, "steps": {"logo": step}, **top}
        return [e.message for e in validator.iter_errors(recipe)]

    assert errors({"uses": "recraft.generate_image",
                   "with": {"prompt": "a fox", "style": "digital_illustration",
                            "size": "{{ matrix.size }}", "n": "{{ vars.n }}"}}) == []
    assert errors({"uses": "recraft.generate_image", "with": {"prompt": "a", "size": "999x1"}})
    assert errors({"uses": "recraft.generate_image", "with": {"prompt": "a", "colour": "red"}})
    assert errors({"uses": "recraft.vectorize", "with": {}})  # image is required
    # a recipe with its own catalog may define endpoints the built-in list lacks
    assert errors({"uses": "acme.generate", "with": {"x": 1}}, catalog=["acme.json"]) == []
    assert errors({"uses": "acme.generate", "with": {"x": 1}})


def test_completion_sees_endpoint_ids_and_allowed_values() -> None:
    schema = json.loads((ROOT / "schemas" / "recipe.schema.json").read_text())
    assert "recraft.generate_image" in schema["$defs"]["step"]["properties"]["uses"]["examples"]
    size = schema["$defs"]["with:recraft.generate_image"]["properties"]["size"]
    assert "1024x1024" in size["anyOf"][0]["enum"] and size.get("description")
