"""Loads a recipe file into frozen Recipe/Step values, collecting every problem with its place.

source → schema → models. Checks what needs no graph: endpoints, parameters with literal
values, template syntax, `needs` targets, `save` paths. References and cycles are graph.py's.
"""

from __future__ import annotations

import difflib
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..catalog.entries import (
    DEFAULT_BASE_URL,
    DEFAULT_KEY_ENV,
    Endpoint,
    UnknownEndpointError,
    catalog_with,
    find_endpoint,
)
from ..errors import Issue, Location, SpecError, UsageError
from ..net.providers import DEFAULT_PROFILE, Provider, make_provider
from .schema import check_endpoint_data, check_params, check_recipe_data, no_save_problem
from .source import PathKey, SourceMap, load_source, parse_text
from .source import dotted as _dotted
from .templating import Template, TemplateProblem, is_template, iter_strings, parse_template

DEFAULT_CONCURRENCY = 4
DEFAULT_TIMEOUT = 120.0
DEFAULT_RETRIES = 4
DEFAULT_OUTPUT_DIR = "assets"


@dataclass(frozen=True, slots=True)
class Step:
    """One step as written in the recipe (before matrix expansion)."""

    id: str
    index: int
    uses: str
    endpoint: Endpoint | None
    params: dict[str, Any]
    needs: tuple[str, ...]
    matrix: dict[str, Any]
    condition: Any
    save: tuple[str, ...]
    outputs: dict[str, str]
    retries: int
    timeout: float
    cache: bool
    description: str
    location: Location
    templates: tuple[tuple[PathKey, Template], ...] = ()
    provider: str = DEFAULT_PROFILE  # the name of its provider profile
    max_in_flight: int | None = None  # its own cap on tasks submitted and not finished

    @property
    def output_names(self) -> list[str]:
        names = set(self.outputs)
        if self.endpoint:
            names.update(self.endpoint.output_names)
        return sorted(names)


@dataclass(frozen=True, slots=True)
class Recipe:
    """A loaded recipe. Paths are resolved against the recipe's folder."""

    path: Path
    display: str
    name: str
    providers: dict[str, Provider]
    vars: dict[str, Any]
    concurrency: int
    output_dir: Path
    steps: dict[str, Step]
    source_map: SourceMap
    digest: str
    var_overrides: dict[str, Any] = field(default_factory=dict)
    budget: float | None = None
    description: str = ""
    # every file loading it read besides the recipe (its local catalog entries), and the
    # folders whose listing decided which (a `catalog:` folder): what a stamp must watch
    read_files: tuple[Path, ...] = ()
    read_folders: tuple[Path, ...] = ()

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def default_provider(self) -> Provider:
        return self.providers[DEFAULT_PROFILE]

    @property
    def base_url(self) -> str:
        return self.default_provider.base_url

    @property
    def api_key_env(self) -> str:
        return self.default_provider.api_key_env

    def provider_of(self, step: Step) -> Provider:
        """The profile a step calls through (`provider:` on the step, else the default)."""
        return self.providers.get(step.provider, self.default_provider)


def parse_var_overrides(pairs: list[str], files: list[Path] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """``--var k=v`` (v read as YAML: numbers, lists…) and ``--vars-file`` mappings.

    Raises:
        UsageError: a pair without ``=`` or a vars file that is not a mapping.
        SpecError: a vars file that is not valid YAML.
    """
    values: dict[str, Any] = {}
    for vars_file in files:
        source = load_source(vars_file)
        values.update(source.data)
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--var {pair!r} is not NAME=VALUE",
                             hint="for example: --var brand=Acme")
        try:
            value, _ = parse_text(raw, "--var") if raw.strip() else ("", None)
        except SpecError:
            value = raw
        values[name.strip()] = raw if value is None or isinstance(value, dict) else value
    return values


def _as_tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def _template_issues(value: Any, base: PathKey, smap: SourceMap,
                     found: list[tuple[PathKey, Template]], issues: list[Issue]) -> None:
    for path, text in iter_strings(value, base):
        if not is_template(text):
            continue
        try:
            found.append((path, parse_template(text)))
        except TemplateProblem as exc:
            message = exc.message
            if exc.line and "\n" in text.strip():
                message += f" (line {exc.line} of the template)"
            issues.append(Issue(smap.at(path), f"{_dotted(path)}: {message}",
                                exc.hint or ("templates use {{ expression }} and "
                                             "{% statement %}" if "syntax" in exc.message
                                             else None)))


def _strip_templates(value: Any) -> Any:
    """The literal part of a parameter tree: templated values are dropped, and so is a
    list that holds one (its length and items are only known once rendered)."""
    if isinstance(value, dict):
        return {k: _strip_templates(v) for k, v in value.items() if not _templated(v)}
    if isinstance(value, list):
        return [_strip_templates(v) for v in value]
    return value


def _templated(value: Any) -> bool:
    if isinstance(value, list):
        return any(_templated(v) for v in value)
    return is_template(value)


def check_literal_params(endpoint: Endpoint, params: dict[str, Any], base: PathKey,
                         smap: SourceMap) -> list[Issue]:
    """Check the literal parameters now; templated ones are checked after rendering."""
    literal = _strip_templates(params)
    # declared defaults (a pinned model) take part, except where a template decides
    literal = endpoint.coerced({**endpoint.defaults_for(params), **literal})
    templated = {k for k, v in params.items() if _templated(v)}
    issues = []
    for path, message, hint in check_params(endpoint, literal):
        if message.startswith("missing required key"):
            names = re.findall(r"'([^']+)'", message)
            if any(name in templated for name in names):
                continue
            message = message.replace("missing required key", "missing required parameter")
            hint = hint or f"`flow endpoints {endpoint.id}` shows what it needs"
        if path and path[0] in templated:
            continue
        where = smap.key_at((*base, *path)) if message.startswith("unknown parameter") \
            else smap.at((*base, *path))
        label = _dotted((*base, *path)) if path else _dotted(base)
        issues.append(Issue(where, f"{label}: {message}", hint))
    return issues


def check_save_path(rendered: str) -> str | None:
    """Why a rendered save path is unacceptable, or None."""
    if not rendered.strip():
        return "save path is empty"
    text = rendered.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        return f"save path {rendered!r} is absolute"
    # only `..` segments, or nothing but dots and slashes, can leave or be the output
    # folder itself (normpath for each of 100,000 paths is a plan's largest cost otherwise)
    if ".." in text or not text.strip("./"):
        normal = posixpath.normpath(text)
        if normal == ".." or normal.startswith("../") or normal == ".":
            return f"save path {rendered!r} escapes the output folder"
    if "\0" in text:
        return "save path contains a NUL byte"
    return None


def _build_step(step_id: str, index: int, raw: dict[str, Any], smap: SourceMap,
                defaults: dict[str, Any], issues: list[Issue], *,
                catalog: dict[str, Endpoint], providers: dict[str, Provider]) -> Step:
    base: PathKey = ("steps", step_id)
    uses = _text(raw.get("uses"), "")
    profile = _step_profile(raw, base, smap, providers, issues)
    endpoint = _step_endpoint(uses, profile, raw, base, smap, issues, catalog=catalog,
                              providers=providers)
    params = _mapping(raw.get("with"))
    matrix = _mapping(raw.get("matrix"))
    save = raw.get("save")
    save_list = [save] if isinstance(save, str) else \
        [s for s in save if isinstance(s, str)] if isinstance(save, list) else []
    outputs = _mapping(raw.get("outputs"))
    templates: list[tuple[PathKey, Template]] = []
    for key, value in (("with", params), ("matrix", matrix), ("if", raw.get("if")),
                       ("outputs", outputs)):
        _template_issues(value, (*base, key), smap, templates, issues)
    _template_issues(save if isinstance(save, (str, list)) else None, (*base, "save"), smap,
                     templates, issues)
    if endpoint is not None:
        issues.extend(check_literal_params(endpoint, params, (*base, "with"), smap))
    _save_issues(step_id, save, save_list, endpoint, params, smap, issues)
    return Step(
        id=step_id, index=index, uses=uses, endpoint=endpoint, params=params,
        needs=_as_tuple(raw.get("needs")), matrix=matrix, condition=raw.get("if", True),
        save=tuple(save_list), outputs={k: v for k, v in outputs.items() if isinstance(v, str)},
        retries=_int(raw.get("retries"), _int(defaults.get("retries"), DEFAULT_RETRIES)),
        timeout=_num(raw.get("timeout"), _num(defaults.get("timeout"), DEFAULT_TIMEOUT)),
        cache=raw.get("cache", defaults.get("cache", True)) is not False,
        description=_text(raw.get("description"), ""),
        location=smap.key_at(base), templates=tuple(templates), provider=profile,
        max_in_flight=_int(raw.get("max_in_flight"), 0) or None,
    )


def _step_profile(raw: dict[str, Any], base: PathKey, smap: SourceMap,
                  providers: dict[str, Provider], issues: list[Issue]) -> str:
    """The provider profile a step names (the default one when it names none, or one the
    recipe does not declare, which is an issue)."""
    profile = _text(raw.get("provider"), DEFAULT_PROFILE)
    if profile not in providers:
        close = difflib.get_close_matches(profile, list(providers), n=1)
        issues.append(Issue(smap.at((*base, "provider")),
                            f"{_dotted(base)}.provider: no provider profile {profile!r}",
                            f"did you mean {close[0]!r}?" if close else
                            "name it under `providers:` (known: "
                            + ", ".join(sorted(providers)) + ")"))
        profile = DEFAULT_PROFILE
    return profile


def _step_endpoint(uses: str, profile: str, raw: dict[str, Any], base: PathKey,
                   smap: SourceMap, issues: list[Issue], *, catalog: dict[str, Endpoint],
                   providers: dict[str, Provider]) -> Endpoint | None:
    """The catalog entry a step `uses`, as its provider's kind serves it; None (and an
    issue) when there is no such entry or that kind of provider does not serve it."""
    endpoint: Endpoint | None = None
    if uses:
        try:
            endpoint = find_endpoint(uses, catalog)
        except UnknownEndpointError as exc:
            issues.append(Issue(smap.at((*base, "uses")), f"{_dotted(base)}.uses: {exc.message}",
                                exc.hint))
    if endpoint is not None and not endpoint.local and not endpoint.generic:
        kind = providers[profile].kind
        if kind not in endpoint.kinds:
            where = smap.at((*base, "provider")) if "provider" in raw else \
                smap.at((*base, "uses"))
            issues.append(Issue(where, f"{_dotted(base)}: {uses} is not served by provider "
                                       f"{profile!r} (a {kind} provider)",
                                f"{uses} is served by: {', '.join(endpoint.kinds)}; pick a "
                                "provider of that kind, or add an entry for it with `catalog:`"))
            endpoint = None
        else:
            endpoint = endpoint.for_kind(kind)
    return endpoint


def _save_issues(step_id: str, save: Any, save_list: list[str], endpoint: Endpoint | None,
                 params: dict[str, Any], smap: SourceMap, issues: list[Issue]) -> None:
    """The problems of a step's literal `save:` paths, and of saving at all when its
    literal parameters never give files (the entry's `no_save`)."""
    base: PathKey = ("steps", step_id)
    if endpoint is not None and save_list and endpoint.no_save is not None:
        never = no_save_problem(endpoint, _strip_templates(params))
        if never is not None:
            issues.append(Issue(smap.at((*base, "save")), f"{_dotted(base)}.save: {never[0]}",
                                never[1].replace("<this step>", step_id) if never[1] else None))
    for position, target in enumerate(save_list):
        if is_template(target):
            continue
        problem = check_save_path(target)
        if problem:
            where = smap.at((*base, "save") if isinstance(save, str) else (*base, "save", position))
            issues.append(Issue(where, f"{_dotted(base)}.save: {problem}",
                                "save paths are relative to output_dir, e.g. logo.png or "
                                "icons/logo.png"))


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any, default: str) -> str:
    return value if isinstance(value, str) else default


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _num(value: Any, default: float) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else default


def load_recipe(path: Path, *, display: str | None = None,
                var_overrides: dict[str, Any] | None = None) -> tuple[Recipe | None, list[Issue]]:
    """Read and check a recipe file.

    Returns:
        (recipe, issues). The recipe is None only when the file could not be read as a
        mapping at all; otherwise it is built from whatever parts were well-formed, so later
        checks (graph, references) can still report their problems in the same pass.
    """
    try:
        source = load_source(path, display)
    except SpecError as exc:
        return None, exc.issues
    data, smap = source.data, source.map
    issues = check_recipe_data(data, smap)
    providers = _providers(data)
    read = LocalCatalog()
    catalog = catalog_with(_local_catalog(data, smap, path.resolve().parent, issues, read))
    defaults = _mapping(data.get("defaults"))
    variables = dict(_mapping(data.get("vars")))
    overrides = var_overrides or {}
    for name in overrides:
        if name not in variables:
            close = difflib.get_close_matches(name, list(variables), n=1)
            raise UsageError(f"--var {name}: the recipe has no variable {name!r}",
                             hint=f"did you mean {close[0]!r}?" if close else
                             "declare it under `vars:` first"
                             + (f" (known: {', '.join(sorted(variables))})" if variables else ""))
    variables.update(overrides)
    raw_steps = _mapping(data.get("steps"))
    steps: dict[str, Step] = {}
    for index, (step_id, raw) in enumerate(raw_steps.items()):
        if isinstance(raw, dict):
            steps[step_id] = _build_step(step_id, index, raw, smap, defaults, issues,
                                         catalog=catalog, providers=providers)
    for step in steps.values():
        for position, need in enumerate(step.needs):
            if need not in raw_steps:
                raw_needs = data["steps"][step.id].get("needs")
                where = smap.at(("steps", step.id, "needs") if isinstance(raw_needs, str)
                                else ("steps", step.id, "needs", position))
                close = difflib.get_close_matches(need, list(raw_steps), n=1)
                defined = smap.key_at(("steps", close[0])) if close else None
                hint = (f"did you mean {close[0]!r}? (defined at {defined})"
                        if close else "`needs` lists step ids of this recipe")
                issues.append(Issue(where, f"steps.{step.id}.needs: unknown step {need!r}", hint))
    output_dir = _text(data.get("output_dir"), DEFAULT_OUTPUT_DIR)
    recipe = Recipe(
        path=path.resolve(), display=smap.path,
        name=_text(data.get("name"), path.stem), providers=providers, vars=variables,
        description=_text(data.get("description"), ""),
        concurrency=_int(data.get("concurrency"), DEFAULT_CONCURRENCY),
        output_dir=(path.resolve().parent / output_dir),
        steps=steps, source_map=smap, digest=source.digest, var_overrides=overrides,
        budget=_num(data.get("budget"), -1.0) if _num(data.get("budget"), -1.0) >= 0 else None,
        read_files=tuple(read.files), read_folders=tuple(read.folders),
    )
    return recipe, issues


def _providers(data: dict[str, Any]) -> dict[str, Provider]:
    """The default profile (`provider:`) and the named ones (`providers:`)."""
    profiles = {DEFAULT_PROFILE: make_provider(DEFAULT_PROFILE, _mapping(data.get("provider")),
                                               default_url=DEFAULT_BASE_URL,
                                               default_key_env=DEFAULT_KEY_ENV)}
    for name, doc in _mapping(data.get("providers")).items():
        if isinstance(doc, dict) and name != DEFAULT_PROFILE:
            profiles[name] = make_provider(name, doc, default_url=DEFAULT_BASE_URL,
                                           default_key_env=DEFAULT_KEY_ENV)
    return profiles


CATALOG_SUFFIXES = (".json", ".yaml", ".yml")


@dataclass(slots=True)
class LocalCatalog:
    """What reading a recipe's `catalog:` read: its entry files and its folders."""

    files: list[Path] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)


def catalog_files(folder: Path) -> list[Path]:
    """The entry files of a `catalog:` folder, in order (shared `_*` files left out)."""
    return sorted(p for p in folder.rglob("*") if p.suffix in CATALOG_SUFFIXES
                  and not p.name.startswith("_"))


def _local_catalog(data: dict[str, Any], smap: SourceMap, folder: Path,
                   issues: list[Issue], read: LocalCatalog | None = None
                   ) -> dict[str, Endpoint]:
    """The recipe's own catalog entries (`catalog:` files or folders, beside the recipe);
    ``read`` hears every file and folder read."""
    read = read if read is not None else LocalCatalog()
    listed = data.get("catalog")
    if not isinstance(listed, list):
        return {}
    found: dict[str, Endpoint] = {}
    for position, name in enumerate(listed):
        if not isinstance(name, str):
            continue
        where = smap.at(("catalog", position))
        target = (folder / name).resolve()
        if not target.is_relative_to(folder.resolve()):
            issues.append(Issue(where, f"catalog[{position}]: {name!r} is outside the recipe's "
                                       "folder", "keep catalog entries beside the recipe"))
            continue
        if target.is_dir():
            files = catalog_files(target)
            read.folders.append(target)
        elif target.is_file():
            files = [target]
        else:
            issues.append(Issue(where, f"catalog[{position}]: no such file or folder {name!r}",
                                "paths are relative to the recipe's folder"))
            continue
        for file in files:
            read.files.append(file)
            shown = posixpath.join(name, file.relative_to(target).as_posix()) \
                if target.is_dir() else name
            entry = _local_entry(file, shown, issues)
            if entry is not None:
                found[entry.id] = entry
    return found


def _local_entry(file: Path, shown: str, issues: list[Issue]) -> Endpoint | None:
    try:
        source = load_source(file, shown)
    except SpecError as exc:
        issues.extend(exc.issues)
        return None
    problems = check_endpoint_data(source.data, source.map)
    if problems:
        issues.extend(problems)
        return None
    return Endpoint.from_dict(source.data, origin=shown)


def load_recipe_catalog(path: Path) -> dict[str, Endpoint]:
    """The catalog a recipe sees: built in, plus its own `catalog:` entries.

    Raises:
        SpecError: the recipe or one of its entry files cannot be read, or an entry breaks
            the catalog format.
    """
    source = load_source(path)
    issues: list[Issue] = []
    local = _local_catalog(source.data, source.map, path.resolve().parent, issues)
    if issues:
        raise SpecError(issues)
    return catalog_with(local)
