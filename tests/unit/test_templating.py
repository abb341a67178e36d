from __future__ import annotations

import pytest

from flowrunner.errors import TemplateProblem
from flowrunner.templating import parse_template, render_value, truthy


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
        render_value("{% for i in range(100000) %}{{ 'abcdefghijklmnopqrstuvwxyz' }}{% endfor %}", {})


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
