"""Preparing one instance's call: render → check → resolve input files → cache key.

Pure apart from reading input files (and downloading URL inputs when given a client):
`flow plan`, `status`, `why` and the run's survey prepare calls without making any.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..catalog.entries import Endpoint, extract
from ..errors import RenderFailed
from ..net.http import Client
from ..recipe.graph import Instance
from ..recipe.schema import check_params, no_save_problem
from ..recipe.spec import Recipe
from ..store.cache import Cache
from ..store.cache_key import cache_key, key_material
from .context import field_location, render_context, render_field
from .inputs import FileDigests, Upload, resolve_input_file


@dataclass(frozen=True, slots=True)
class PreparedCall:
    """Everything needed to call (or find in the cache) one instance."""

    instance: Instance
    endpoint: Endpoint
    params: dict[str, Any]
    method: str
    path: str
    material: dict[str, Any]
    uploads: tuple[Upload, ...] = ()
    # the JSON body as sent, when it differs from ``params`` (renamed or resolved fields)
    sent: dict[str, Any] | None = None
    _key: str = field(default="", repr=False, compare=False)

    @property
    def key(self) -> str:
        """The cache key (sha256 of the canonical material), computed when first asked:
        `flow plan` before anything is cached never needs the keys of 100,000 calls."""
        if not self._key:
            object.__setattr__(self, "_key", cache_key(self.material))
        return self._key


def _check_headers(recipe: Recipe, instance: Instance, headers: dict[str, Any]) -> None:
    """An `http` step's headers never carry the key: that header is the provider's.

    Raises:
        RenderFailed: a header the provider's credential uses.
    """
    profile = recipe.provider_of(instance.step)
    reserved = {profile.auth_header.lower(), "authorization", "x-key"}
    for name in headers:
        if name.lower() in reserved:
            where = field_location(recipe, instance, ("with", "headers", name))
            raise RenderFailed(f"{where}: {instance.id}.with.headers.{name}: the header that "
                               "carries the API key is set by flowrunner",
                               hint=f"the key comes from ${profile.api_key_env}; never write a "
                                    "key in a recipe (use `auth:` on the provider to change "
                                    "the header)")


def prepare_call(recipe: Recipe, instance: Instance, views: dict[str, Any], *,
                 provider: str, cache: Cache, digests: FileDigests,
                 client: Client | None = None, deadline: float | None = None,
                 allowed: tuple[Path, ...] = (),
                 rendered: dict[str, Any] | None = None) -> PreparedCall | None:
    """Render an instance's parameters, check them, resolve input files and compute its key.

    Returns None when the key cannot be known offline (a URL input and no client).

    Raises:
        RenderFailed: a template fails, or the rendered parameters break the endpoint schema.
    """
    step = instance.step
    endpoint = step.endpoint
    assert endpoint is not None
    if rendered is not None:  # rendered (and checked) while planning
        params = rendered
    else:
        params = _render_params(recipe, instance, views, endpoint)
    deadline = deadline if deadline is not None else time.monotonic() + step.timeout
    resolve = partial(resolve_input_file, recipe=recipe, instance=instance, cache=cache,
                      digests=digests, client=client, deadline=deadline, allowed=allowed)
    uploads: list[Upload] = []
    keyed = _keyed_params(endpoint, params, resolve, uploads)
    if keyed is None:
        return None
    if endpoint.generic:
        route = _generic_request(recipe, instance, params, keyed, resolve, uploads)
        if route is None:
            return None
        method, path = route
    else:
        method = endpoint.method
        path = _endpoint_path(recipe, instance, endpoint, params)
    sent = None
    if endpoint.wire or endpoint.resolve:
        sent = _sent_body(recipe, instance, views, params, endpoint, keyed)
    if endpoint.local:
        provider = _local_provider()
    material = key_material(provider=provider, endpoint=endpoint.id, method=method, path=path,
                            params=keyed)
    return PreparedCall(instance=instance, endpoint=endpoint, params=params, method=method,
                        path=path, material=material,
                        uploads=tuple(uploads), sent=sent)


def _render_params(recipe: Recipe, instance: Instance, views: dict[str, Any],
                   endpoint: Endpoint) -> dict[str, Any]:
    """Render an instance's `with:` (the entry's defaults filled in) and check it against
    the endpoint schema, reporting the first problem and how many more there are.

    Raises:
        RenderFailed: a template fails, or the rendered parameters break the endpoint schema.
    """
    context = render_context(recipe, instance, views)
    params = endpoint.with_defaults(render_field(recipe, instance, "with", instance.step.params,
                                                 context))
    problems = check_params(endpoint, params)
    if problems:
        inside, message, hint = problems[0]
        where = field_location(recipe, instance, ("with", *inside))
        label = ".".join(str(p) for p in ("with", *inside))
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise RenderFailed(f"{where}: {instance.id}.{label}: {message}{more}", hint=hint)
    return params


def _file_digests(values: list[Any], resolve: Callable[..., Upload | None],
                  uploads: list[Upload], *, param: str,
                  sent_as: str | None = None) -> list[dict[str, Any]] | None:
    """Resolve input files into ``uploads`` (sent under ``sent_as`` when given) and return
    their digests as the key holds them; None when one cannot be known offline.

    Raises:
        RenderFailed: an input file that is missing, outside the recipe's folder, or no image.
    """
    found: list[dict[str, Any]] = []
    for value in values:
        upload = resolve(value, param=param)
        if upload is None:
            return None
        uploads.append(upload if sent_as is None else replace(upload, param=sent_as))
        found.append({"sha256": upload.sha256})
    return found


def _keyed_params(endpoint: Endpoint, params: dict[str, Any],
                  resolve: Callable[..., Upload | None],
                  uploads: list[Upload]) -> dict[str, Any] | None:
    """The parameters as the key holds them: each of the entry's input files by its digest
    (resolved into ``uploads``). None when a file cannot be known offline.

    Raises:
        RenderFailed: an input file that is missing, outside the recipe's folder, or no image.
    """
    keyed = dict(params)
    for name, spec in endpoint.files.items():
        if name not in params:
            continue
        many = spec.multiple and isinstance(params[name], list)
        found = _file_digests(params[name] if many else [params[name]], resolve, uploads,
                              param=name)
        if found is None:
            return None
        # one file of an entry that sends a list under its own field (`image: a` and
        # `image: [a]` are one request) is keyed as one file; other lists as lists
        one = spec.list_field is not None and len(found) == 1
        keyed[name] = found[0] if one or not spec.multiple else found
    return keyed


def _generic_request(recipe: Recipe, instance: Instance, params: dict[str, Any],
                     keyed: dict[str, Any], resolve: Callable[..., Upload | None],
                     uploads: list[Upload]) -> tuple[str, str] | None:
    """The method and path of an `http` step's request, once its headers and body are
    known to be sendable; its `files:` go into ``keyed`` by digest (and into ``uploads``),
    its headers out of it. None when a file cannot be known offline.

    Raises:
        RenderFailed: a header that carries the key, `files` beside a body that is no
            mapping, or an input file that cannot be sent.
    """
    method = str(params.get("method", "POST")).upper()
    path = str(params["path"])
    _check_headers(recipe, instance, params.get("headers") or {})
    files = params.get("files") or {}
    if files and params.get("body") is not None and not isinstance(params["body"], dict):
        where = field_location(recipe, instance, ("with", "body"))
        raise RenderFailed(f"{where}: {instance.id}.with.body: with `files`, the body is "
                           "sent as form fields beside them, so it must be a mapping",
                           hint="write body: {field: value, ...}")
    if files:
        keyed_files = _form_files(files, resolve, uploads)
        if keyed_files is None:
            return None
        keyed["files"] = keyed_files
    # headers travel with the request but are never part of the key (nor logged as-is)
    keyed.pop("headers", None)
    return method, path


def _form_files(files: dict[str, Any], resolve: Callable[..., Upload | None],
                uploads: list[Upload]) -> dict[str, Any] | None:
    """An `http` step's `files:` as the key holds them: each form field's file (or list of
    files) by digest, resolved into ``uploads`` under the field's name. None when a file
    cannot be known offline.

    Raises:
        RenderFailed: an input file that is missing, outside the recipe's folder, or no image.
    """
    keyed_files: dict[str, Any] = {}
    for field_name, value in files.items():
        found = _file_digests(value if isinstance(value, list) else [value], resolve, uploads,
                              param="files", sent_as=field_name)
        if found is None:
            return None
        keyed_files[field_name] = found if isinstance(value, list) else found[0]
    return keyed_files


def _endpoint_path(recipe: Recipe, instance: Instance, endpoint: Endpoint,
                   params: dict[str, Any]) -> str:
    """The entry's path with its path parameters filled in, each quoted.

    Raises:
        RenderFailed: an `owner/name` parameter with an empty, `.` or `..` part.
    """
    path = endpoint.path
    for name in endpoint.path_params:
        value = str(params.get(name, ""))
        if name in endpoint.path_segments:  # `owner/name`: each part quoted alone
            parts = value.split("/")
            if any(part in ("", ".", "..") for part in parts):
                where = field_location(recipe, instance, ("with", name))
                raise RenderFailed(f"{where}: {instance.id}.with.{name}: {value!r} is not "
                                   "a path of names", hint="write it as owner/name")
            quoted = "/".join(quote(part, safe="") for part in parts)
        else:
            quoted = quote(value, safe="")
        path = path.replace("{" + name + "}", quoted)
    return path


def _sent_body(recipe: Recipe, instance: Instance, views: dict[str, Any],
               params: dict[str, Any], endpoint: Endpoint,
               keyed: dict[str, Any]) -> dict[str, Any]:
    """The JSON body as sent by an entry that renames (`wire`) or resolves fields; the
    resolved values go into ``keyed`` too.

    Raises:
        RenderFailed: a value cannot be resolved, or the step saves what never gives files.
    """
    resolved = _resolve(recipe, instance, views, params, endpoint)
    keyed.update(resolved)  # what is sent is what the key says
    sent = {endpoint.wire.get(k, k): v for k, v in params.items()
            if k not in endpoint.resolve and k not in endpoint.path_params}
    sent.update(resolved)
    _refuse_saving_nothing(recipe, instance, endpoint, {**params, **resolved})
    return sent


def _local_provider() -> str:
    """The provider a local step's key names: made on this machine, the same for --mock
    and real runs, tied to Pillow's major version."""
    from ..media.imaging import pillow_version

    return f"local/pillow-{pillow_version().split('.')[0]}"


def _refuse_saving_nothing(recipe: Recipe, instance: Instance, endpoint: Endpoint,
                           sent: dict[str, Any]) -> None:
    """Refuse, before paying, a step that saves files when what it sends never gives any
    (the entry's `no_save`: a Midjourney button found by its emoji, or from a template,
    that turns out to be Custom Zoom). Validation catches the literal cases.

    Raises:
        RenderFailed: the step has `save:` and matches `no_save`.
    """
    if not instance.step.save or endpoint.no_save is None:
        return
    never = no_save_problem(endpoint, sent)
    if never is not None:
        where = field_location(recipe, instance, ("save",))
        raise RenderFailed(f"{where}: {instance.id}.save: {never[0]}", hint=(never[1] or "")
                           .replace("<this step>", instance.step.id) or None)


def _resolve(recipe: Recipe, instance: Instance, views: dict[str, Any],
             params: dict[str, Any], endpoint: Endpoint) -> dict[str, Any]:
    """The values of ``endpoint.resolve``'s parameters as sent, read from the stored answer
    of the earlier step whose `task_id` output the parameters name (no new request: a
    cached step's answer has them). Midjourney's `button: U1` → `customId: MJ::JOB::…`.

    Raises:
        RenderFailed: the task is no earlier step's, or no choice matches the value.
    """
    resolved: dict[str, Any] = {}
    for name, rule in endpoint.resolve.items():
        if name not in params:
            continue
        value = str(params[name])
        where = field_location(recipe, instance, ("with", name))
        if rule.get("raw") and re.fullmatch(rule["raw"], value):
            resolved[rule["as"]] = value
            continue
        task_id = str(params.get(rule["task"], ""))
        answers = [view for found in views.values()
                   for view in (found if isinstance(found, list) else [found])
                   if isinstance(view, dict)
                   and str((view.get("outputs") or {}).get("task_id")) == task_id]
        if not answers:
            raise RenderFailed(f"{where}: {instance.id}.with.{name}: task {task_id!r} is not "
                               "the result of a step this one uses, so its choices are "
                               "unknown", hint=f"set {rule['task']} from an earlier step, e.g. "
                               "\"{{ steps.board.outputs.task_id }}\", or give the raw "
                               f"{rule['take']}")
        choices = extract(answers[0].get("response"), rule["list"]) or []
        for choice in choices if isinstance(choices, list) else []:
            if any(str(choice.get(field, "")).casefold() == value.casefold()
                   for field in rule["match"] if choice.get(field)):
                resolved[rule["as"]] = choice[rule["take"]]
                break
        else:
            offered = [str(c.get("label") or c.get("emoji") or c.get(rule["take"]))
                       for c in choices if isinstance(c, dict)]
            raise RenderFailed(f"{where}: {instance.id}.with.{name}: task {task_id} offers no "
                               f"{value!r}", hint="it offers: " + (", ".join(offered)
                                                                   or "nothing"))
    for name, wire in endpoint.wire.items():
        if name in params and name not in endpoint.resolve:
            resolved.setdefault(wire, params[name])
    return resolved
