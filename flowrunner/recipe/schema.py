"""JSON Schema checks: the recipe against recipe.schema.json, parameters against an endpoint's.

The only module that imports `jsonschema` / `referencing`. Returns problems as values
(paths and messages, or located Issues); never raises for invalid input.
"""

from __future__ import annotations

import difflib
import re
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported lazily: a valid recipe never needs jsonschema's messages
    import jsonschema


from .._json import canonical_json
from ..catalog.entries import Endpoint, recipe_schema, shared_definitions
from ..errors import Issue
from .source import PathKey, SourceMap, dotted

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


def _inline_refs(node: Any, resolve: Any) -> Any:
    """The schema with every `$ref` replaced by its target (ours are never recursive).

    Following references is most of jsonschema's cost here; inlining them once makes a
    10,000-step recipe validate several times faster.
    """
    if isinstance(node, dict):
        if "$ref" in node:
            target = _inline_refs(resolve(node["$ref"]), resolve)
            extra = {k: _inline_refs(v, resolve) for k, v in node.items() if k != "$ref"}
            return {**target, **extra}
        return {k: _inline_refs(v, resolve) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_refs(item, resolve) for item in node]
    return node


@cache
def _recipe_schema_inlined() -> dict[str, Any]:
    schema = recipe_schema()

    def resolve(ref: str) -> Any:
        target: Any = schema
        for part in ref.lstrip("#/").split("/"):
            target = target[part]
        return target

    inlined: dict[str, Any] = _inline_refs({k: v for k, v in schema.items() if k != "$defs"},
                                           resolve)
    return inlined


@cache
def _recipe_validator() -> jsonschema.Draft202012Validator:
    import jsonschema

    return jsonschema.Draft202012Validator(_recipe_schema_inlined())


@cache
def _recipe_fast_check() -> Any:
    """fastjsonschema's compiled check of the same schema: it only says valid or not, but
    faster than jsonschema; jsonschema then explains any failure in full. Compiled in
    memory once per process (about 15 ms); nothing is written anywhere."""
    import fastjsonschema

    return fastjsonschema.compile(_recipe_schema_inlined())


def _recipe_looks_valid(data: Any) -> bool:
    import fastjsonschema

    if data.get("version") is not True:  # fastjsonschema lets true pass for const 1
        try:
            _recipe_fast_check()(data)
            return True
        except fastjsonschema.JsonSchemaException:
            return False
    return False


def _resolve_shared(ref: str) -> Any:
    """Follow a `$ref` into the shared definition files (``<$id>#/$defs/<name>``)."""
    uri, _, pointer = ref.partition("#")
    documents = {doc["$id"]: doc for doc in shared_definitions()}
    target: Any = documents[uri]
    for part in pointer.strip("/").split("/"):
        if part:
            target = target[part]
    return target


_PROPERTY_VALIDATORS: dict[tuple[str, str], jsonschema.Draft202012Validator] = {}
_PROPERTY_CHECKS: dict[tuple[str, str], tuple[dict[str, Any], Any]] = {}
_VALUE_PROBLEMS: dict[tuple[str, str, str], list[tuple[PathKey, str, str | None]]] = {}


def _property_problems(endpoint: Endpoint, name: str, value: Any, *, remember: bool = True
                       ) -> list[tuple[PathKey, str, str | None]]:
    """Problems of one parameter value, remembered per distinct value (unless not
    ``remember``: a value each instance has its own of, a prompt, would only fill the
    table)."""
    memo_key: tuple[str, str, str] | None = None
    if remember:
        if isinstance(value, (str, int, float, bool)) or value is None:
            memo_key = (endpoint.identity, name, f"{type(value).__name__}:{value}")
        else:
            memo_key = (endpoint.identity, name, canonical_json(value))
        found = _VALUE_PROBLEMS.get(memo_key)
        if found is not None:
            return found
    fast = _PROPERTY_CHECKS.get((endpoint.identity, name))
    if fast is None:
        import fastjsonschema

        schema = _inline_refs(endpoint.params_schema["properties"][name], _resolve_shared)
        fast = (schema, fastjsonschema.compile(schema))
        _PROPERTY_CHECKS[(endpoint.identity, name)] = fast
    found = []
    import fastjsonschema

    try:
        fast[1](value)
    except fastjsonschema.JsonSchemaException:  # the verdict; jsonschema explains it below
        import jsonschema

        validator = _PROPERTY_VALIDATORS.get((endpoint.identity, name))
        if validator is None:
            validator = jsonschema.Draft202012Validator(fast[0])
            _PROPERTY_VALIDATORS[(endpoint.identity, name)] = validator
        for error in validator.iter_errors(value):
            for leaf in _leaf_errors(error):
                message, hint, path = _describe(leaf)
                if leaf.validator == "additionalProperties":
                    message = message.replace("unknown key", "unknown parameter")
                found.append(((name, *path), message, _sexagesimal_hint(value) or hint))
    if memo_key is not None:
        _VALUE_PROBLEMS[memo_key] = found
    return found


def _sexagesimal_hint(value: Any) -> str | None:
    """YAML 1.1 reads an unquoted `16:9` as 969 (base 60): say so where a ratio was meant."""
    if isinstance(value, int) and not isinstance(value, bool) and 60 <= value < 60 * 60:
        written = f"{value // 60}:{value % 60}"
        return f"YAML read the unquoted {written} as the number {value} (base 60): write " \
               f'"{written}" in quotes'
    return None


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value) if isinstance(value, str) else str(value).replace("'", "")
    return text if len(text) <= 60 else text[:57] + "..."


def _alternative(schema: Any) -> str | None:
    """One way of an anyOf/oneOf in words (`a whole number`, `'auto'`); None when it has
    no short description."""
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return _show(schema["const"])
    if "enum" in schema and len(schema["enum"]) <= 4:
        return " or ".join(_show(v) for v in schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, str) and kind in _TYPE_NAMES:
        low, high = schema.get("minimum"), schema.get("maximum")
        bounds = f" from {low} to {high}" if low is not None and high is not None else \
            f" of at least {low}" if low is not None else ""
        return _TYPE_NAMES[kind] + bounds
    return None


def _leaf_errors(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """For oneOf/anyOf, the sub-errors that say the most (deepest path, most specific)."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        deepest = max(len(e.absolute_path) for e in error.context)
        if deepest > len(error.absolute_path):
            from jsonschema.exceptions import best_match

            best = [e for e in error.context if len(e.absolute_path) == deepest]
            return [best_match(best)]
    return [error]


def _describe(error: jsonschema.ValidationError) -> tuple[str, str | None, PathKey]:
    """Turn one validation error into (message, hint, path to point at)."""
    path: PathKey = tuple(error.absolute_path)
    kind = error.validator
    value = error.instance
    if kind == "additionalProperties":
        schema = error.schema if isinstance(error.schema, dict) else {}
        allowed = sorted(schema.get("properties", {}))
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
        options = [str(o) for o in error.validator_value]  # type: ignore[union-attr]
        close = difflib.get_close_matches(str(value), options, n=1, cutoff=0.6)
        shown = ", ".join(options) if len(options) <= 8 else ", ".join(options[:8]) + ", …"
        hint = f"did you mean {close[0]!r}?" if close else f"allowed: {shown}"
        return f"{_show(value)} is not an allowed value", hint, path
    if kind == "const":
        return (f"{_show(value)} is not supported; expected {_show(error.validator_value)}",
                None, path)
    if kind == "type":
        expected = error.validator_value
        names = [expected] if isinstance(expected, str) else list(expected)  # type: ignore[arg-type]
        want = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        return f"expected {want}, got {_type_of(value)} {_show(value)}", None, path
    if kind == "pattern":
        return f"{_show(value)} does not match the pattern {error.validator_value}", None, path
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        words = {"minimum": "at least", "maximum": "at most",
                 "exclusiveMinimum": "more than", "exclusiveMaximum": "less than"}
        return f"{_show(value)} must be {words[kind]} {error.validator_value}", None, path
    if kind in ("minItems", "maxItems", "minLength", "maxLength", "minProperties"):
        sizes = {"minItems": ("at least", "items"), "maxItems": ("at most", "items"),
                 "minLength": ("at least", "characters"), "maxLength": ("at most", "characters"),
                 "minProperties": ("at least", "entries")}
        bound, unit = sizes[kind]
        return f"must have {bound} {error.validator_value} {unit}", None, path
    if kind == "multipleOf":
        return f"{_show(value)} must be a multiple of {error.validator_value}", None, path
    if kind in ("anyOf", "oneOf"):
        ways = [_alternative(way) for way in error.validator_value]  # type: ignore[union-attr]
        if ways and all(ways):
            return (f"expected {' or '.join(map(str, ways))}, got {_type_of(value)} "
                    f"{_show(value)}", None, path)
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
        where: PathKey = (*tuple(error.absolute_path), key)  # type: ignore[arg-type]
        issues.append(Issue(
            smap.key_at(where), f"{_dotted(where[:-1])}: invalid name {key!r}",
            "names start with a letter or _ and hold only letters, digits and _ "
            "(so templates can write steps.<name>)"))
    return issues


def _dotted(path: PathKey) -> str:
    return dotted(path) or "recipe"


def check_recipe_data(data: dict[str, Any], smap: SourceMap) -> list[Issue]:
    """Every violation of recipe.schema.json, each at the key or value it concerns."""
    if _recipe_looks_valid(data):
        return []
    return _located_issues(_recipe_validator(), data, smap)


@cache
def _endpoint_validator() -> jsonschema.Draft202012Validator:
    import jsonschema

    from ..catalog.resources import read_json

    return jsonschema.Draft202012Validator(read_json("endpoint.schema.json"))


def check_endpoint_data(data: Any, smap: SourceMap) -> list[Issue]:
    """Every violation of endpoint.schema.json in a recipe-local catalog entry, and of its
    own parameter schema by its model defaults, located in the entry."""
    issues = _located_issues(_endpoint_validator(), data, smap)
    if issues or not data.get("model_defaults"):
        return issues
    endpoint = Endpoint.from_dict(data, origin="checked")
    return [Issue(smap.at(path), f"{dotted(path)}: {message}", hint)
            for path, message, hint in model_default_problems(endpoint)]


def model_default_problems(endpoint: Endpoint) -> list[tuple[PathKey, str, str | None]]:
    """A model's defaults that its entry's own parameters refuse: one naming the model
    parameter (a default cannot swap the model), an unknown parameter, a value its schema
    refuses. (path in the entry, message, hint) each."""
    properties = endpoint.params_schema.get("properties", {})
    problems: list[tuple[PathKey, str, str | None]] = []
    for model, values in endpoint.model_defaults.items():
        for name, value in values.items():
            path: PathKey = ("model_defaults", model, name)
            if name == endpoint.model_param:
                problems.append((path, "a model's defaults cannot name the model",
                                 f"drop {name} here; set it in `defaults`"))
            elif name not in properties:
                problems.append((path, f"{name!r} is not a parameter of {endpoint.id}",
                                 "allowed: " + ", ".join(sorted(properties))))
            else:
                problems.extend((path, message, hint) for _, message, hint in
                                _property_problems(endpoint, name, value, remember=False))
    return problems


def _located_issues(validator: jsonschema.Draft202012Validator, data: Any,
                    smap: SourceMap) -> list[Issue]:
    issues: list[Issue] = []
    for error in validator.iter_errors(data):
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


def check_params(endpoint: Endpoint, params: dict[str, Any], *,
                 varying: frozenset[str] | None = None
                 ) -> list[tuple[PathKey, str, str | None]]:
    """Check parameters against the endpoint's schema.

    The top level (unknown, required and exclusive parameters) is checked here; each value
    against its property schema, remembered per distinct value.

    ``varying``: these parameters differ from a set already found valid with the same
    names (another instance of the same step): only their values, and the rules that read
    them, are checked.

    Returns:
        (path inside the parameters, message, hint) for each problem; empty when valid.
    """
    if varying is not None:
        return _varying_problems(endpoint, params, varying)
    schema = endpoint.params_schema
    properties = schema.get("properties", {})
    if not isinstance(params, dict):  # a templated `with:` can render to anything
        return [((), f"expected a mapping of parameters, got {_type_of(params)}",  # type: ignore[unreachable]
                 None)]
    problems = _top_level_problems(endpoint, params)
    for name, value in params.items():
        if name in properties:
            problems.extend(_property_problems(endpoint, name, value))
    problems.extend(_shape_problems(endpoint, params))
    if not problems:
        problems.extend(rule_problems(endpoint, params))
    return problems


def _top_level_problems(endpoint: Endpoint, params: dict[str, Any]
                        ) -> list[tuple[PathKey, str, str | None]]:
    """Unknown parameters (with the closest known name) and missing required ones."""
    schema = endpoint.params_schema
    properties = schema.get("properties", {})
    problems: list[tuple[PathKey, str, str | None]] = []
    if schema.get("additionalProperties") is False:
        for name in params:
            if name not in properties:
                close = difflib.get_close_matches(name, list(properties), n=1)
                hint = f"did you mean {close[0]!r}?" if close else \
                    f"`flow endpoints {endpoint.id}` lists its parameters"
                problems.append(((name,), f"unknown parameter {name!r}", hint))
    for name in schema.get("required", []):
        if name not in params:
            problems.append(((), f"missing required key {name!r}", None))
    # `anyOf: [{required: [a]}, {required: [b]}]`: one of the ways to call it
    ways = [way["required"] for way in schema.get("anyOf", []) if set(way) == {"required"}]
    if ways and not any(all(name in params for name in way) for way in ways):
        problems.append(((), "missing required key " + " or ".join(
            " + ".join(repr(name) for name in way) for way in ways), None))
    return problems


def _shape_problems(endpoint: Endpoint, params: dict[str, Any]
                    ) -> list[tuple[PathKey, str, str | None]]:
    """Parameters that cannot go together, and nested values a multipart body would drop."""
    problems: list[tuple[PathKey, str, str | None]] = []
    for group in endpoint.exclusive:
        present = [name for name in group if name in params]
        if len(present) > 1:
            problems.append(((present[-1],), f"{' and '.join(present)} cannot be combined",
                             f"drop {present[-1]!r} or {present[0]!r}"))
    if endpoint.body == "multipart" and not endpoint.json_form:
        for name, value in params.items():
            if name not in endpoint.files and name not in endpoint.json_text and \
                    isinstance(value, (dict, list)):
                problems.append(((name,), f"{name} is nested, and {endpoint.id} is sent as "
                                          "multipart, which carries flat fields only",
                                 "the provider would drop it: leave it out, or override the "
                                 "entry with a JSON form (`json_form`) in a recipe-local "
                                 "`catalog:`"))
    return problems


def _varying_problems(endpoint: Endpoint, params: dict[str, Any], varying: frozenset[str]
                      ) -> list[tuple[PathKey, str, str | None]]:
    """`check_params` of the parameters in ``varying`` and the rules that read them."""
    properties = endpoint.params_schema.get("properties", {})
    problems: list[tuple[PathKey, str, str | None]] = []
    multipart = endpoint.body == "multipart" and not endpoint.json_form
    for name in varying:
        if name not in params:
            continue
        value = params[name]
        if name in properties:  # a long text is one instance's own: not worth a memo
            problems.extend(_property_problems(
                endpoint, name, value, remember=not (isinstance(value, str) and len(value) > 64)))
        if multipart and name not in endpoint.files and name not in endpoint.json_text and \
                isinstance(value, (dict, list)):
            return check_params(endpoint, params)  # said in full there
    if not problems:
        problems.extend(rule_problems(endpoint, params, varying=varying))
    return problems


class _Shown(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


# per rule: the names its `when` and its `then` look at, both compiled, and `then` itself
_RULES: dict[tuple[str, int], tuple[tuple[str, ...], tuple[str, ...], Any, Any,
                                    dict[str, Any]]] = {}
# per endpoint: its rules for its provider kind, grouped by the names their `when` reads
_RULE_SETS: dict[str, list[tuple[tuple[str, ...], list[int]]]] = {}
_RULE_VERDICTS: dict[tuple[Any, ...], Any] = {}  # remembered `when` and `then` verdicts
_ABSENT = "\u0000absent"  # a parameter left out (never a value a recipe renders)


def _mentioned(schema: Any) -> set[str]:
    """The parameter names a rule's schema looks at (under `properties` and `required`)."""
    found: set[str] = set()
    if isinstance(schema, dict):
        found.update(schema.get("properties", {}))
        found.update(n for n in schema.get("required", ()) if isinstance(n, str))
        for key, value in schema.items():
            if key not in ("properties", "required"):
                found |= _mentioned(value)
    elif isinstance(schema, list):
        for item in schema:
            found |= _mentioned(item)
    return found


class _CompiledWhenUsed:
    """A `then` schema's check, compiled when first called: most rules' `when` never
    holds in a run (they are about other models), and compiling costs half a millisecond
    of every run's start."""

    __slots__ = ("schema", "check")

    def __init__(self, schema: Any) -> None:
        self.schema = schema
        self.check: Any = None

    def __call__(self, params: Any) -> Any:
        if self.check is None:
            import fastjsonschema

            self.check = fastjsonschema.compile(self.schema, formats=_rule_formats(self.schema))
        return self.check(params)


def _compiled_rule(endpoint: Endpoint, number: int) -> tuple[tuple[str, ...], tuple[str, ...],
                                                              Any, Any, dict[str, Any]]:
    import fastjsonschema

    compiled = _RULES.get((endpoint.identity, number))
    if compiled is None:
        rule = endpoint.rules[number]
        when = _inline_refs(rule.when, _resolve_shared)
        then = _inline_refs(rule.then, _resolve_shared)
        compiled = (tuple(sorted(_mentioned(when))), tuple(sorted(_mentioned(then))),
                    fastjsonschema.compile(when, formats=_rule_formats(when)),
                    _CompiledWhenUsed(then), then)
        _RULES[(endpoint.identity, number)] = compiled
    return compiled


_SIZE_FORMAT = re.compile(r"size/(\d+)/(\d+)/(\d+)x(\d+)")


def _rule_formats(schema: Any) -> dict[str, Any]:
    """The formats a rule may use beyond JSON Schema's, found in ``schema``:
    `size/M/R/WxH`, an image size `WIDTHxHEIGHT` whose sides are multiples of M, whose
    aspect ratio is at most R:1 either way, and which fits W×H pixels with no side over
    max(W, H) (OpenAI's gpt-image-2 sizes: `size/16/3/3840x2160`)."""
    found: dict[str, Any] = {}
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            name = node.get("format")
            if isinstance(name, str) and _SIZE_FORMAT.fullmatch(name):
                found[name] = _size_check(*map(int, _SIZE_FORMAT.fullmatch(name).groups()))  # type: ignore[union-attr]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _size_check(multiple: int, ratio: int, width: int, height: int) -> Any:
    def check(value: str) -> bool:
        match = re.fullmatch(r"(\d+)x(\d+)", value)
        if not match:
            return False
        w, h = int(match.group(1)), int(match.group(2))
        return (w > 0 and h > 0 and w % multiple == 0 and h % multiple == 0
                and max(w, h) <= ratio * min(w, h) and w * h <= width * height
                and max(w, h) <= max(width, height))

    return check


def _memo_value(value: Any) -> Any:
    """A hashable stand-in for a parameter value that tells apart what JSON tells apart
    (`1`, `1.0` and `true` are one key in a dict, three values to a schema)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return type(value).__name__, value
    return "json", canonical_json(value)


def _holds(memo_key: tuple[Any, ...] | None, check: Any, params: dict[str, Any]) -> bool:
    """Whether ``params`` pass ``check``, remembered under ``memo_key`` (None: not)."""
    import fastjsonschema

    verdict = _RULE_VERDICTS.get(memo_key) if memo_key is not None else None
    if verdict is None:
        try:
            check(params)
            verdict = True
        except fastjsonschema.JsonSchemaException:
            verdict = False
        if memo_key is not None:
            _RULE_VERDICTS[memo_key] = verdict
    return bool(verdict)


def _rule_groups(endpoint: Endpoint) -> list[tuple[tuple[str, ...], list[int]]]:
    """The endpoint's rules for its provider kind, grouped by the names their `when` reads
    (each rule compiled on first use)."""
    groups = _RULE_SETS.get(endpoint.identity)
    if groups is None:
        by_names: dict[tuple[str, ...], list[int]] = {}
        for number, rule in enumerate(endpoint.rules):
            if rule.kinds and endpoint.kind not in rule.kinds:
                continue
            by_names.setdefault(_compiled_rule(endpoint, number)[0], []).append(number)
        groups = _RULE_SETS[endpoint.identity] = list(by_names.items())
    return groups


def _groups_reading(endpoint: Endpoint, varying: frozenset[str]
                    ) -> list[tuple[tuple[str, ...], list[int]]]:
    """The endpoint's rules that may decide otherwise when only the names in ``varying``
    change: a group whose `when` reads one of them whole, else the group's rules whose
    `then` reads one (the rest decide the same for every instance of a step)."""
    memo_key = (endpoint.identity, "reading", varying)
    found = _RULE_VERDICTS.get(memo_key)
    if found is None:
        found = []
        for names, numbers in _rule_groups(endpoint):
            if not varying.intersection(names):
                numbers = [n for n in numbers
                           if varying.intersection(_RULES[(endpoint.identity, n)][1])]
            if numbers:
                found.append((names, numbers))
        _RULE_VERDICTS[memo_key] = found
    return list(found)


def _broken_rules(endpoint: Endpoint, params: dict[str, Any], *,
                  varying: frozenset[str] | None = None) -> list[int]:
    """The numbers of the rules ``params`` break. Each `when` is decided (and remembered)
    by the values of the few names it reads, usually just the model, so a batch of
    thousands of instances checks a rule's `then` only where its `when` holds, and then
    once per distinct value of what `then` reads."""
    groups = _rule_groups(endpoint) if varying is None else _groups_reading(endpoint, varying)
    identity = endpoint.identity
    broken: list[int] = []
    for names, numbers in groups:
        values = tuple(_memo_value(params.get(name, _ABSENT)) for name in names)
        applying = _RULE_VERDICTS.get((identity, names, values))
        if applying is None:  # the rules of this group whose `when` holds for these values
            applying = _RULE_VERDICTS[(identity, names, values)] = tuple(
                n for n in numbers if _holds((identity, n, "when", values),
                                             _RULES[(identity, n)][2], params))
        for number in applying:
            _, then_names, _, then_check, _ = _RULES[(identity, number)]
            if varying is not None and varying.intersection(then_names):
                # a value that varies per instance (a prompt): remembering it would not pay
                if not _holds(None, then_check, params):
                    broken.append(number)
                continue
            then_values = tuple(_memo_value(params.get(name, _ABSENT)) for name in then_names)
            if not _holds((identity, number, "then", then_values), then_check, params):
                broken.append(number)
    return sorted(broken)


def rule_problems(endpoint: Endpoint, params: dict[str, Any], *,
                  varying: frozenset[str] | None = None
                  ) -> list[tuple[PathKey, str, str | None]]:
    """The endpoint's per-model rules that ``params`` break (those for its provider kind);
    with ``varying``, only the rules that read one of those names."""
    problems: list[tuple[PathKey, str, str | None]] = []
    for number in _broken_rules(endpoint, params, varying=varying):
        import jsonschema

        rule = endpoint.rules[number]
        at: PathKey = (rule.at,) if rule.at else ()
        if not rule.at:  # where: jsonschema's first error (it knows no custom formats)
            then = _RULES[(endpoint.identity, number)][4]
            error = next(iter(jsonschema.Draft202012Validator(then).iter_errors(params)), None)
            at = tuple(error.absolute_path)[:1] if error is not None else ()
        shown = _Shown({k: v if isinstance(v, str) else canonical_json(v)
                        for k, v in params.items()})
        problems.append((at, rule.message.format_map(shown),
                         rule.hint.format_map(shown) if rule.hint else None))
    return problems


def no_save_problem(endpoint: Endpoint, params: dict[str, Any]) -> tuple[str, str | None] | None:
    """(message, hint) when a step with these parameters never has files to save (the
    entry's `no_save`: Midjourney's Custom Zoom); None otherwise. The message is formatted
    with the parameters; the hint is shown as written."""
    import jsonschema

    rule = endpoint.no_save
    if rule is None or not jsonschema.Draft202012Validator(rule.when).is_valid(params):
        return None
    shown = _Shown({k: v if isinstance(v, str) else canonical_json(v)
                    for k, v in params.items()})
    return rule.message.format_map(shown), rule.hint


def resolve_param_schema(endpoint: Endpoint, name: str) -> dict[str, Any]:
    """One parameter's schema with its `$ref` followed, for help output."""
    prop: dict[str, Any] = endpoint.params_schema.get("properties", {}).get(name, {})
    ref = prop.get("$ref")
    if not ref:
        return prop
    resolved = dict(_resolve_shared(ref))
    resolved.update({k: v for k, v in prop.items() if k != "$ref"})
    return resolved
