from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowrunner.errors import TemplateProblem
from flowrunner.recipe.templating import parse_template, render_value, render_with_jinja, truthy


def test_single_expression_keeps_native_type() -> None:
    context = {"vars": {"sizes": ["1024x1024", "2048x1024"], "n": 3, "m": {"a": 1}}}
    assert render_value("{{ vars.sizes }}", context) == ["1024x1024", "2048x1024"]
    assert render_value("{{ vars.n }}", context) == 3
    assert render_value("  {{ vars.m }}  ", context) == {"a": 1}
    assert render_value("n={{ vars.n }}", context) == "n=3"
    assert render_value("{{ vars.n }}{{ vars.n }}", context) == "33"


def test_nested_values_render_and_others_pass_through() -> None:
    context = {"vars": {"c": 5}}
    value = {"a": ["x{{ vars.c }}", 2, True], "b": {"c": "{{ vars.c + 1 }}"}, "d": None}
    assert render_value(value, context) == {"a": ["x5", 2, True], "b": {"c": 6}, "d": None}


def test_undefined_names_are_errors() -> None:
    with pytest.raises(TemplateProblem) as info:
        render_value("{{ vars.missing }}", {"vars": {}})
    assert "missing" in info.value.message
    with pytest.raises(TemplateProblem):
        render_value("x {{ nothing }}", {})


def test_variables_named_like_dict_methods_are_the_variables() -> None:
    assert render_value("{{ vars.items }}", {"vars": {"items": [1]}}) == [1]


@pytest.mark.parametrize("template", [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ vars.__class__.__init__.__globals__ }}",
    "{{ lipsum.__globals__ }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ '{0.__class__}'.format(vars) }}",
    "{{ vars.update({'x': 1}) }}",
])
def test_sandbox_refuses_escapes(template: str) -> None:
    with pytest.raises(TemplateProblem):
        render_value(template, {"vars": {"a": 1}})


def test_rendering_is_size_capped() -> None:
    with pytest.raises(TemplateProblem) as info:
        render_value("{{ 'x' * 200000000 }}", {})
    assert "limit" in info.value.message
    with pytest.raises(TemplateProblem):
        render_value("{% for i in range(100000) %}{{ 'abcdefghijklmnopqrstuvwxyz' }}"
                     "{% endfor %}", {})


def test_static_references_are_found() -> None:
    template = parse_template("{{ steps.logo.files[0] }} {{ vars.brand | upper }} "
                              "{% for s in vars.sizes %}{{ s }}{% endfor %} {{ matrix.size }}")
    assert template.refs == {("steps", "logo", "files", 0), ("vars", "brand"),
                             ("vars", "sizes"), ("matrix", "size")}
    assert template.names == {"steps", "vars", "matrix"}


def test_syntax_errors_carry_the_template_line() -> None:
    with pytest.raises(TemplateProblem) as info:
        parse_template("line one\n{{ oops }")
    assert info.value.line == 2
    assert "syntax error" in info.value.message


@pytest.mark.parametrize(("value", "expected"), [
    (True, True), (False, False), ("false", False), ("no", False), ("", False),
    ("yes", True), (0, False), (1, True), ([], False),
])
def test_truthy(value: object, expected: bool) -> None:
    assert truthy(value) is expected


def test_fast_path_agrees_with_jinja_on_a_strings_letter() -> None:
    # was refused by the fast path ("'str object' has no attribute 0") while Jinja gives A
    assert render_value("{{ vars.brand[0] }}", {"vars": {"brand": "Acme"}}) == "A"
    assert render_value("x-{{ vars.brand[1] }}", {"vars": {"brand": "Acme"}}) == "x-c"


def test_unknown_filter_is_a_template_problem_with_a_near_miss() -> None:
    with pytest.raises(TemplateProblem) as info:
        parse_template("{{ vars.brand | uper }}")
    assert "unknown filter 'uper'" in info.value.message
    assert info.value.hint == "did you mean 'upper'?"


# --- the fast path never answers differently from Jinja ---------------------------------

_NAMES = st.sampled_from(["a", "b", "brand", "items", "keys", "x0", "upper"])
_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3),
                    st.floats(allow_nan=False, width=16), st.text("ab:{} ", max_size=4))
_VALUES = st.recursive(_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(_NAMES, inner, max_size=3)), max_leaves=8)
_PARTS = st.lists(st.one_of(_NAMES.map(lambda n: f".{n}"),
                            st.integers(0, 3).map(lambda i: f"[{i}]"),
                            _NAMES.map(lambda n: f"['{n}']")), max_size=3)


def _outcome(render: Any) -> tuple[str, Any]:
    try:
        return "value", render()
    except TemplateProblem as exc:
        return "error", exc.message


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(context=st.dictionaries(_NAMES, _VALUES, max_size=3), root=_NAMES, parts=_PARTS,
       before=st.sampled_from(["", "  ", "x-"]), after=st.sampled_from(["", " ", ".png"]))
def test_fast_path_matches_jinja(context: dict[str, Any], root: str, parts: list[str],
                                 before: str, after: str) -> None:
    source = f"{before}{{{{ {root}{''.join(parts)} }}}}{after}"
    template = parse_template(source)
    assert template.pieces is not None, source  # this test is about the fast path
    fast = _outcome(lambda: template.render(context))
    slow = _outcome(lambda: render_with_jinja(source, context, native=template.native))
    assert fast == slow, source


def test_slug_transliterates_accents() -> None:
    assert render_value("{{ vars.b | slug }}", {"vars": {"b": "Café Crème Brûlée"}}) == \
        "cafe-creme-brulee"
