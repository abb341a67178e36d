"""`flow schema`: the recipe JSON Schema, for editors."""

from __future__ import annotations

import json
from typing import TextIO

from ..catalog import recipe_schema


def print_schema(*, out: TextIO) -> int:
    """`flow schema`: the recipe JSON Schema, for editors."""
    json.dump(recipe_schema(), out, indent=2)
    out.write("\n")
    return 0
