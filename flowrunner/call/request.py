"""How a prepared call goes on the wire: URL, JSON body or multipart fields and files.

Multipart carries flat fields only: a nested parameter (`controls`, `text_layout`) would be
dropped or refused there, so when the entry has a JSON form (`json_form`: the file
parameters as data-URL fields, as Recraft's spec defines) the call is sent as JSON instead.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import json
from typing import Any

from ..net.http import ApiRequest, FilePart
from .preparation import PreparedCall


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def is_nested(value: Any) -> bool:
    """Whether a parameter value is an object or a list (multipart cannot carry it)."""
    return isinstance(value, (dict, list))


def _data_url(call: PreparedCall, param: str) -> str | list[str]:
    urls = [f"data:{u.media_type};base64,{base64.b64encode(u.path.read_bytes()).decode()}"
            for u in call.uploads if u.param == param]
    spec = call.endpoint.files[param]
    return urls if spec.multiple else urls[0]


def build_request(call: PreparedCall, base_url: str, *, submit: bool) -> ApiRequest:
    """The request for ``call`` at ``base_url``; ``submit`` marks a paid task submit."""
    request = _request(call, base_url, submit=submit)
    if call.endpoint.headers:  # the provider's own, required on every call (a version)
        request = dataclasses.replace(
            request, headers=(*call.endpoint.headers.items(), *request.headers))
    return dataclasses.replace(request, binary=True) if call.endpoint.binary else request


def _request(call: PreparedCall, base_url: str, *, submit: bool) -> ApiRequest:
    endpoint = call.endpoint
    url = base_url.rstrip("/") + call.path
    provider = call.instance.step.provider
    body_params = {k: v for k, v in call.params.items() if k not in endpoint.path_params}
    if endpoint.generic:
        headers = tuple((str(k), _form_value(v))
                        for k, v in (call.params.get("headers") or {}).items())
        body = call.params.get("body")
        if call.uploads:  # multipart: the body's fields beside the files
            fields = tuple((str(k), json.dumps(v) if is_nested(v) else _form_value(v))
                           for k, v in (body or {}).items())
            uploaded = tuple(FilePart(u.param, f"{u.param}.{u.ext}", u.path, u.media_type)
                             for u in call.uploads)
            return ApiRequest(method=call.method, url=url, fields=fields, files=uploaded,
                              submit=submit, provider=provider, headers=headers)
        return ApiRequest(method=call.method, url=url, json_body=body, submit=submit,
                          provider=provider, headers=headers)
    file_names = set(endpoint.files)
    nested = any(is_nested(v) for k, v in body_params.items() if k not in file_names)
    if endpoint.body == "multipart" and nested and endpoint.json_form:
        body = {k: v for k, v in body_params.items() if k not in file_names}
        for param, field in endpoint.json_form.items():
            if param in body_params:
                body[field] = _data_url(call, param)
        return ApiRequest(method=call.method, url=url, json_body=body, submit=submit,
                          provider=provider)
    if endpoint.body == "multipart":
        # a field the provider reads as JSON text (Ideogram's legacy image_request)
        fields = tuple((k, json.dumps(v, separators=(",", ":")) if k in endpoint.json_text
                        else _form_value(v)) for k, v in body_params.items()
                       if k not in file_names)
        parts = []
        counts = collections.Counter(upload.param for upload in call.uploads)
        for upload in call.uploads:
            spec = endpoint.files[upload.param]
            field = spec.list_field if spec.list_field and counts[upload.param] > 1 \
                else spec.field
            parts.append(FilePart(field, f"{upload.param}.{upload.ext}", upload.path,
                                  upload.media_type))
        return ApiRequest(method=call.method, url=url, fields=fields, files=tuple(parts),
                          submit=submit, provider=provider)
    body = body_params if call.sent is None else call.sent
    if endpoint.files:  # a JSON body carries its files as data URLs, under their field names
        body = {k: v for k, v in body.items() if k not in file_names}
        for param, spec in endpoint.files.items():
            if param in body_params:
                body[spec.field] = _data_url(call, param)
    return ApiRequest(method=call.method, url=url, json_body=body, submit=submit,
                      provider=provider)



