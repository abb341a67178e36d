"""Preparing one instance's call: render → check → resolve input files → cache key.

Pure apart from reading input files (and downloading URL inputs when given a client):
`flow plan`, `status`, `why` and the run's survey prepare calls without making any.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
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
        context = render_context(recipe, instance, views)
        params = endpoint.with_defaults(render_field(recipe, instance, "with", step.params,
                                                     context))
        problems = check_params(endpoint, params)
        if problems:
            inside, message, hint = problems[0]
            where = field_location(recipe, instance, ("with", *inside))
            label = ".".join(str(p) for p in ("with", *inside))
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise RenderFailed(f"{where}: {instance.id}.{label}: {message}{more}", hint=hint)
    deadline = deadline if deadline is not None else time.monotonic() + step.timeout
    uploads: list[Upload] = []
    keyed = dict(params)
    for name, spec in endpoint.files.items():
        if name not in params:
            continue
        many = spec.multiple and isinstance(params[name], list)
        values = params[name] if many else [params[name]]
        digests_here = []
        for value in values:
            upload = resolve_input_file(value, recipe=recipe, instance=instance, param=name,
                                        cache=cache, digests=digests, client=client,
                                        deadline=deadline, allowed=allowed)
            if upload is None:
                return None
            uploads.append(upload)
            digests_here.append({"sha256": upload.sha256})
        # one file of an entry that sends a list under its own field (`image: a` and
        # `image: [a]` are one request) is keyed as one file; other lists as lists
        one = spec.list_field is not None and len(digests_here) == 1
        keyed[name] = digests_here[0] if one or not spec.multiple else digests_here
    if endpoint.generic:
        method = str(params.get("method", "POST")).upper()
        path = str(params["path"])
        _check_headers(recipe, instance, params.get("headers") or {})
        files = params.get("files") or {}
        if files and params.get("body") is not None and not isinstance(params["body"], dict):
            where = field_location(recipe, instance, ("with", "body"))
            raise RenderFailed(f"{where}: {instance.id}.with.body: with `files`, the body is "
                               "sent as form fields beside them, so it must be a mapping",
                               hint="write body: {field: value, ...}")
        keyed_files: dict[str, Any] = {}
        for field_name, value in files.items():
            digests_here = []
            for item in value if isinstance(value, list) else [value]:
                upload = resolve_input_file(item, recipe=recipe, instance=instance,
                                            param="files", cache=cache, digests=digests,
                                            client=client, deadline=deadline, allowed=allowed)
                if upload is None:
                    return None
                uploads.append(replace(upload, param=field_name))
                digests_here.append({"sha256": upload.sha256})
            keyed_files[field_name] = digests_here if isinstance(value, list) \
                else digests_here[0]
        if files:
            keyed["files"] = keyed_files
        # headers travel with the request but are never part of the key (nor logged as-is)
        keyed.pop("headers", None)
    else:
        method = endpoint.method
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
    sent = None
    if endpoint.wire or endpoint.resolve:
        resolved = _resolve(recipe, instance, views, params, endpoint)
        keyed.update(resolved)  # what is sent is what the key says
        sent = {endpoint.wire.get(k, k): v for k, v in params.items()
                if k not in endpoint.resolve and k not in endpoint.path_params}
        sent.update(resolved)
        _refuse_saving_nothing(recipe, instance, endpoint, {**params, **resolved})
    if endpoint.local:
        # made on this machine: the same for --mock and real runs, tied to Pillow's major
        from ..media.imaging import pillow_version

        provider = f"local/pillow-{pillow_version().split('.')[0]}"
    material = key_material(provider=provider, endpoint=endpoint.id, method=method, path=path,
                            params=keyed)
    return PreparedCall(instance=instance, endpoint=endpoint, params=params, method=method,
                        path=path, material=material,
                        uploads=tuple(uploads), sent=sent)


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
