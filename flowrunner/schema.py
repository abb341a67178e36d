"""JSON Schema checks: the recipe against recipe.schema.json, parameters against an endpoint's.

The only module that imports `jsonschema` / `referencing`. Returns problems as values
(paths and messages, or located Issues); never raises for invalid input.
"""

from __future__ import annotations

import difflib
from functools import cache
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from .catalog import Endpoint, recipe_schema, shared_definitions
from .errors import Issue
from .source import PathKey, SourceMap

_TYPE_NAMES = {
    "string": "a string", "integer": "a whole number", "number": "a number",
    "boolean": "true or false", "array": "a list", "object": "a mapping", "null": "null",
}


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "null"


@cache
def _registry() -> Registry:
    resources = [(doc["$id"], Resource.from_contents(doc, default_specification=DRAFT202012))
                 for doc in shared_definitions()]
    return Registry().with_resources(resources)  # type: ignore[no-any-return]


@cache
def _recipe_validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(recipe_schema())


_PARAM_VALIDATORS: dict[str, jsonschema.Draft202012Validator] = {}


def _param_validator(endpoint: Endpoint) -> jsonschema.Draft202012Validator:
    validator = _PARAM_VALIDATORS.get(endpoint.id)
    if validator is None:
        validator = jsonschema.Draft202012Validator(endpoint.params_schema, registry=_registry())
        _PARAM_VALIDATORS[endpoint.id] = validator
    return validator


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value).replace("'", "")
    return text if len(text) <= 60 else text[:57] + "..."


def _leaf_errors(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """For oneOf/anyOf, the sub-errors that say the most (deepest path, most specific)."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        deepest = max(len(e.absolute_path) for e in error.context)
        if deepest > len(error.absolute_path):
            best = [e for e in error.context if len(e.absolute_path) == deepest]
            return [jsonschema.exceptions.best_match(best)]
    return [error]


def _describe(error: jsonschema.ValidationError, schema_props: dict[str, Any] | None = None
              ) -> tuple[str, str | None, PathKey]:
    """Turn one validation error into (message, hint, path to point at)."""
    path: PathKey = tuple(error.absolute_path)
    kind = error.validator
    value = error.instance
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(value) - set(allowed)) if isinstance(value, dict) else []
        name = extra[0] if extra else "?"
        close = difflib.get_close_matches(name, allowed, n=1)
        hint = f"did you mean {close[0]!r}?" if close else (
            "allowed keys: " + ", ".join(allowed) if allowed else None)
        return f"unknown key {name!r}", hint, (*path, name)
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"missing required key {missing!r}", None, path
    if kind == "enum":
        options = [str(o) for o in error.validator_value]
        close = difflib.get_close_matches(str(value), options, n=1, cutoff=0.6)
        shown = ", ".join(options) if len(options) <= 8 else ", ".join(options[:8]) + ", …"
        hint = f"did you mean {close[0]!r}?" if close else f"allowed: {shown}"
        return f"{_show(value)} is not an allowed value", hint, path
    if kind == "const":
        return (f"{_show(value)} is not supported; expected {_show(error.validator_value)}",
                None, path)
    if kind == "type":
        expected = error.validator_value
        names = [expected] if isinstance(expected, str) else list(expected)
        want = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        return f"expected {want}, got {_type_of(value)} {_show(value)}", None, path
    if kind == "pattern":
        return f"{_show(value)} does not match the pattern {error.validator_value}", None, path
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        words = {"minimum": "at least", "maximum": "at most",
                 "exclusiveMinimum": "more than", "exclusiveMaximum": "less than"}
        return f"{_show(value)} must be {words[kind]} {error.validator_value}", None, path
    if kind in ("minItems", "maxItems", "minLength", "maxLength", "minProperties"):
        words = {"minItems": ("at least", "items"), "maxItems": ("at most", "items"),
                 "minLength": ("at least", "characters"), "maxLength": ("at most", "characters"),
                 "minProperties": ("at least", "entries")}
        bound, unit = words[kind]
        return f"must have {bound} {error.validator_value} {unit}", None, path
    if kind == "multipleOf":
        return f"{_show(value)} must be a multiple of {error.validator_value}", None, path
    if kind == "propertyNames":
        bad = error.instance if isinstance(error.instance, str) else "?"
        return f"invalid name {bad!r}: {error.message}", None, path
    return error.message, None, path


def _name_issues(error: jsonschema.ValidationError, smap: SourceMap
                 ) -> list[Issue] | None:
    """propertyNames errors name the offending key, which jsonschema does not put in the path."""
    if error.validator != "propertyNames" or not error.context:
        return None
    issues = []
    for sub in error.context:
        key = sub.instance
        where = (*tuple(error.absolute_path), key)
        issues.append(Issue(
            smap.key_at(where), f"{_dotted(where[:-1])}: invalid name {key!r}",
            "names start with a letter or _ and hold only letters, digits and _ "
            "(so templates can write steps.<name>)"))
    return issues


def _dotted(path: PathKey) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "recipe"


def check_recipe_data(data: dict[str, Any], smap: SourceMap) -> list[Issue]:
    """Every violation of recipe.schema.json, each at the key or value it concerns."""
    issues: list[Issue] = []
    for error in _recipe_validator().iter_errors(data):
        named = _name_issues(error, smap)
        if named is not None:
            issues.extend(named)
            continue
        for leaf in _leaf_errors(error):
            message, hint, path = _describe(leaf)
            if leaf.validator == "additionalProperties":
                where = smap.key_at(path)
                path = path[:-1]
            else:
                where = smap.at(path)
            if path == ("version",) and leaf.validator == "const":
                hint = "this flowrunner reads recipe format version 1"
            issues.append(Issue(where, f"{_dotted(path)}: {message}", hint))
    return issues


def check_params(endpoint: Endpoint, params: dict[str, Any]) -> list[tuple[PathKey, str, str | None]]:
    """Check parameters against the endpoint's schema.

    Returns:
        (path inside the parameters, message, hint) for each problem; empty when valid.
    """
    problems: list[tuple[PathKey, str, str | None]] = []
    for error in _param_validator(endpoint).iter_errors(params):
        for leaf in _leaf_errors(error):
            message, hint, path = _describe(leaf)
            if leaf.validator == "additionalProperties":
                message = message.replace("unknown key", "unknown parameter")
                if hint and hint.startswith("allowed keys"):
                    hint = f"`flow endpoints {endpoint.id}` lists its parameters"
            problems.append((path, message, hint))
    for group in endpoint.exclusive:
        present = [name for name in group if name in params]
        if len(present) > 1:
            problems.append(((present[-1],), f"{' and '.join(present)} cannot be combined",
                             f"drop {present[-1]!r} or {present[0]!r}"))
    return problems


def resolve_param_schema(endpoint: Endpoint, name: str) -> dict[str, Any]:
    """One parameter's schema with its `$ref` followed, for help output."""
    prop: dict[str, Any] = endpoint.params_schema.get("properties", {}).get(name, {})
    ref = prop.get("$ref")
    if not ref:
        return prop
    resolved = dict(_registry().resolver().lookup(ref).contents)
    resolved.update({k: v for k, v in prop.items() if k != "$ref"})
    return resolved
