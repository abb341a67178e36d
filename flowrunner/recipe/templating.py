"""Jinja templating for recipe values: parse once, find references statically, render safely.

The only module that imports `jinja2`. Templates run in an immutable sandbox with undefined
names as errors; a value that is exactly one ``{{ expression }}`` keeps its native type.
No environment variables, no clock: a recipe renders the same everywhere.

A recipe may come from a pull request, so rendering is bounded *while* it runs, not after:
every loop iteration and call spends from a budget (`MAX_STEPS`), every string built by
`*`, `+`, `~`, `join` or `replace` from another (`MAX_BUILT_CHARS`), output stops at
`MAX_RENDERED_CHARS`, and width arguments (`center`, `indent`, `wordwrap`, `truncate`,
`format`, str methods) are clamped or refused before anything is allocated.
"""

from __future__ import annotations

import posixpath
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import TemplateProblem

MAX_RENDERED_CHARS = 1_000_000
MAX_STEPS = 100_000  # loop iterations and calls in one render (Jinja's own range() cap)
MAX_BUILT_CHARS = 10_000_000  # characters of strings built in one render
MAX_WIDTH = MAX_RENDERED_CHARS  # a width or padding argument beyond this is clamped
MAX_CPU_SECONDS = 2.0  # a backstop: no template of a real recipe comes near it
MAX_INT_BITS = 10_000  # about 3,000 digits: a number no parameter needs
_MARKERS = ("{{", "{%", "{#")
_NATIVE = re.compile(r"^\s*\{\{([-+]?)(.*?)([-+]?)\}\}\s*$", re.S)

Ref = tuple[str | int, ...]


class _Budget(threading.local):
    """What the render running in this thread may still spend (None: no render)."""

    steps: int | None = None
    chars: int = 0
    cpu_deadline: float = 0.0


_BUDGET = _Budget()


def _spend(steps: int = 1, chars: int = 0) -> None:
    """Take ``steps`` (loop iterations, calls) and ``chars`` (characters built) from this
    render's budget.

    Raises:
        TemplateProblem: the budget is spent.
    """
    budget = _BUDGET
    if budget.steps is None:
        return
    budget.steps -= steps
    budget.chars -= chars
    if budget.steps < 0:
        raise TemplateProblem(f"template does too much work (limit: {MAX_STEPS:,} loop "
                              "iterations and calls per value)")
    if budget.chars < 0:
        raise TemplateProblem(f"template builds too many strings (limit: "
                              f"{MAX_BUILT_CHARS:,} characters per value)")
    if budget.steps % 256 == 0 and time.thread_time() > budget.cpu_deadline:
        raise TemplateProblem(f"template takes too long to render (limit: "
                              f"{MAX_CPU_SECONDS:g} s of CPU per value)")


def _counted(iterable: Iterable[Any]) -> Iterator[Any]:
    """A `{% for %}` loop's iterable, one step of the budget per item."""
    for item in iterable:
        _spend()
        yield item


def _sized(value: Any) -> Any:
    """A `~` concatenation's result, counted against the budget of built characters."""
    if isinstance(value, str):
        _check_size(len(value))
        _spend(0, len(value))
    return value


def _check_size(size: int) -> None:
    if size > MAX_RENDERED_CHARS:
        raise TemplateProblem(f"template would build a value of {size:,} items "
                              f"(limit {MAX_RENDERED_CHARS:,})")


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_percent_format(text: str) -> None:
    """Refuse a `%` format whose width or precision would allocate beyond the caps."""
    for width, precision in _PERCENT_SPEC.findall(text):
        for value in (width, precision):
            if value == "*" or (value and int(value) > MAX_WIDTH):
                raise TemplateProblem(f"format width {value} is too large in a template "
                                      f"(limit {MAX_WIDTH:,})")


def _check_brace_format(text: str) -> None:
    """Refuse a `str.format` field whose width or precision would allocate beyond the caps."""
    import string

    try:
        fields = list(string.Formatter().parse(text))
    except ValueError:
        return  # str.format says what is wrong with it
    for _, _, spec, _ in fields:
        if not spec:
            continue
        if "{" in spec or any(int(n) > MAX_WIDTH for n in re.findall(r"\d+", spec)):
            raise TemplateProblem(f"format spec {spec!r} is too wide for a template "
                                  f"(limit {MAX_WIDTH:,})")


def _str_method_checked(owner: str, name: str, args: tuple[Any, ...],
                        kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """The arguments of a str method call, refused when the result would be too large
    (a width past `MAX_WIDTH`, a replace or expandtabs that would grow past the cap),
    checked before the method allocates it."""
    if name in ("center", "ljust", "rjust", "zfill") and args and isinstance(args[0], int):
        if args[0] > MAX_WIDTH:
            raise TemplateProblem(f"{name} width {args[0]:,} is over the limit of "
                                  f"{MAX_WIDTH:,} in a template")
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(size, int):
            _check_size(len(owner) * max(1, size))
    elif name == "replace" and len(args) >= 2 and all(isinstance(a, str) for a in args[:2]):
        old, new = args[0], args[1]
        count = owner.count(old) if old else len(owner) + 1
        if len(args) > 2 and isinstance(args[2], int) and args[2] >= 0:
            count = min(count, args[2])
        grown = len(owner) + count * (len(new) - len(old))
        _check_size(grown)
        _spend(0, max(0, grown))
    elif name in ("format", "format_map"):
        _check_brace_format(owner)
    return args


def _environment_class() -> type:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class _Environment(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset(["*", "**", "+", "%"])

        def getattr(self, obj: Any, attribute: str) -> Any:
            # Recipe data is mappings: `vars.items` must mean the variable, not dict.items.
            if isinstance(obj, dict) and attribute in obj:
                return obj[attribute]
            return super().getattr(obj, attribute)

        def compile(self, source: Any, name: str | None = None,
                    filename: str | None = None, raw: bool = False,
                    defer_init: bool = False) -> Any:
            # every template and expression passes here: its loops and `~` get counted
            if isinstance(source, str):
                source = self._parse(source, name, filename)
            return super().compile(_bounded(source), name, filename, raw,  # type: ignore[call-overload]
                                   defer_init)

        def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
            _spend()
            target = getattr(obj, "__wrapped__", obj)  # a sandboxed str.format
            owner = getattr(target, "__self__", None)
            if isinstance(owner, str):
                args = _str_method_checked(owner, getattr(target, "__name__", ""), args,
                                           kwargs)
            return super().call(context, obj, *args, **kwargs)

        def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
            if operator_name == "**" and isinstance(right, int) and (right > 64 or (
                    isinstance(left, int) and abs(left).bit_length() * right > MAX_INT_BITS)):
                raise TemplateProblem("exponent too large in template")
            if operator_name == "*":
                if isinstance(left, int) and isinstance(right, int) and \
                        abs(left).bit_length() + abs(right).bit_length() > MAX_INT_BITS:
                    raise TemplateProblem("number too large in template")
                size = _sequence_size(left, right)
                _check_size(size)
                _spend(0, size)
            if operator_name == "+" and isinstance(left, (str, list)) and \
                    isinstance(right, type(left)):
                _check_size(len(left) + len(right))
                _spend(0, len(left) + len(right))
            if operator_name == "%" and isinstance(left, str):
                _check_percent_format(left)
            return super().call_binop(context, operator_name, left, right)

    return _Environment


def _bounded(ast: Any) -> Any:
    """``ast`` with every `{% for %}` iterable counted and every `~` result sized."""
    from jinja2 import nodes
    from jinja2.visitor import NodeTransformer

    class Bound(NodeTransformer):
        def visit_For(self, node: Any) -> Any:
            self.generic_visit(node)
            node.iter = nodes.Filter(node.iter, "_flow_counted", [], [], None, None,
                                     lineno=node.lineno)
            return node

        def visit_Concat(self, node: Any) -> Any:
            self.generic_visit(node)
            return nodes.Filter(node, "_flow_sized", [], [], None, None, lineno=node.lineno)

    return Bound().visit(ast)


def _sequence_size(left: Any, right: Any) -> int:
    """How many items (and characters) ``left * right`` would hold, nested ones counted:
    `[[0] * 999999] * 999999` is a trillion, not a million."""
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, (str, list, tuple)) and isinstance(count, int):
            items = _weight(seq) - (0 if isinstance(seq, str) else 1)  # its items, repeated
            return items * max(0, count)
    return 0


def _weight(value: Any, limit: int = MAX_RENDERED_CHARS) -> int:
    """Scalars, characters and containers in ``value``, nested ones counted, stopping just
    past ``limit`` (a shared inner list counts each time it appears, as its text would)."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item) or 1
        elif isinstance(item, dict):
            total += 1
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            total += 1
            stack.extend(item)
        elif isinstance(item, int) and not isinstance(item, bool) and \
                item.bit_length() > MAX_INT_BITS:
            raise TemplateProblem("number too large in template")
        else:
            total += 1
    return total


def _clamped(filter_: Callable[..., Any], *, position: int, name: str,
             refuse: bool = False) -> Callable[..., Any]:
    """``filter_`` with its width argument (at ``position`` after the value, or keyword
    ``name``) clamped to `MAX_WIDTH`; with ``refuse``, a width beyond it (which the filter
    would allocate: padding, indentation) is refused instead."""
    import functools

    # a filter that takes Jinja's context or environment first has the value second
    index = position + 1 + (1 if hasattr(filter_, "jinja_pass_arg") else 0)

    def bounded(width: int) -> int:
        if refuse and width > MAX_WIDTH:
            raise TemplateProblem(f"{name} {width:,} is over the limit of {MAX_WIDTH:,} in a "
                                  "template")
        return min(width, MAX_WIDTH)

    @functools.wraps(filter_)  # keeps Jinja's marker of what the filter is passed first
    def clamped(*args: Any, **kwargs: Any) -> Any:
        if len(args) > index and isinstance(args[index], int):
            args = (*args[:index], bounded(args[index]), *args[index + 1:])
        if isinstance(kwargs.get(name), int):
            kwargs[name] = bounded(kwargs[name])
        return filter_(*args, **kwargs)

    return clamped


def _bounded_filters(filters: dict[str, Any]) -> None:
    """Clamp the width arguments of Jinja's filters, and size what `join`, `replace` and
    `format` would build, before they build it."""
    filters["center"] = _clamped(filters["center"], position=0, name="width", refuse=True)
    filters["indent"] = _clamped(filters["indent"], position=0, name="width", refuse=True)
    filters["wordwrap"] = _clamped(filters["wordwrap"], position=0, name="width")
    filters["truncate"] = _clamped(filters["truncate"], position=0, name="length")
    filters["tojson"] = _clamped(filters["tojson"], position=0, name="indent", refuse=True)
    filters["batch"] = _clamped(filters["batch"], position=0, name="linecount", refuse=True)
    filters["slice"] = _clamped(filters["slice"], position=0, name="slices", refuse=True)
    join, replace, format_ = filters["join"], filters["replace"], filters["format"]

    def checked_join(context: Any, value: Any, d: str = "", attribute: Any = None) -> Any:
        items = list(_counted(value))
        size = sum(len(str(i)) for i in items) + len(str(d)) * max(0, len(items) - 1)
        _check_size(size)
        _spend(0, size)
        return join(context, items, d, attribute)

    def checked_replace(context: Any, value: Any, old: Any, new: Any,
                        count: Any = None) -> Any:
        _str_method_checked(str(value), "replace", (str(old), str(new))
                            + ((count,) if isinstance(count, int) else ()), {})
        return replace(context, value, old, new, count)

    def checked_format(value: Any, *args: Any, **kwargs: Any) -> Any:
        _check_percent_format(str(value))
        return format_(value, *args, **kwargs)

    for name, new, old in (("join", checked_join, join), ("replace", checked_replace, replace)):
        setattr(new, "jinja_pass_arg", old.jinja_pass_arg)  # noqa: B010 - Jinja's marker
        filters[name] = new
    filters["format"] = checked_format
    sum_ = filters["sum"]

    def checked_sum(context: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
        if isinstance(start, (int, float)) and not isinstance(start, bool):
            return sum_(context, _counted(iterable), attribute, start)
        # lists or strings added up: sized first, then joined once (adding them one by one
        # copies the growing total each time)
        items = list(_counted(iterable))
        _check_size(_weight(items) + _weight(start))
        if attribute is None and isinstance(start, list) and \
                all(isinstance(item, (list, tuple)) for item in items):
            return [*start, *(part for item in items for part in item)]
        if attribute is None and isinstance(start, str) and \
                all(isinstance(item, str) for item in items):
            return start + "".join(items)
        return sum_(context, items, attribute, start)

    setattr(checked_sum, "jinja_pass_arg", sum_.jinja_pass_arg)  # noqa: B010 - Jinja's marker
    filters["sum"] = checked_sum
    filters["_flow_counted"] = _counted
    filters["_flow_sized"] = _sized


def _range(*args: int) -> range:
    """Jinja's sandboxed `range` (at most 100,000 items), said in our words."""
    from jinja2.sandbox import MAX_RANGE, safe_range

    try:
        return safe_range(*args)
    except OverflowError:
        raise TemplateProblem(f"range of {len(range(*args)):,} items is over the limit of "
                              f"{MAX_RANGE:,} in a template") from None


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
    _bounded_filters(env.filters)
    env.filters["basename"] = lambda v: posixpath.basename(str(v))
    env.filters["stem"] = lambda v: posixpath.splitext(posixpath.basename(str(v)))[0]
    env.filters["slug"] = _slug
    env.globals.clear()
    env.globals["range"] = _range
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

    outer = _BUDGET.steps, _BUDGET.chars, _BUDGET.cpu_deadline
    if outer[0] is None:  # a render inside a render (a macro) spends the outer budget
        _BUDGET.steps, _BUDGET.chars = MAX_STEPS, MAX_BUILT_CHARS
        _BUDGET.cpu_deadline = time.thread_time() + MAX_CPU_SECONDS
    try:
        if native:
            value = _compiled_expression(source)(**context)
        else:
            value = _streamed(_compiled_template(source), context)
    except TemplateProblem:
        raise
    except jinja2.UndefinedError as exc:
        raise TemplateProblem(_undefined_message(exc.message or "undefined value")) from None
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateProblem(f"not allowed in a template: {exc}") from None
    except jinja2.TemplateError as exc:
        raise TemplateProblem(str(exc), getattr(exc, "lineno", None)) from None
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError,
            AssertionError) as exc:  # Jinja checks some filter arguments with assert
        raise TemplateProblem(f"{type(exc).__name__}: {exc}") from None
    except RecursionError:
        raise TemplateProblem("template recursion too deep") from None
    except MemoryError:
        raise TemplateProblem("template needs more memory than there is") from None
    finally:
        _BUDGET.steps, _BUDGET.chars, _BUDGET.cpu_deadline = outer
    if isinstance(value, jinja2.Undefined):
        raise TemplateProblem(_undefined_message(str(value._undefined_message)))
    if native and _weight(value) > MAX_RENDERED_CHARS:  # a list or mapping: sized too
        raise TemplateProblem(f"template would build a value of over "
                              f"{MAX_RENDERED_CHARS:,} items")
    if isinstance(value, str) and len(value) > MAX_RENDERED_CHARS:
        raise TemplateProblem(f"template output exceeds {MAX_RENDERED_CHARS:,} characters")
    return value



def _streamed(template: Any, context: dict[str, Any]) -> str:
    """Render ``template``, stopping as soon as its output passes the cap.

    Raises:
        TemplateProblem: the output passed `MAX_RENDERED_CHARS`.
    """
    parts: list[str] = []
    size = 0
    for part in template.generate(context):
        size += len(part)
        if size > MAX_RENDERED_CHARS:
            raise TemplateProblem(f"template output exceeds {MAX_RENDERED_CHARS:,} characters")
        parts.append(part)
    return "".join(parts)


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
