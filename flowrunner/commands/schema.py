"""`flow schema`: the recipe JSON Schema, for editors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from ..catalog.entries import recipe_schema
from ..recipe.editorschema import editor_schema


def print_schema(*, out: TextIO, output: Path | None = None) -> int:
    """`flow schema`: the recipe JSON Schema, for editors, with every built-in endpoint's
    parameters (what `schemas/recipe.schema.json` ships). With ``output``, written there
    atomically once made (`flow schema > schemas/recipe.schema.json` would empty the file
    the schema is made from before reading it)."""
    text = json.dumps(editor_schema(recipe_schema()), indent=2) + "\n"
    if output is None:
        out.write(text)
    else:
        from ..store.cache import write_if_changed

        write_if_changed(output, text)
    return 0
