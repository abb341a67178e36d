"""`flow endpoints [ID]`: the catalog, or one endpoint's parameters and allowed values."""

from __future__ import annotations

import json
from typing import Any, TextIO

from ..catalog import get_endpoint, load_catalog
from ..schema import resolve_param_schema


def show_endpoints(endpoint_id: str | None, *, as_json: bool, out: TextIO) -> int:
    """`flow endpoints [ID]`: the catalog, or one endpoint's parameters with allowed values."""
    if endpoint_id is None:
        catalog = load_catalog()
        if as_json:
            json.dump([{"id": e.id, "title": e.title, "method": e.method, "path": e.path,
                        "task": e.task is not None} for e in catalog.values()], out, indent=2)
            out.write("\n")
            return 0
        width = max(len(k) for k in catalog)
        for endpoint in catalog.values():
            kind = " (task: submit, then poll)" if endpoint.task else ""
            out.write(f"{endpoint.id:<{width}}  {endpoint.title}{kind}\n")
        out.write("\n`flow endpoints ID` shows an endpoint's parameters.\n")
        return 0
    endpoint = get_endpoint(endpoint_id)
    if as_json:
        json.dump({"id": endpoint.id, "title": endpoint.title, "method": endpoint.method,
                   "path": endpoint.path, "body": endpoint.body,
                   "files": sorted(endpoint.files), "params": endpoint.params_schema,
                   "outputs": endpoint.output_names}, out, indent=2)
        out.write("\n")
        return 0
    out.write(f"{endpoint.id} — {endpoint.title}\n")
    if endpoint.description:
        out.write(f"  {endpoint.description}\n")
    out.write(f"  {endpoint.method} {endpoint.path}  ({endpoint.body} body"
              + (", submit then poll" if endpoint.task else "") + ")\n\n")
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
    out.write("\noutputs: " + ", ".join(endpoint.output_names) + ", files, response\n")
    return 0


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
