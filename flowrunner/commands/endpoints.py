"""`flow endpoints [ID]`: the catalog (with a recipe's own entries), or one endpoint's
parameters, the providers that serve it, where its entry comes from and how sure its facts
are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from ..catalog.entries import Endpoint, find_endpoint, load_catalog
from ..recipe.schema import resolve_param_schema
from ..recipe.spec import load_recipe_catalog


def _routes(endpoint: Endpoint) -> list[dict[str, Any]]:
    routes = []
    for kind in endpoint.kinds:
        variant = endpoint.for_kind(kind)
        routes.append({"provider": kind, "method": variant.method, "path": variant.path,
                       "body": variant.body,
                       "files": {n: f.field for n, f in variant.files.items()}})
    return routes


def _summary(endpoint: Endpoint) -> dict[str, Any]:
    return {"id": endpoint.id, "title": endpoint.title, "method": endpoint.method,
            "path": endpoint.path, "task": endpoint.task is not None,
            "providers": list(endpoint.kinds), "source": endpoint.origin,
            "confidence": endpoint.confidence}


def _models(endpoint: Endpoint, on: Any) -> list[dict[str, Any]]:
    return [{"name": m.name, "state": m.state(on),
             "deprecated": m.deprecated.isoformat() if m.deprecated else None,
             "retired": m.retired.isoformat() if m.retired else None,
             "successor": m.successor, "source": m.source,
             "default": endpoint.defaults.get(endpoint.model_param) == m.name}
            for m in endpoint.models.values()]


def show_models(catalog: dict[str, Endpoint], *, as_json: bool, out: TextIO) -> int:
    """`flow endpoints --models`: each endpoint's known models and their state today."""
    from ..catalog.models import today

    on = today()
    listed = {e.id: _models(e, on) for e in catalog.values() if e.models}
    if as_json:
        json.dump({"date": on.isoformat(), "endpoints": listed}, out, indent=2)
        out.write("\n")
        return 0
    out.write(f"models as of {on.isoformat()} (FLOW_TODAY=YYYY-MM-DD shows another day):\n")
    for endpoint_id in listed:
        endpoint = catalog[endpoint_id]
        out.write(f"\n{endpoint_id} ({endpoint.model_param}):\n")
        for model in endpoint.models.values():
            default = "  (default)" if endpoint.defaults.get(endpoint.model_param) == \
                model.name else ""
            out.write(f"  {model.describe(on)}{default}\n")
    return 0


def show_endpoints(endpoint_id: str | None, *, as_json: bool, out: TextIO,
                   recipe: Path | None = None, models: bool = False) -> int:
    """`flow endpoints [ID] [--recipe R] [--models]`: the catalog, one endpoint in full,
    or every endpoint's models with their state.

    Raises:
        UnknownEndpointError: no such id.
        SpecError: the recipe's own catalog entries are broken.
    """
    catalog = load_recipe_catalog(recipe) if recipe is not None else load_catalog()
    if models:
        chosen = {endpoint_id: find_endpoint(endpoint_id, catalog)} if endpoint_id else catalog
        return show_models(chosen, as_json=as_json, out=out)
    if endpoint_id is None:
        _write_catalog(catalog, as_json=as_json, out=out)
        return 0
    endpoint = find_endpoint(endpoint_id, catalog)
    if as_json:
        json.dump(_details(endpoint), out, indent=2)
        out.write("\n")
        return 0
    _write_calls(endpoint, out)
    _write_params(endpoint, out)
    _write_facts(endpoint, out)
    return 0


def _write_catalog(catalog: dict[str, Endpoint], *, as_json: bool, out: TextIO) -> None:
    """Write the catalog: one summary per endpoint, as JSON or as aligned lines."""
    if as_json:
        json.dump([_summary(e) for e in catalog.values()], out, indent=2)
        out.write("\n")
        return
    width = max(len(k) for k in catalog)
    for endpoint in catalog.values():
        kind = " (task: submit, then poll)" if endpoint.task else ""
        origin = "" if endpoint.origin == "built in" else f"  [from {endpoint.origin}]"
        facts = f"  ({endpoint.confidence})" if endpoint.evidence else ""
        out.write(f"{endpoint.id:<{width}}  {endpoint.title}{kind}{facts}{origin}\n")
    out.write("\n`flow endpoints ID` shows an endpoint's parameters, routes and the "
              "evidence for them.\n")


def _details(endpoint: Endpoint) -> dict[str, Any]:
    """One endpoint in full, as `flow endpoints ID --json` prints it."""
    return {**_summary(endpoint), "body": endpoint.body,
            "files": sorted(endpoint.files), "params": endpoint.params_schema,
            "defaults": endpoint.defaults, "model_defaults": endpoint.model_defaults,
            "routes": _routes(endpoint),
            "evidence": endpoint.evidence, "outputs": endpoint.output_names}


def _write_calls(endpoint: Endpoint, out: TextIO) -> None:
    """Write how the endpoint is called: its entry, each provider's route, what is sent
    by default and its models."""
    out.write(f"{endpoint.id} — {endpoint.title}\n")
    if endpoint.description:
        out.write(f"  {endpoint.description}\n")
    out.write(f"  entry: {endpoint.origin}; facts: {endpoint.confidence}\n")
    for route in _routes(endpoint):
        fields = ", ".join(f"{n} as `{f}`" for n, f in route["files"].items())
        out.write(f"  {route['provider']:<8} {route['method']} {route['path']}  "
                  f"({route['body']} body" + (", submit then poll" if endpoint.task else "")
                  + (f"; uploads {fields}" if fields else "") + ")\n")
    if endpoint.defaults:
        shown = ", ".join(f"{k}: {v}" for k, v in endpoint.defaults.items())
        out.write(f"  sent unless the recipe says otherwise: {shown}\n")
    for name, values in endpoint.model_defaults.items():
        shown = ", ".join(f"{k}: {v}" for k, v in values.items())
        out.write(f"    with {endpoint.model_param} {name}: {shown}\n")
    if endpoint.models:
        from ..catalog.models import today

        out.write(f"  models ({endpoint.model_param}), as of {today().isoformat()}:\n")
        for model in endpoint.models.values():
            out.write(f"    {model.describe(today())}\n")
    out.write("\n")


def _write_params(endpoint: Endpoint, out: TextIO) -> None:
    """Write the endpoint's parameters: each one's type and bounds, whether it is
    required or a file, and its description."""
    out.write("parameters:\n")
    required = set(endpoint.params_schema.get("required", []))
    for name in endpoint.param_names:
        schema = resolve_param_schema(endpoint, name)
        flags = []
        if name in required:
            flags.append("required")
        if name in endpoint.files:
            flags.append("file")
        kind = _describe_schema(schema)
        out.write(f"  {name:<20} {kind}{' (' + ', '.join(flags) + ')' if flags else ''}\n")
        if schema.get("description"):
            out.write(f"  {'':<20} {schema['description']}\n")


def _write_facts(endpoint: Endpoint, out: TextIO) -> None:
    """Write what a step can read of the endpoint's outcome, how sure each fact of its
    entry is, and how many per-model rules it checks."""
    out.write("\noutputs: " + ", ".join(endpoint.output_names) + ", files, response\n")
    if endpoint.evidence:
        out.write("\nhow sure each fact is:\n")
        for fact, evidence in endpoint.evidence.items():
            out.write(f"  {fact}: {evidence}\n")
    if endpoint.rules:
        out.write(f"\n{len(endpoint.rules)} per-model rules are checked before any call.\n")


def _describe_schema(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        values = [str(v) for v in schema["enum"]]
        return "one of: " + ", ".join(values)
    kind = schema.get("type", "any")
    kind = "/".join(kind) if isinstance(kind, list) else kind
    bounds = []
    for key, word in (("minimum", ">="), ("maximum", "<="), ("minItems", "items >="),
                      ("maxItems", "items <="), ("maxLength", "length <=")):
        if key in schema:
            bounds.append(f"{word} {schema[key]}")
    return kind + (f" ({', '.join(bounds)})" if bounds else "")
