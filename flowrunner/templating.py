"""Jinja templating for recipe values: parse once, find references statically, render safely.

The only module that imports `jinja2`. Templates run in an immutable sandbox with undefined
names as errors; a value that is exactly one ``{{ expression }}`` keeps its native type.
No environment variables, no clock: a recipe renders the same everywhere.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Any

from .errors import TemplateProblem

MAX_RENDERED_CHARS = 1_000_000
_MARKERS = ("{{", "{%", "{#")
_NATIVE = re.compile(r"^\s*\{\{([-+]?)(.*?)([-+]?)\}\}\s*$", re.S)

Ref = tuple[str | int, ...]


def _environment_class() -> type:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class _Environment(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset(["*", "**", "+"])

        def getattr(self, obj: Any, attribute: str) -> Any:
            # Recipe data is mappings: `vars.items` must mean the variable, not dict.items.
            if isinstance(obj, dict) and attribute in obj:
                return obj[attribute]
            return super().getattr(obj, attribute)

        def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
            if operator_name == "**" and isinstance(right, int) and right > 64:
                raise TemplateProblem("exponent too large in template")
            if operator_name == "*":
                size = _sequence_size(left, right)
                if size > MAX_RENDERED_CHARS:
                    raise TemplateProblem(f"template would build a value of {size:,} items "
                                          f"(limit {MAX_RENDERED_CHARS:,})")
            if operator_name == "+" and isinstance(left, (str, list)) and \
                    isinstance(right, type(left)):
                if len(left) + len(right) > MAX_RENDERED_CHARS:
                    raise TemplateProblem(
                        f"template output exceeds {MAX_RENDERED_CHARS:,} characters")
            return super().call_binop(context, operator_name, left, right)

    return _Environment


def _sequence_size(left: Any, right: Any) -> int:
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, (str, list, tuple)) and isinstance(count, int):
            return len(seq) * count
    return 0


def _slug(value: Any) -> str:
    """`Café Crème` → `cafe-creme`: accents transliterated, not dropped."""
    import unicodedata

    ascii_text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode()
    text = re.sub(r"[^A-Za-z0-9]+", "-", ascii_text).strip("-").lower()
    return text or "x"


def _make_environment() -> Any:
    import jinja2

    env = _environment_class()(undefined=jinja2.StrictUndefined, autoescape=False,
                               keep_trailing_newline=True)
    env.filters["basename"] = lambda v: posixpath.basename(str(v))
    env.filters["stem"] = lambda v: posixpath.splitext(posixpath.basename(str(v)))[0]
    env.filters["slug"] = _slug
    env.globals.clear()
    env.globals.update(range=env.globals.get("range", range))
    return env


_ENV: Any = None


def _env() -> Any:
    global _ENV
    if _ENV is None:
        _ENV = _make_environment()
    return _ENV


def is_template(value: Any) -> bool:
    return isinstance(value, str) and "{" in value and any(marker in value for marker in _MARKERS)


def _chains(ast: Any) -> set[Ref]:
    """Every attribute/item chain rooted at a name.

    ``steps.logo.files[0]`` → ('steps', 'logo', 'files', 0).
    """
    from jinja2 import nodes

    found: set[Ref] = set()
    inner: set[int] = set()
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        if id(node) in inner:
            continue
        parts: list[str | int] = []
        cursor = node
        while isinstance(cursor, (nodes.Getattr, nodes.Getitem)):
            inner.add(id(cursor))
            if isinstance(cursor, nodes.Getattr):
                parts.append(cursor.attr)
            elif isinstance(cursor.arg, nodes.Const) and isinstance(cursor.arg.value, (str, int)):
                parts.append(cursor.arg.value)
            else:
                parts = []  # dynamic index: keep only what is before it
            cursor = cursor.node
        if isinstance(cursor, nodes.Name):
            inner.add(id(cursor))
            found.add((cursor.name, *reversed(parts)))
    for name in ast.find_all(nodes.Name):
        if name.ctx == "load" and id(name) not in inner:
            found.add((name.name,))
    return found


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template string; compiled on first render and shared by identical strings."""

    source: str
    native: bool
    names: frozenset[str]
    refs: frozenset[Ref]
    pieces: tuple[str | Ref, ...] | None = None  # set for plain `{{ a.b[0] }}` substitutions

    def render(self, context: dict[str, Any]) -> Any:
        """Render with ``context`` (vars, steps, matrix, …).

        Raises:
            TemplateProblem: undefined name, sandbox violation, or output over the size cap.
        """
        if self.pieces is not None:
            value = self._render_simple(context)
            if value is not _UNSURE:
                return value
            # else Jinja decides: the same answer, the same error words
        return render_with_jinja(self.source, context, native=self.native)

    def _render_simple(self, context: dict[str, Any]) -> Any:
        """Plain substitutions without Jinja, a hundred times faster, for the cases where
        the answer is certain (mappings with the key, lists with the index); anything else
        gives _UNSURE, and Jinja renders it."""
        parts: list[str] = []
        for piece in self.pieces or ():
            if isinstance(piece, str):
                parts.append(piece)
                continue
            value = _lookup(context, piece)
            if value is _UNSURE:
                return _UNSURE
            if self.native:  # one expression: its value as it is
                return value
            parts.append(value if isinstance(value, str) else str(value))
        text = "".join(parts)
        if len(text) > MAX_RENDERED_CHARS:
            raise TemplateProblem(f"template output exceeds {MAX_RENDERED_CHARS:,} characters")
        return text


_UNSURE = object()  # the fast path cannot be sure of Jinja's answer: let Jinja render


def render_with_jinja(source: str, context: dict[str, Any], *, native: bool) -> Any:
    """Render ``source`` with the sandboxed Jinja environment (no fast path).

    Raises:
        TemplateProblem: undefined name, sandbox violation, or output over the size cap.
    """
    import jinja2

    try:
        if native:
            value = _compiled_expression(source)(**context)
        else:
            value = _compiled_template(source).render(context)
    except TemplateProblem:
        raise
    except jinja2.UndefinedError as exc:
        raise TemplateProblem(_undefined_message(exc.message or "undefined value")) from None
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateProblem(f"not allowed in a template: {exc}") from None
    except jinja2.TemplateError as exc:
        raise TemplateProblem(str(exc), getattr(exc, "lineno", None)) from None
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
        raise TemplateProblem(f"{type(exc).__name__}: {exc}") from None
    except RecursionError:
        raise TemplateProblem("template recursion too deep") from None
    if isinstance(value, jinja2.Undefined):
        raise TemplateProblem(_undefined_message(str(value._undefined_message)))
    if isinstance(value, str) and len(value) > MAX_RENDERED_CHARS:
        raise TemplateProblem(f"template output exceeds {MAX_RENDERED_CHARS:,} characters")
    return value



def _lookup(context: dict[str, Any], path: Ref) -> Any:
    """Follow ``path`` through mappings that have the key and lists that have the index;
    anything else (a string's letter, a method, a missing key) is Jinja's to answer."""
    value: Any = context
    for part in path:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, (list, tuple)) and isinstance(part, int) and \
                -len(value) <= part < len(value):
            value = value[part]
        else:
            return _UNSURE
    return value


_PATH = (r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*|\[\d+\]|"
         r"\['[^'\\{}]*'\]|\[\"[^\"\\{}]*\"\])*")
_SIMPLE = re.compile(r"\{\{ *(" + _PATH + r") *\}\}")
_PATH_PART = re.compile(r"([A-Za-z][A-Za-z0-9_]*)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


def _parse_simple(source: str) -> Template | None:
    """A Template for text with only ``{{ name.attr[0] }}`` substitutions, else None."""
    pieces: list[str | Ref] = []
    position = 0
    for match in _SIMPLE.finditer(source):
        pieces.append(source[position:match.start()])
        path: list[str | int] = []
        for name, index, single, double in _PATH_PART.findall(match.group(1)):
            path.append(name or (int(index) if index else single or double))
        if any(isinstance(p, str) and p.startswith("_") for p in path):
            return None  # let the sandbox judge
        pieces.append(tuple(path))
        position = match.end()
    pieces.append(source[position:])
    literals = [p for p in pieces if isinstance(p, str)]
    if any(marker in text for text in literals for marker in _MARKERS):
        return None
    refs = frozenset(p for p in pieces if isinstance(p, tuple))
    paths = [p for p in pieces if isinstance(p, tuple)]
    native = len(paths) == 1 and all(not text.strip() for text in literals)
    return Template(source=source, native=native, names=frozenset(str(r[0]) for r in refs),
                    refs=refs, pieces=tuple(p for p in pieces if p != ""))


def _undefined_message(message: str) -> str:
    message = message.replace("'dict object' has no attribute", "no key").replace(
        "'list object' has no element", "no item")
    return message


_TEMPLATES: dict[str, Template] = {}
_COMPILED: dict[str, Any] = {}


def _compiled_template(source: str) -> Any:
    compiled = _COMPILED.get(source)
    if compiled is None:
        compiled = _COMPILED[source] = _env().from_string(source)
    return compiled


def _compiled_expression(source: str) -> Any:
    key = "\0expr\0" + source
    compiled = _COMPILED.get(key)
    if compiled is None:
        match = _NATIVE.match(source)
        assert match is not None
        compiled = _COMPILED[key] = _env().compile_expression(match.group(2),
                                                              undefined_to_none=False)
    return compiled


def parse_template(source: str) -> Template:
    """Parse a template string (once per distinct string).

    Raises:
        TemplateProblem: a syntax error, with the line inside the template.
    """
    template = _TEMPLATES.get(source)
    if template is not None:
        return template
    template = _parse_simple(source)
    if template is not None:
        _TEMPLATES[source] = template
        return template
    import jinja2
    from jinja2 import meta, nodes

    env = _env()
    try:
        ast = env.parse(source)
        # code generation is where Jinja notices unknown filters and tests
        names = frozenset(meta.find_undeclared_variables(ast))
    except jinja2.TemplateSyntaxError as exc:
        raise _syntax_problem(exc, env) from None
    native = False
    if _NATIVE.match(source) and source.count("{{") == 1 and "{%" not in source:
        body = [node for node in ast.body if isinstance(node, nodes.Output)]
        parts = [part for node in body for part in node.nodes
                 if not (isinstance(part, nodes.TemplateData) and not part.data.strip())]
        native = len(body) == len(ast.body) == 1 and len(parts) == 1 and \
            not isinstance(parts[0], nodes.TemplateData)
    template = Template(source=source, native=native, names=names,
                        refs=frozenset(ref for ref in _chains(ast) if ref[0] in names))
    _TEMPLATES[source] = template
    return template


def _syntax_problem(exc: Any, env: Any) -> TemplateProblem:
    """A Jinja syntax error as a TemplateProblem; an unknown filter or test with a near miss."""
    import difflib

    message = exc.message or "invalid template"
    unknown = re.match(r"No (filter|test) named '([^']*)'", message)
    if unknown:
        kind, name = unknown.groups()
        known = sorted(env.filters if kind == "filter" else env.tests)
        close = difflib.get_close_matches(name, known, n=1)
        problem = TemplateProblem(f"template syntax error: unknown {kind} {name!r}", exc.lineno)
        problem.hint = f"did you mean {close[0]!r}?" if close else \
            f"known {kind}s: {', '.join(known)}"
        return problem
    return TemplateProblem(f"template syntax error: {message}", exc.lineno)


def iter_strings(value: Any, path: tuple[str | int, ...] = ()) -> Any:
    """Yield (path, string) for every string inside a nested value."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from iter_strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from iter_strings(item, (*path, index))


def render_value(value: Any, context: dict[str, Any]) -> Any:
    """Render every template inside a nested value; other values pass through unchanged.

    Raises:
        TemplateProblem: as Template.render; ``.path`` says where inside ``value``.
    """
    return _render(value, context, ())


def _render(value: Any, context: dict[str, Any], path: tuple[str | int, ...]) -> Any:
    if isinstance(value, str):
        if not is_template(value):
            return value
        try:
            return parse_template(value).render(context)
        except TemplateProblem as exc:
            exc.path = path
            raise
    if isinstance(value, dict):
        return {key: _render(item, context, (*path, key)) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, context, (*path, index)) for index, item in enumerate(value)]
    return value


def truthy(value: Any) -> bool:
    """How `if:` reads a rendered value: false, 0, '', 'false', 'no', 'off', none are false."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "no", "off", "0", "none", "null")
    return bool(value)


__all__ = ["Template", "TemplateProblem", "is_template", "iter_strings", "parse_template",
           "render_value", "truthy"]
