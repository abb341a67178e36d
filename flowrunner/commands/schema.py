"""`flow schema`: the recipe JSON Schema, for editors."""

from __future__ import annotations

import json
from typing import TextIO

from ..catalog import recipe_schema
from ..editorschema import editor_schema


def print_schema(*, out: TextIO) -> int:
    """`flow schema`: the recipe JSON Schema, for editors, with every built-in endpoint's
    parameters (what `schemas/recipe.schema.json` ships)."""
    json.dump(editor_schema(recipe_schema()), out, indent=2)
    out.write("\n")
    return 0
