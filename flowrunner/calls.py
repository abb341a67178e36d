"""One step instance's call: render → check → resolve files → cache key → request → answer.

`prepare_call` is pure apart from reading input files (it never calls the network unless
an input is a URL and a client is given); `perform_call` makes the request, drives
submit-then-poll tasks from catalog data, and stores the artifacts.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from .cache import CACHE_VERSION, Cache, sha256_file
from .catalog import Endpoint, extract
from .downloads import Artifact, check_url, describe_file, fetch_artifact, store_b64
from .errors import DownloadError, Location, RunError, StepFailed, TransportError
from .graph import Instance
from .http import ApiRequest, ApiResponse, FilePart, HttpClient
from .schema import check_params
from .spec import Recipe
from .templating import TemplateProblem, render_value, truthy


class RenderFailed(StepFailed):
    """Raised when a step's templates or rendered parameters are wrong at run time."""


@dataclass(frozen=True, slots=True)
class Upload:
    param: str
    path: Path
    sha256: str
    media_type: str
    ext: str


@dataclass(frozen=True, slots=True)
class PreparedCall:
    """Everything needed to call (or find in the cache) one instance."""

    instance: Instance
    endpoint: Endpoint
    params: dict[str, Any]
    method: str
    path: str
    material: dict[str, Any]
    key: str
    uploads: tuple[Upload, ...] = ()


@dataclass(slots=True)
class CallOutcome:
    response: Any
    artifacts: list[Artifact]
    outputs: dict[str, Any]
    credits: float
    task_id: str | None = None
    resumed: bool = False
    attempts: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


def step_view(entry: dict[str, Any], cache: Cache) -> dict[str, Any]:
    """What later templates see of a finished instance: outputs, files, response."""
    return {
        "outputs": entry.get("outputs", {}),
        "files": [str(cache.object_path(a["sha256"])) for a in entry.get("artifacts", [])],
        "response": entry.get("response", {}),
    }


def _where(recipe: Recipe, instance: Instance, path: tuple[str | int, ...]) -> Location:
    return recipe.source_map.at(("steps", instance.step_id, *path))


def render_context(recipe: Recipe, instance: Instance, views: dict[str, Any]) -> dict[str, Any]:
    context: dict[str, Any] = {"vars": recipe.vars, "steps": views}
    if instance.step.matrix:
        context["matrix"] = instance.matrix
    return context


def render_field(recipe: Recipe, instance: Instance, name: str, value: Any,
                 context: dict[str, Any]) -> Any:
    """Render one step field; a template problem becomes a RenderFailed at the field."""
    try:
        return render_value(value, context)
    except TemplateProblem as exc:
        path = (name, *getattr(exc, "path", ()))
        where = _where(recipe, instance, path)
        label = ".".join(str(p) for p in path)
        raise RenderFailed(f"{where}: {instance.id}.{label}: {exc.message}",
                           hint="check the names the template reads; `flow validate` "
                                "shows what is known before running") from None


def condition_holds(recipe: Recipe, instance: Instance, context: dict[str, Any]) -> bool:
    condition = instance.step.condition
    if condition is True or condition is None:
        return True
    return truthy(render_field(recipe, instance, "if", condition, context))


class FileDigests:
    """sha256 of input files, remembered by (path, size, mtime) for the run."""

    def __init__(self) -> None:
        self._memo: dict[tuple[str, int, int], str] = {}

    def paths(self) -> list[str]:
        """Every input file hashed so far."""
        return sorted({path for path, _size, _mtime in self._memo})

    def __call__(self, path: Path) -> str:
        stat = path.stat()
        memo_key = (str(path), stat.st_size, stat.st_mtime_ns)
        digest = self._memo.get(memo_key)
        if digest is None:
            digest = self._memo[memo_key] = sha256_file(path)
        return digest


def is_inside(resolved: Path, resolved_folder: Path) -> bool:
    """Whether a resolved path lies in a resolved folder (symlinks already followed)."""
    try:
        resolved.relative_to(resolved_folder)
        return True
    except ValueError:
        return False


def resolve_input_file(value: Any, *, recipe: Recipe, instance: Instance, param: str,
                       cache: Cache, digests: FileDigests, client: HttpClient | None,
                       deadline: float, allowed: tuple[Path, ...] = ()) -> Upload | None:
    """Turn a file parameter's value into a local file and its digest.

    Returns None when the value is a URL and no client was given (planning offline).

    Raises:
        RenderFailed: not a string, missing, outside the recipe's folder, or not an image.
    """
    origin = f"{instance.id}.with.{param}"
    where = _where(recipe, instance, ("with", param))
    if not isinstance(value, str) or not value:
        raise RenderFailed(f"{where}: {origin}: expected a file path or URL, got {value!r}")
    scheme = urlsplit(value).scheme
    if scheme in ("http", "https"):
        if client is None:
            return None
        artifact = fetch_artifact(client, cache, check_url(value, origin), deadline=deadline,
                                  origin=origin)
        return Upload(param, cache.object_path(artifact.sha256), artifact.sha256,
                      artifact.media_type, artifact.ext)
    if scheme and len(scheme) > 1:
        raise RenderFailed(f"{where}: {origin}: unsupported URL scheme {scheme!r}",
                           hint="inputs are local paths or http(s) URLs")
    candidate = Path(value)
    if not candidate.is_absolute():
        candidate = recipe.folder / candidate
    objects = (cache.root / "objects").resolve()
    resolved = candidate.resolve()
    if is_inside(resolved, objects):
        sha = resolved.name
    else:
        roots = (recipe.folder.resolve(), *(a.resolve() for a in allowed))
        if not any(is_inside(resolved, root) for root in roots):
            raise RenderFailed(f"{where}: {origin}: {value!r} is outside the recipe's folder",
                               hint="input files must live beside the recipe (symlinks that "
                                    "point elsewhere are refused)")
        if not resolved.is_file():
            raise RenderFailed(f"{where}: {origin}: no such file {value!r}",
                               hint=f"paths are relative to the recipe's folder {recipe.folder}")
        sha = digests(resolved)
    try:
        media_type, ext = describe_file(resolved)
    except (DownloadError, OSError) as exc:
        raise RenderFailed(f"{where}: {origin}: {getattr(exc, 'message', exc)}") from None
    return Upload(param, resolved, sha, media_type, ext)


def prepare_call(recipe: Recipe, instance: Instance, views: dict[str, Any], *,
                 provider: str, cache: Cache, digests: FileDigests,
                 client: HttpClient | None = None, deadline: float | None = None,
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
        params = render_field(recipe, instance, "with", step.params, context)
    problems = check_params(endpoint, params)
    if problems:
        path, message, hint = problems[0]
        where = _where(recipe, instance, ("with", *path))
        label = ".".join(str(p) for p in ("with", *path))
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise RenderFailed(f"{where}: {instance.id}.{label}: {message}{more}", hint=hint)
    deadline = deadline if deadline is not None else time.monotonic() + step.timeout
    uploads: list[Upload] = []
    keyed = dict(params)
    for name, spec in endpoint.files.items():
        if name not in params:
            continue
        values = params[name] if spec.multiple and isinstance(params[name], list) else [params[name]]
        digests_here = []
        for value in values:
            upload = resolve_input_file(value, recipe=recipe, instance=instance, param=name,
                                        cache=cache, digests=digests, client=client,
                                        deadline=deadline, allowed=allowed)
            if upload is None:
                return None
            uploads.append(upload)
            digests_here.append({"sha256": upload.sha256})
        keyed[name] = digests_here if spec.multiple else digests_here[0]
    if endpoint.generic:
        method = str(params.get("method", "POST")).upper()
        path = str(params["path"])
    else:
        method = endpoint.method
        path = endpoint.path
        for name in endpoint.path_params:
            path = path.replace("{" + name + "}", quote(str(params.get(name, "")), safe=""))
    if endpoint.local:
        # made on this machine: the same for --mock and real runs, tied to Pillow's major
        from .imaging import pillow_version

        provider = f"local/pillow-{pillow_version().split('.')[0]}"
    material = {"v": CACHE_VERSION, "provider": provider, "endpoint": endpoint.id,
                "method": method, "path": path, "params": keyed}
    from .cache import cache_key

    return PreparedCall(instance=instance, endpoint=endpoint, params=params, method=method,
                        path=path, material=material, key=cache_key(material),
                        uploads=tuple(uploads))


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def build_request(call: PreparedCall, base_url: str, *, submit: bool) -> ApiRequest:
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


def _verify_uploads(call: PreparedCall, cache: Cache, digests: FileDigests) -> None:
    for upload in call.uploads:
        if digests(upload.path) != upload.sha256:
            raise RunError(f"{call.instance.id}: input file {upload.path} changed or is corrupt "
                           "(its sha256 no longer matches)",
                           hint="`flow cache clear` and run again")


def _credits(endpoint: Endpoint, *documents: Any) -> float:
    for document in documents:
        for path in endpoint.credit_paths:
            value = extract(document, path)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
    return 0.0


def _artifact_refs(call: PreparedCall, response: Any) -> list[tuple[str, str]]:
    """[(kind, value)] with kind 'url' or 'b64' for every artifact in the answer."""
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
    items = extract(response, spec["items"])
    items = items if isinstance(items, list) else [items] if items is not None else []
    refs = []
    for item in items:
        url = extract(item, spec["url"]) if spec.get("url") else None
        b64 = extract(item, spec["b64_json"]) if spec.get("b64_json") else None
        if url:
            refs.append(("url", url))
        elif b64:
            refs.append(("b64", b64))
    if not refs:
        where = spec["items"] + "." + spec.get("url", "url")
        keys = ", ".join(sorted(response)) if isinstance(response, dict) else type(response).__name__
        raise StepFailed(f"{call.instance.id}: the answer has no artifact at {where} "
                         f"(answer keys: {keys})",
                         hint="the provider's answer changed shape or the call failed silently")
    return refs


def _poll(call: PreparedCall, client: HttpClient, base_url: str, task_id: str,
          poll_url: str | None, *, deadline: float, retries: int) -> ApiResponse:
    spec = call.endpoint.task
    assert spec is not None
    api_host = urlsplit(base_url).netloc
    if not poll_url or urlsplit(poll_url).netloc != api_host:
        # never send the key to another host: poll through the gateway instead
        poll_url = base_url.rstrip("/") + (spec.poll_path or "").replace(
            "{id}", quote(task_id, safe=""))
    task_deadline = min(deadline, time.monotonic() + spec.timeout)
    interval = spec.interval
    while True:
        answer = client.call(ApiRequest(method="GET", url=poll_url), retries=retries,
                             deadline=task_deadline, step_id=call.instance.id)
        status = extract(answer.body, spec.status_path)
        if status in spec.success:
            return answer
        if status in spec.failure:
            message = extract(answer.body, spec.error_path) if spec.error_path else None
            raise StepFailed(f"{call.instance.id}: task {task_id} ended with status {status!r}"
                             + (f": {client.redact(str(message))}" if message else ""),
                             hint="the provider refused or failed the task; change the "
                                  "parameters or run again")
        if time.monotonic() + interval > task_deadline:
            raise TransportError(f"{call.instance.id}: task {task_id} still {status!r} when the "
                                 "timeout ran out",
                                 hint="raise the step's `timeout`; a re-run resumes polling "
                                      "the same task instead of paying for a new one")
        time.sleep(interval)
        interval = min(interval * 1.5, 10.0)


def perform_call(call: PreparedCall, *, client: HttpClient, cache: Cache, base_url: str,
                 digests: FileDigests, recipe: Recipe, views: dict[str, Any],
                 deadline: float, retries: int) -> CallOutcome:
    """Call the endpoint (or resume its task), extract outputs and store every artifact.

    Raises:
        RunError: the call failed, its answer is unusable, or an artifact is broken.
    """
    endpoint = call.endpoint
    instance_id = call.instance.id
    _verify_uploads(call, cache, digests)
    if endpoint.local:
        return _perform_local(call, cache)
    task = endpoint.task
    task_id = None
    resumed = False
    attempts = 1
    submit_body: Any = None
    if task is not None:
        journal = cache.read_task(call.key)
        if journal and journal.get("id"):
            task_id, poll_url, resumed = str(journal["id"]), journal.get("poll_url"), True
        else:
            submitted = client.call(build_request(call, base_url, submit=True), retries=retries,
                                    deadline=deadline, step_id=instance_id)
            submit_body = submitted.body
            task_id = extract(submitted.body, task.id_path)
            if not task_id:
                raise StepFailed(f"{instance_id}: the submit answer has no task id at "
                                 f"{task.id_path!r}")
            task_id = str(task_id)
            poll_url = extract(submitted.body, task.poll_url_from) if task.poll_url_from else None
            cache.write_task(call.key, {"id": task_id, "poll_url": poll_url,
                                        "endpoint": endpoint.id})
        answer = _poll(call, client, base_url, task_id, poll_url, deadline=deadline,
                       retries=retries)
        response = answer.body
    else:
        answer = client.call(build_request(call, base_url, submit=False), retries=retries,
                             deadline=deadline, step_id=instance_id)
        response, attempts = answer.body, answer.attempts
    artifacts = []
    for index, (kind, value) in enumerate(_artifact_refs(call, response)):
        origin = f"{instance_id} artifact {index + 1}"
        if kind == "url":
            artifacts.append(fetch_artifact(client, cache, value, deadline=deadline, origin=origin))
        else:
            artifacts.append(store_b64(cache, value, origin=origin))
    outputs = {name: extract(response, path) for name, path in endpoint.outputs.items()}
    outputs["credits"] = _credits(endpoint, response, submit_body)
    if call.instance.step.outputs:
        context = render_context(recipe, call.instance, views)
        context["response"] = response
        for name, template in call.instance.step.outputs.items():
            outputs[name] = render_field(recipe, call.instance, "outputs",
                                         {name: template}, context)[name]
    return CallOutcome(response=response, artifacts=artifacts, outputs=outputs,
                       credits=float(outputs["credits"] or 0), task_id=task_id, resumed=resumed,
                       attempts=attempts)


def _perform_local(call: PreparedCall, cache: Cache) -> CallOutcome:
    """A local image step: Pillow on the input files, results stored like downloads."""
    from .downloads import store_bytes
    from .imaging import run_operation

    assert call.endpoint.local is not None
    made = run_operation(call.endpoint.local, [u.path for u in call.uploads], call.params,
                         origin=call.instance.id)
    artifacts = [store_bytes(cache, data, origin=f"{call.instance.id} output {n + 1}")
                 for n, (data, _ext) in enumerate(made)]
    response = {"operation": call.endpoint.local,
                "files": [{"sha256": a.sha256, "bytes": a.bytes, "media_type": a.media_type,
                           "width": a.width, "height": a.height} for a in artifacts]}
    return CallOutcome(response=response, artifacts=artifacts,
                       outputs={"credits": 0.0}, credits=0.0)


def provider_identity(base_url: str, *, mock: bool) -> str:
    from .cache import MOCK_PROVIDER, normalise_base_url

    return MOCK_PROVIDER if mock else normalise_base_url(base_url)


def api_key_from_env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None
