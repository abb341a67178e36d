"""Finds the data files of `schemas/` inside the installed package. Imports only errors.

The wheel maps the repository's top-level `schemas/` to `flowrunner/_schemas` (pyproject's
force-include). A source checkout or an editable install has no `_schemas`, so there the
top-level folder itself is used.
"""

from __future__ import annotations

import importlib.resources
import json
from functools import cache
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from ..errors import NoSuchSchemaError


@cache
def schemas_root() -> Traversable:
    try:
        return importlib.resources.files("flowrunner._schemas")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "schemas"


def read_json(*parts: str) -> Any:
    node = schemas_root()
    for part in parts:  # one at a time: Python 3.11's MultiplexedPath takes one
        node = node.joinpath(part)
    try:
        return json.loads(node.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NoSuchSchemaError("/".join(parts)) from None


def iter_endpoint_files() -> list[tuple[str, Traversable]]:
    """(provider folder, file) for every catalog entry, sorted.

    Files starting with _ hold shared definitions.
    """
    base = schemas_root().joinpath("endpoints")
    found = []
    for folder in base.iterdir():
        if folder.is_dir():
            for entry in folder.iterdir():
                if entry.name.endswith(".json"):
                    found.append((folder.name, entry))
    return sorted(found, key=lambda item: (item[0], item[1].name))
