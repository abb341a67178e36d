"""`flow init`: a commented starter recipe that validates and runs with --mock."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TextIO

from ..catalog.entries import recipe_schema
from ..errors import UsageError
from ..recipe.editorschema import editor_schema
from ..store.cache import create_new

STARTER = """\
# yaml-language-server: $schema=recipe.schema.json
#
# A flowrunner recipe. Try it offline:   flow run {file} --mock
# Real calls need your key:             export ELKAPI_API_KEY=sk-...; flow run {file}
# Endpoints and their parameters:       flow endpoints [ID]
version: 1
name: {name}

vars:                      # read as vars.<name>; override with --var brand=Other
  brand: {title}
  sizes: [1024x1024, 1820x1024]

concurrency: 4             # calls at once
output_dir: assets         # where `save` writes, beside this file

steps:                     # keyed by step id; order comes from the dependencies
  logo:
    uses: recraft.generate_image
    with:
      prompt: "Minimal flat logo for {{{{ vars.brand }}}}, bold shapes, plain background"
      style: digital_illustration
      size: 1024x1024
    save: logo.png

  logo_clean:              # reads the logo's file, so it runs after it
    uses: recraft.remove_background
    with:
      image: "{{{{ steps.logo.files[0] }}}}"
    save: logo-transparent.png

  banner:                  # one instance per size
    uses: recraft.generate_image
    matrix:
      size: "{{{{ vars.sizes }}}}"
    with:
      prompt: "Wide banner for {{{{ vars.brand }}}}"
      size: "{{{{ matrix.size }}}}"
    save: "banner-{{{{ matrix.size }}}}.png"
"""


def init_recipe(name: str, *, folder: Path, out: TextIO) -> int:
    """`flow init`: write a commented starter recipe (and the schema editors read).

    Raises:
        UsageError: the file exists already.
    """
    import shlex

    relative = name[:-5] if name.endswith(".yaml") else name
    target = (folder / f"{relative}.yaml").resolve()
    stem = target.stem
    title = stem.replace("_", " ").replace("-", " ").title()
    target.parent.mkdir(parents=True, exist_ok=True)
    text = STARTER.format(file=target.name, name=stem, title=title)
    if not create_new(target, text.encode()):  # never over a file that is there
        raise UsageError(f"{os.path.relpath(target)} exists already",
                         hint="pick another name: flow init NAME")
    # beside the recipe, where git keeps it (`.flow/` is ignored), so teammates' editors
    # find it too
    schema_file = target.parent / "recipe.schema.json"
    schema_file.write_text(json.dumps(editor_schema(recipe_schema()), indent=2) + "\n",
                           encoding="utf-8")
    shown, schema_shown = os.path.relpath(target), os.path.relpath(schema_file)
    out.write(f"wrote {shown} (and {schema_shown} for editors)\n"
              f"next: flow run {shlex.quote(shown)} --mock\n")
    return 0
