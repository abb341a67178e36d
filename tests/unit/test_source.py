from __future__ import annotations

from pathlib import Path

import pytest

from flowrunner.errors import Location, SpecSyntaxError
from flowrunner.recipe.source import load_source, parse_text


def test_every_key_and_value_knows_its_position() -> None:
    data, smap = parse_text("version: 1\nsteps:\n  logo:\n    uses: x\n    with: {a: [1, 2]}\n",
                            "r.yaml")
    assert data["steps"]["logo"]["with"] == {"a": [1, 2]}
    assert smap.at(("steps", "logo", "uses")) == Location("r.yaml", 4, 11)
    assert smap.key_at(("steps", "logo", "uses")) == Location("r.yaml", 4, 5)
    assert smap.at(("steps", "logo", "with", "a", 1)) == Location("r.yaml", 5, 19)
    # unknown paths fall back to the nearest enclosing value
    assert smap.at(("steps", "logo", "nope")) == Location("r.yaml", 4, 5)


def test_duplicate_keys_are_errors_at_the_second_key() -> None:
    with pytest.raises(SpecSyntaxError) as info:
        parse_text("a: 1\nb:\n  c: 1\n  c: 2\n", "d.yaml")
    [issue] = info.value.issues
    assert issue.location == Location("d.yaml", 4, 3)
    assert issue.message == "duplicate key 'c' (first defined at d.yaml:3:3)"


@pytest.mark.slow
def test_alias_bomb_is_refused_quickly() -> None:
    rows = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        rows.append(f"a{level}: &a{level} [{refs}]")
    with pytest.raises(SpecSyntaxError) as info:
        parse_text("\n".join(rows) + "\n", "bomb.yaml")
    assert "alias bomb" in info.value.issues[0].message


def test_deep_nesting_is_refused() -> None:
    text = "a: " + "[" * 100 + "]" * 100 + "\n"
    with pytest.raises(SpecSyntaxError) as info:
        parse_text(text, "deep.yaml")
    assert "nests deeper than 64 levels" in info.value.issues[0].message


def test_unsafe_tags_are_not_constructed() -> None:
    with pytest.raises(SpecSyntaxError) as info:
        parse_text("a: !!python/object/apply:os.system ['echo hi']\n", "t.yaml")
    assert "unsupported YAML tag" in info.value.issues[0].message


def test_dates_stay_text() -> None:
    data, _ = parse_text("when: 2026-01-02\n", "d.yaml")
    assert data == {"when": "2026-01-02"}


@pytest.mark.parametrize(("raw", "message"), [
    (b"", "the file is empty"),
    (b"# only a comment\n", "the file is empty"),
    (b"- 1\n- 2\n", "a recipe must be a mapping at the top, not a list"),
    (b"just text\n", "a recipe must be a mapping at the top, not a single value"),
    (b"a: \xff\n", "file is not UTF-8 text (byte 0xff)"),
])
def test_unusable_files_get_clear_errors(tmp_path: Path, raw: bytes, message: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_bytes(raw)
    with pytest.raises(SpecSyntaxError) as info:
        load_source(path, "r.yaml")
    assert info.value.issues[0].message == message
