"""The recipe schema editors read: the hand-written `recipe.schema.json` plus, for every
built-in endpoint, its `with` parameters (types, allowed values, descriptions) under an
`if uses = ID then ...`, so an editor completes endpoint ids, parameter names, styles and
sizes and flags unknown or mistyped parameters while the recipe is typed.

The generated part sits in the root's `allOf` and in `$defs` entries named `with:<id>`;
`catalog.recipe_schema` takes it off again for `flow validate`, which checks parameters
itself (with better messages). `flow schema -o schemas/recipe.schema.json` regenerates the
shipped file after a catalog change (a test says when it is due). A recipe with its own
`catalog:` gets only the hand-written part: its entries may add or change endpoints the
built-in list does not know.
"""

from __future__ import annotations

import copy
from collections.abc import Set as AbstractSet
from typing import Any

from ..catalog.entries import GENERATED_DEFS, load_catalog, shared_definitions

# a value the recipe computes: its type is known only once it renders
_TEMPLATED = {"type": "string", "pattern": r"\{\{|\{%",
              "description": "A Jinja template: its value is checked when the recipe renders."}


def editor_schema(base: dict[str, Any]) -> dict[str, Any]:
    """``base`` (the hand-written schema, `catalog.recipe_schema()`) with every built-in
    endpoint's parameters."""
    schema = copy.deepcopy(base)
    documents = {doc["$id"]: doc for doc in shared_definitions() if "$id" in doc}
    endpoints = sorted(load_catalog().values(), key=lambda e: e.id)
    conditionals = []
    for endpoint in endpoints:
        name = GENERATED_DEFS + endpoint.id
        schema["$defs"][name] = _with_schema(endpoint.params_schema, documents,
                                             defaulted=set(endpoint.defaults))
        conditionals.append({"if": {"properties": {"uses": {"const": endpoint.id}},
                                    "required": ["uses"]},
                             "then": {"properties": {"with": {"$ref": f"#/$defs/{name}"}}}})
    uses = schema["$defs"]["step"]["properties"]["uses"]
    uses["examples"] = [e.id for e in endpoints]
    step_with_catalog = {"properties": {
        "uses": {"enum": [e.id for e in endpoints],
                 "description": "A built-in endpoint id (`flow endpoints` lists them)."}},
        "allOf": conditionals}
    schema["allOf"] = [{
        "if": {"not": {"required": ["catalog"]}},
        "then": {"properties": {"steps": {"additionalProperties": step_with_catalog}}}}]
    return schema


def _with_schema(params: dict[str, Any], documents: dict[str, Any], *,
                 defaulted: AbstractSet[str] = frozenset()) -> dict[str, Any]:
    """An endpoint's parameter schema, self-contained, any value in it also allowed to be
    a template; a required parameter the entry gives a default for may be left out."""
    resolved = _resolve(params, documents, base=None)
    out = _templatable_parts({k: v for k, v in resolved.items() if k not in ("$defs", "$id")})
    if defaulted and "required" in out:
        out["required"] = [name for name in out["required"] if name not in defaulted]
    return out


def _or_template(prop: Any) -> Any:
    """``prop``, or a template in its place (and in its parts' places)."""
    if not isinstance(prop, dict):
        return prop
    inner = _templatable_parts({k: v for k, v in prop.items()
                                if k not in ("title", "description")})
    wrapped: dict[str, Any] = {k: prop[k] for k in ("title", "description") if k in prop}
    wrapped["anyOf"] = [inner, _TEMPLATED]
    return wrapped


def _templatable_parts(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with each of its properties, items and branches template-able."""
    out = dict(schema)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: _or_template(v) for k, v in out["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = _or_template(out[key])
    for key in ("anyOf", "oneOf"):
        if isinstance(out.get(key), list):
            out[key] = [_templatable_parts(b) if isinstance(b, dict) else b for b in out[key]]
    return out


def _resolve(node: Any, documents: dict[str, Any], *, base: dict[str, Any] | None) -> Any:
    """``node`` with every `$ref` (to a shared definition document) replaced by its target."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            address, _, pointer = ref.partition("#")
            document = documents[address] if address else base
            target: Any = document
            for part in filter(None, pointer.split("/")):
                target = target[part]
            merged = {**_resolve(target, documents, base=document),
                      **{k: v for k, v in node.items() if k != "$ref"}}
            return merged
        return {k: _resolve(v, documents, base=base) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(item, documents, base=base) for item in node]
    return node
