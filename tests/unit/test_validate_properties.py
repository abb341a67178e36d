"""Property: whatever bytes a recipe holds, `flow validate` answers 0 or 3 with located
messages, never a traceback (hypothesis throws random documents and mutated examples)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowrunner.cli import main

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
LINE = re.compile(r"^(\S+):\d+:\d+: error: .+$|^  hint: .+$|^\d+ errors? in 1 file$")

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=30),
                    st.sampled_from(["{{ vars.x }}", "{{ steps.a.files[0] }}", "{% if %}",
                                     "recraft.generate_image", "1024x1024", "../x.png"]))
keys = st.one_of(st.text(max_size=12), st.sampled_from(
    ["version", "steps", "uses", "with", "vars", "matrix", "save", "needs", "prompt", "size",
     "provider", "outputs", "if", "cache", "timeout"]))
documents = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)), max_leaves=25)


def _check(tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: bytes) -> None:
    path = tmp_path / "r.yaml"
    path.write_bytes(raw)
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", str(path)])
    out, err = capsys.readouterr()
    assert exit_info.value.code in (0, 3), err
    assert "Traceback" not in err and "unexpected error" not in err
    if exit_info.value.code == 3:
        lines = err.splitlines()
        assert lines and all(LINE.match(line) for line in lines), err
        assert lines[0].startswith(f"{path}:")


SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.slow
@SETTINGS
@given(document=documents)
def test_random_documents(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                          document: object) -> None:
    _check(tmp_path, capsys, yaml.safe_dump({"version": 1, "steps": document}).encode())
    _check(tmp_path, capsys, yaml.safe_dump(document).encode())


@SETTINGS
@given(raw=st.binary(max_size=300))
def test_random_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: bytes) -> None:
    _check(tmp_path, capsys, raw)


@pytest.mark.slow
@SETTINGS
@given(example=st.sampled_from(EXAMPLES), data=st.data())
def test_mutated_examples(tmp_path: Path, capsys: pytest.CaptureFixture[str], example: Path,
                          data: st.DataObject) -> None:
    lines = example.read_text().splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["drop", "dup", "char", "swap", "cut", "indent"]))
        if action == "drop" and len(lines) > 1:
            del lines[index]
        elif action == "dup":
            lines.insert(index, lines[index])
        elif action == "char" and lines[index]:
            pos = data.draw(st.integers(0, len(lines[index]) - 1))
            char = data.draw(st.sampled_from(list(":{}[]-'\"\t #&*!|>%@`") + ["x", "{{"]))
            lines[index] = lines[index][:pos] + char + lines[index][pos + 1:]
        elif action == "swap":
            other = data.draw(st.integers(0, len(lines) - 1))
            lines[index], lines[other] = lines[other], lines[index]
        elif action == "cut":
            lines = lines[:index + 1]
        elif action == "indent":
            lines[index] = "  " + lines[index]
    _check(tmp_path, capsys, "".join(lines).encode())


# templates from an alphabet of loops, filters and ranges, with numbers small and huge:
# whatever they build, validation answers (0 or 3, located) and never hangs or runs out
# of memory (a hypothesis deadline per example is the hang guard)
_NUMBERS = st.sampled_from(["3", "2000", "100000", "3000000", "10**9", "-1"])
_LEAVES = st.one_of(
    st.sampled_from(["'x'", "vars.brand", "'ab' * 1000", "range(5)|list", "loop.index"]),
    _NUMBERS.map(lambda n: f"range({n})|join"),
)


def _expression(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(inner, st.sampled_from(["center", "indent", "wordwrap", "truncate",
                                          "batch", "slice"]), _NUMBERS).map(
            lambda t: f"({t[0]})|{t[1]}({t[2]})"),
        st.tuples(inner, _NUMBERS).map(lambda t: f"({t[0]}) * {t[1]}"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]}) ~ ({t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]})|replace('x', {t[1]})"),
        _NUMBERS.map(lambda n: f"'%{n}s' % 'x'"),
        _NUMBERS.map(lambda n: "'{:>" + n + "}'.format('x')"),
    )


_EXPRESSIONS = st.recursive(_LEAVES, _expression, max_leaves=6)
_BODIES = st.recursive(
    _EXPRESSIONS.map(lambda e: "{{ " + e + " }}"),
    lambda inner: st.one_of(
        st.tuples(_NUMBERS, inner).map(
            lambda t: "{% for i in range(" + t[0] + ") %}" + t[1] + "{% endfor %}"),
        st.tuples(_EXPRESSIONS, inner).map(
            lambda t: "{% set v = " + t[0] + " %}" + t[1]),
        st.lists(inner, min_size=2, max_size=3).map("".join)),
    max_leaves=5)


@settings(max_examples=120, deadline=5000,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(template=_BODIES)
def test_hostile_templates_are_answered_without_hanging(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], template: str) -> None:
    document = {"version": 1, "vars": {"brand": "Acme"}, "steps": {"logo": {
        "uses": "recraft.generate_image", "with": {"prompt": template}}}}
    _check(tmp_path, capsys, yaml.safe_dump(document).encode())
