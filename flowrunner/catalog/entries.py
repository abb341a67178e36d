"""The endpoint catalog: endpoint id → how to call it, its parameter schema, where results sit.

Data, not code: every entry is a JSON file under `schemas/endpoints/`, and a recipe may add
or override entries with its own files (`catalog:`). An entry says which kinds of provider
serve it (the ElkAPI `gateway`, `recraft` itself, `bfl`, …) and may give a path, upload
field or body per kind; its declared defaults (a pinned model) are sent explicitly; its
per-model rules are data. Also owns the small path language the entries use to point into
answers (``data[*].url``, ``a.b|c``).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from ..errors import UnknownEndpointError
from .models import Model
from .resources import iter_endpoint_files, read_json

DEFAULT_BASE_URL = "https://api.elkapi.com"
DEFAULT_KEY_ENV = "ELKAPI_API_KEY"
DEFAULT_KIND = "gateway"
BUILT_IN = "built in"
# what a provider's answers count credits in: estimates and budgets use the same unit
CREDIT_UNITS = {"gateway": "ElkAPI credits", "recraft": "Recraft units", "bfl": "BFL credits"}


@dataclass(frozen=True, slots=True)
class FileParam:
    name: str
    field: str
    multiple: bool = False
    # the field name when a list of several files is sent (OpenAI's edits: `image[]`, as
    # its SDK sends an array); one file goes under `field`
    list_field: str | None = None


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """How to drive a submit-then-poll endpoint, entirely from data."""

    id_path: str
    status_path: str
    success: frozenset[str]
    failure: frozenset[str]
    poll_url_from: str | None = None
    poll_path: str | None = None
    error_path: str | None = None
    interval: float = 1.5
    timeout: float = 600.0
    # the submit answer's envelope: the value at accept_path must be one of accept_values
    accept_path: str | None = None
    accept_values: frozenset[str] = frozenset()
    accept_error: str | None = None
    accept_polls: bool = False  # every poll answer too (MiniMax's base_resp): else a failure
    # with accept_polls: the poll values that fail the task (MiniMax's content refusals);
    # other values are trouble to wait out (a rate limit). Empty: every value fails it
    accept_fails: frozenset[str] = frozenset()
    accept_hint: str | None = None  # what to do when the submit is refused
    # values at accept_path that mean "too many tasks running": wait and submit again
    accept_busy: frozenset[str] = frozenset()
    # one more GET after success, its {placeholders} from the final answer (MiniMax's file)
    then_path: str | None = None
    then_from: tuple[tuple[str, str], ...] = ()
    # statuses that end polling because the task waits for the user (Midjourney's MODAL):
    # status → what to do; the task stays journaled
    attention: tuple[tuple[str, str], ...] = ()
    # many tasks in one poll: (path, the body field of ids, where the list is in the
    # answer, where each item's id is, the key an item goes under to read as one poll's)
    batch: tuple[str, str, str, str, str] | None = None
    batch_max: int = 100


@dataclass(frozen=True, slots=True)
class Rule:
    """A per-model rule: when the parameters match ``when`` (a JSON Schema), they must also
    match ``then``; else ``message`` (formatted with the parameters) at parameter ``at``."""

    when: dict[str, Any]
    then: dict[str, Any]
    message: str
    hint: str | None = None
    at: str | None = None
    kinds: tuple[str, ...] = ()  # only for these provider kinds (all when empty)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One catalog entry, resolved for one kind of provider (see `for_kind`)."""

    id: str
    title: str
    description: str
    method: str
    path: str
    body: str
    params_schema: dict[str, Any]
    files: dict[str, FileParam] = field(default_factory=dict)
    path_params: tuple[str, ...] = ()
    exclusive: tuple[tuple[str, ...], ...] = ()
    artifacts: dict[str, str] | None = None
    credit_paths: tuple[str, ...] = ()
    outputs: dict[str, str] = field(default_factory=dict)
    price: dict[str, Any] = field(default_factory=dict)
    task: TaskSpec | None = None
    generic: bool = False
    binary: bool = False  # the answer is the file itself, not JSON
    posters: dict[str, str] | None = None  # cover images beside the files
    local: str | None = None  # a Pillow operation run on this machine (media/imaging.py)
    kinds: tuple[str, ...] = (DEFAULT_KIND,)  # the kinds of provider that serve it
    kind: str = DEFAULT_KIND  # the kind this variant is resolved for
    per_kind: dict[str, dict[str, Any]] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)  # sent explicitly, keyed
    # a model's own defaults, over `defaults` when that model is chosen (Runway's ratio)
    model_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    json_form: dict[str, str] = field(default_factory=dict)  # file param → JSON data-URL field
    wire: dict[str, str] = field(default_factory=dict)  # parameter → its name when sent
    coerce: dict[str, str] = field(default_factory=dict)  # parameter → "string"
    path_segments: tuple[str, ...] = ()  # path parameters that may hold slashes
    headers: dict[str, str] = field(default_factory=dict)  # sent on every call
    json_text: tuple[str, ...] = ()  # multipart fields sent as JSON text
    # parameters resolved from an earlier step's stored answer (midjourney.action's button)
    resolve: dict[str, dict[str, Any]] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)  # fact → how sure, and why
    # parameters the provider may drop on the way (a gateway that rebuilds the body):
    # parameter → why; a step that gives one is warned at validation
    caveats: dict[str, str] = field(default_factory=dict)
    # parameters with which the step can never give files (Midjourney's Custom Zoom waits
    # for a modal): a step that saves them is refused at validation (`then` is unused)
    no_save: Rule | None = None
    # the models the entry knows, with their lifecycle (models.py), and the parameter
    # that names the model (`model`, Suno's `mv`)
    models: dict[str, Model] = field(default_factory=dict)
    model_param: str = "model"
    # kind of provider → the tasks of this family one key may run at once, where the
    # provider documents it (BFL: 24)
    max_in_flight: dict[str, int] = field(default_factory=dict)
    # the route itself has a lifecycle (a provider API shut down): judged like a model
    lifecycle: Model | None = None
    origin: str = BUILT_IN  # "built in", or the recipe-local file it came from
    # made once (it keys the memo tables every parameter check of every instance reads)
    _identity: str = field(init=False, repr=False, compare=False, default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "_identity", f"{self.origin}|{self.id}|{self.kind}")

    @property
    def unit(self) -> str:
        """The unit this provider's answers (and so the estimates) count credits in."""
        return CREDIT_UNITS.get(self.kind, "credits")

    @property
    def identity(self) -> str:
        """Distinguishes variants of one id (kind, origin) in memo tables."""
        return self._identity

    @property
    def confidence(self) -> str:
        """How sure the facts are, per kind of provider: `gateway: inferred, recraft:
        verified` (`verified` when every fact for that kind was read at the provider)."""
        if not self.evidence:
            return "unknown"
        return ", ".join(f"{kind}: {self.confidence_for(kind)}" for kind in self.kinds)

    def confidence_for(self, kind: str) -> str:
        """`verified` or `inferred` for the facts that concern a provider of ``kind``: a
        fact is verified only when nothing of it is inferred (`verified: the route on
        sibling gateways. inferred: that ElkAPI serves it` is inferred)."""
        facts = [v for fact, v in self.evidence.items()
                 if "(" not in fact or fact.endswith(f"({kind})")]
        return "verified" if all(v.startswith("verified") and "inferred" not in v
                                 for v in facts) else "inferred"

    def for_kind(self, kind: str) -> Endpoint:
        """This entry as a provider of ``kind`` serves it (its path, upload fields, body)."""
        import dataclasses

        override = self.per_kind.get(kind, {})
        changes: dict[str, Any] = {"kind": kind}
        if "path" in override:
            changes["path"] = override["path"]
        if "body" in override:
            changes["body"] = override["body"]
        if "files" in override:
            changes["files"] = _file_params(override["files"])
        if "price" in override:
            changes["price"] = dict(override["price"])
        if "task" in override:
            changes["task"] = _task_spec({**_task_doc(self.task), **override["task"]})
        return dataclasses.replace(self, **changes)

    def defaults_for(self, params: dict[str, Any]) -> dict[str, Any]:
        """The declared defaults ``params`` leave out: the entry's (a pinned model), then
        those of the model they name or default to (a ratio that model requires)."""
        chosen = self.defaults
        model = params.get(self.model_param, self.defaults.get(self.model_param))
        if isinstance(model, str) and model in self.model_defaults:
            chosen = {**chosen, **self.model_defaults[model]}
        return {k: v for k, v in chosen.items() if k not in params}

    def with_defaults(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` with the declared defaults added where absent (`defaults_for`), and
        values the provider takes as text written either way (`duration: 5` → "5")."""
        if self.defaults or self.model_defaults:
            params = {**self.defaults_for(params), **params}
        return self.coerced(params)

    def coerced(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` with the numbers `coerce` names as text turned into text (so 5 and
        "5" are one request, one cache key)."""
        if not self.coerce or not any(k in params for k in self.coerce):
            return params
        return {k: str(v) if self.coerce.get(k) == "string" and isinstance(v, (int, float))
                and not isinstance(v, bool) else v for k, v in params.items()}

    @property
    def param_names(self) -> list[str]:
        return sorted(self.params_schema.get("properties", {}))

    @property
    def output_names(self) -> list[str]:
        return sorted({*self.outputs, "credits"})

    @property
    def priced_by_params(self) -> bool:
        """Whether the price depends on the parameters (a count, a model, a duration)."""
        return any(name in self.price for name in ("per", "vector_credits", "models", "scale"))

    @property
    def price_each(self) -> float:
        """The catalog's price for one call, whatever its parameters (see
        `priced_by_params`)."""
        return float(self.price.get("credits", 0))

    def estimate_credits(self, params: dict[str, Any]) -> float:
        """The catalog's price for one call with these parameters (defaults filled in): the
        model's own price where the family prices per model, times each `scale` factor
        (a video's duration or mode), times the count (`per`)."""
        credits = self.price_each
        model = params.get(self.model_param, self.defaults.get(self.model_param))
        if "vector_credits" in self.price and isinstance(model, str) and "vector" in model:
            credits = float(self.price["vector_credits"])
        if isinstance(model, str) and model in self.price.get("models", {}):
            credits = float(self.price["models"][model])
        for name, factors in self.price.get("scale", {}).items():
            value = params.get(name, self.defaults.get(name))
            credits *= float(factors.get(str(value), 1))
        per = self.price.get("per")
        if per:
            count = params.get(per, 1)
            credits *= count if isinstance(count, int) and count > 0 else 1
        return credits

    @classmethod
    def from_dict(cls, doc: dict[str, Any], *, origin: str = BUILT_IN) -> Endpoint:
        """An entry from its (already schema-checked) document."""
        task = doc.get("task")
        response = doc.get("response", {})
        kinds = tuple(doc.get("providers", ())) or (DEFAULT_KIND,)
        return cls(
            id=doc["id"], title=doc["title"], description=doc.get("description", ""),
            method=doc["method"], path=doc["path"], body=doc["body"],
            params_schema=doc["params"],
            files=_file_params(doc.get("files", {})),
            path_params=tuple(doc.get("path_params", ())),
            exclusive=tuple(tuple(group) for group in doc.get("exclusive", ())),
            artifacts=response.get("artifacts"),
            credit_paths=tuple(response.get("credits", ())),
            outputs=dict(doc.get("outputs", {})),
            price=dict(doc.get("price", {})),
            task=_task_spec(task) if task else None,
            generic=bool(doc.get("generic", False)),
            binary=bool(response.get("binary", False)),
            posters=response.get("posters"),
            local=doc.get("local"),
            kinds=kinds, kind=kinds[0], per_kind=dict(doc.get("per_provider", {})),
            defaults=dict(doc.get("defaults", {})),
            model_defaults={name: dict(values)
                            for name, values in doc.get("model_defaults", {}).items()},
            rules=tuple(Rule(when=r["if"], then=r["then"], message=r["message"],
                             hint=r.get("hint"), at=r.get("at"),
                             kinds=tuple(r.get("providers", ())))
                        for r in doc.get("rules", ())),
            json_form=dict(doc.get("json_form", {})),
            wire=dict(doc.get("wire", {})),
            coerce=dict(doc.get("coerce", {})),
            path_segments=tuple(doc.get("path_segments", ())),
            headers=dict(doc.get("headers", {})),
            json_text=tuple(doc.get("json_text", ())),
            resolve=dict(doc.get("resolve", {})),
            evidence=dict(doc.get("evidence", {})),
            caveats=dict(doc.get("caveats", {})),
            no_save=Rule(when=doc["no_save"]["if"], then={}, message=doc["no_save"]["message"],
                         hint=doc["no_save"].get("hint")) if doc.get("no_save") else None,
            models={name: Model.from_dict(name, spec)
                    for name, spec in doc.get("models", {}).items()},
            model_param=doc.get("model_param", "model"),
            max_in_flight={str(k): int(v) for k, v in doc.get("max_in_flight", {}).items()},
            lifecycle=Model.from_dict(doc["id"], doc["lifecycle"]) if doc.get("lifecycle")
            else None,
            origin=origin,
        ).for_kind(kinds[0])


def _file_params(doc: dict[str, Any]) -> dict[str, FileParam]:
    return {name: FileParam(name, spec["field"], spec.get("multiple", False),
                            spec.get("list_field"))
            for name, spec in doc.items()}


def _task_spec(task: dict[str, Any]) -> TaskSpec:
    return TaskSpec(
        id_path=task["id"], status_path=task["status"],
        success=frozenset(task["success"]), failure=frozenset(task["failure"]),
        poll_url_from=task.get("poll_url_from"), poll_path=task.get("poll_path"),
        error_path=task.get("error"), interval=float(task.get("interval", 1.5)),
        timeout=float(task.get("timeout", 600)),
        accept_path=(task.get("accept") or {}).get("path"),
        accept_values=frozenset(str(v) for v in (task.get("accept") or {}).get("values", [])),
        accept_error=(task.get("accept") or {}).get("error"),
        accept_polls=bool((task.get("accept") or {}).get("polls", False)),
        accept_fails=frozenset(str(v) for v in (task.get("accept") or {}).get("fails", [])),
        accept_hint=(task.get("accept") or {}).get("hint"),
        accept_busy=frozenset(str(v) for v in (task.get("accept") or {}).get("busy", [])),
        then_path=(task.get("then") or {}).get("path"),
        then_from=tuple(sorted(((task.get("then") or {}).get("from") or {}).items())),
        attention=tuple(sorted((task.get("attention") or {}).items())),
        batch=(str(b["path"]), str(b.get("ids", "ids")), str(b.get("items", "")),
               str(b.get("id", "id")), str(b.get("wrap", "")))
        if (b := task.get("batch")) else None,
        batch_max=int((task.get("batch") or {}).get("max", 100)))


def _task_doc(task: TaskSpec | None) -> dict[str, Any]:
    if task is None:
        return {}
    doc: dict[str, Any] = {"id": task.id_path, "status": task.status_path,
                           "success": sorted(task.success), "failure": sorted(task.failure),
                           "interval": task.interval, "timeout": task.timeout}
    for name, value in (("poll_url_from", task.poll_url_from), ("poll_path", task.poll_path),
                        ("error", task.error_path)):
        if value is not None:
            doc[name] = value
    if task.then_path is not None:
        doc["then"] = {"path": task.then_path, "from": dict(task.then_from)}
    if task.attention:
        doc["attention"] = dict(task.attention)
    if task.accept_path is not None:
        doc["accept"] = {"path": task.accept_path, "values": sorted(task.accept_values),
                         **({"polls": True} if task.accept_polls else {}),
                         **({"fails": sorted(task.accept_fails)} if task.accept_fails else {}),
                         **({"hint": task.accept_hint} if task.accept_hint else {}),
                         **({"busy": sorted(task.accept_busy)} if task.accept_busy else {}),
                         **({"error": task.accept_error} if task.accept_error else {})}
    return doc


@cache
def load_catalog() -> dict[str, Endpoint]:
    """Every endpoint of the shipped catalog, by id."""
    catalog: dict[str, Endpoint] = {}
    for _provider, entry in iter_endpoint_files():
        if entry.name.startswith("_"):
            continue
        import json

        doc = json.loads(entry.read_text(encoding="utf-8"))
        endpoint = Endpoint.from_dict(doc)
        catalog[endpoint.id] = endpoint
    return catalog


@cache
def shared_definitions() -> list[dict[str, Any]]:
    """The shared `_*.json` definition documents that endpoint schemas `$ref`."""
    import json

    return [json.loads(entry.read_text(encoding="utf-8"))
            for _provider, entry in iter_endpoint_files() if entry.name.startswith("_")]


def get_endpoint(endpoint_id: str) -> Endpoint:
    """Look an endpoint up by id.

    Raises:
        UnknownEndpointError: no such id; its hint names the closest one.
    """
    return find_endpoint(endpoint_id, load_catalog())


GENERATED_DEFS = "with:"  # recipe/editorschema.py's per-endpoint parameter schemas


def recipe_schema() -> dict[str, Any]:
    """The hand-written recipe schema `flow validate` compiles: the shipped file without
    the per-endpoint part `recipe/editorschema.py` generates for editors."""
    shipped: dict[str, Any] = read_json("recipe.schema.json")
    schema = {k: v for k, v in shipped.items() if k != "allOf"}
    schema["$defs"] = {k: v for k, v in shipped.get("$defs", {}).items()
                       if not k.startswith(GENERATED_DEFS)}
    schema["$defs"]["step"] = step = dict(schema["$defs"]["step"])
    step["properties"] = dict(step["properties"])
    step["properties"]["uses"] = {k: v for k, v in step["properties"]["uses"].items()
                                  if k != "examples"}
    return schema


# --- the path language -------------------------------------------------------------------

_PART = re.compile(r"([^.\[\]]+)|\[(\*|-?\d+)\]")


@cache
def _compile_path(path: str) -> tuple[str | int, ...]:
    tokens: list[str | int] = []
    for name, index in _PART.findall(path):
        if name:
            tokens.append(name)
        else:
            tokens.append("*" if index == "*" else int(index))
    return tuple(tokens)


_MISSING = object()


def _walk(doc: Any, tokens: tuple[str | int, ...]) -> Any:
    for pos, token in enumerate(tokens):
        if token == "*":
            if not isinstance(doc, list):
                doc = [doc] if doc is not None and doc is not _MISSING else []
            rest = tokens[pos + 1:]
            values = [_walk(item, rest) for item in doc]
            return [v for v in values if v is not _MISSING and v is not None]
        if isinstance(token, int):
            if not isinstance(doc, list) or not -len(doc) <= token < len(doc):
                return _MISSING
            doc = doc[token]
        else:
            if not isinstance(doc, dict) or token not in doc:
                return _MISSING
            doc = doc[token]
    return doc


def extract(doc: Any, path: str, default: Any = None) -> Any:
    """Follow ``path`` into a JSON document.

    ``a.b[0]`` picks, ``a[*].b`` collects a list, ``x|y`` takes the first alternative present.

    Example:
        >>> extract({"data": [{"url": "u1"}, {"url": "u2"}]}, "data[*].url")
        ['u1', 'u2']
    """
    for alternative in path.split("|"):
        value = _walk(doc, _compile_path(alternative.strip()))
        if value is not _MISSING and value is not None:
            return value
    return default


def catalog_with(local: dict[str, Endpoint]) -> dict[str, Endpoint]:
    """The built-in catalog with a recipe's own entries added or overriding."""
    return {**load_catalog(), **local} if local else load_catalog()


def find_endpoint(endpoint_id: str, catalog: dict[str, Endpoint]) -> Endpoint:
    """Look an endpoint up by id in ``catalog``.

    Raises:
        UnknownEndpointError: no such id; its hint names the closest one.
    """
    try:
        return catalog[endpoint_id]
    except KeyError:
        close = difflib.get_close_matches(endpoint_id, list(catalog), n=1, cutoff=0.5)
        if not close and "." not in endpoint_id:
            close = [k for k in catalog if k.endswith("." + endpoint_id)][:1]
        raise UnknownEndpointError(endpoint_id, close[0] if close else None) from None
