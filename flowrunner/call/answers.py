"""Reading a provider's answer as the catalog describes it: artifact references, credits."""

from __future__ import annotations

from typing import Any

from ..catalog.entries import Endpoint, extract
from ..errors import StepFailed
from .preparation import PreparedCall


def credits_of(endpoint: Endpoint, *documents: Any) -> float | None:
    """The credits the first document that names them reports; None when none does (the
    run then books the catalog's price, marked estimated)."""
    for document in documents:
        for path in endpoint.credit_paths:
            value = extract(document, path)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
    return None


def artifact_refs(call: PreparedCall, response: Any) -> list[tuple[str, str]]:
    """[(kind, value)] with kind 'url', 'b64' or 'api' (a path on the provider's API, with
    {id}) for every artifact in the answer.

    Raises:
        StepFailed: the endpoint makes files but the answer names none.
    """
    spec = call.endpoint.artifacts
    if call.endpoint.generic:
        path = call.params.get("artifacts")
        if not path:
            return []
        found = extract(response, str(path))
        values = found if isinstance(found, list) else [found] if found else []
        refs = [("url", v) for v in values]
        if not refs:
            raise StepFailed(f"{call.instance.id}: the answer has no artifact at {path!r}")
        return refs
    if not spec:
        return []
    if spec.get("content"):  # the file is served by the API itself, behind the key
        return [("api", spec["content"])]
    items = extract(response, spec.get("items", ""))
    items = items if isinstance(items, list) else [items] if items is not None else []
    refs = []
    for item in items:
        if isinstance(item, str):  # the item is the URL itself (Replicate's output)
            if item.startswith(("http://", "https://")):
                refs.append(("url", item))
            continue
        url = extract(item, spec["url"]) if spec.get("url") else None
        b64 = extract(item, spec["b64_json"]) if spec.get("b64_json") else None
        if url:
            refs.append(("url", url))
        elif b64:
            refs.append(("b64", b64))
    if not refs and spec.get("optional"):
        return []
    if not refs:
        where = spec.get("items", "") + "." + spec.get("url", "url")
        keys = ", ".join(sorted(response)) if isinstance(response, dict) \
            else type(response).__name__
        raise StepFailed(f"{call.instance.id}: the answer has no artifact at {where} "
                         f"(answer keys: {keys})",
                         hint="the provider's answer changed shape or the call failed silently")
    return refs


def poster_urls(call: PreparedCall, response: Any) -> list[str]:
    """The cover images the answer names beside its files (http(s) URLs only)."""
    spec = call.endpoint.posters
    if not spec:
        return []
    items = extract(response, spec["items"])
    items = items if isinstance(items, list) else [items] if items is not None else []
    urls = [extract(item, spec["url"]) for item in items]
    return [u for u in urls if isinstance(u, str) and u.startswith(("http://", "https://"))]
