"""How a prepared call goes on the wire: URL, JSON body or multipart fields and files."""

from __future__ import annotations

import json
from typing import Any

from .http import ApiRequest, FilePart
from .preparation import PreparedCall


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def build_request(call: PreparedCall, base_url: str, *, submit: bool) -> ApiRequest:
    """The request for ``call`` at ``base_url``; ``submit`` marks a paid task submit."""
    endpoint = call.endpoint
    url = base_url.rstrip("/") + call.path
    body_params = {k: v for k, v in call.params.items() if k not in endpoint.path_params}
    if endpoint.generic:
        return ApiRequest(method=call.method, url=url, json_body=call.params.get("body"),
                          submit=submit)
    if endpoint.body == "multipart":
        file_names = set(endpoint.files)
        fields = tuple((k, _form_value(v)) for k, v in body_params.items() if k not in file_names)
        parts = []
        for upload in call.uploads:
            spec = endpoint.files[upload.param]
            parts.append(FilePart(spec.field, f"{upload.param}.{upload.ext}", upload.path,
                                  upload.media_type))
        return ApiRequest(method=call.method, url=url, fields=fields, files=tuple(parts),
                          submit=submit)
    return ApiRequest(method=call.method, url=url, json_body=body_params, submit=submit)
