"""The lock file's YAML writer against PyYAML's: byte for byte the same text, on random
data built from what trips YAML up (indicators, reserved words, numbers in strings, long
lines, unicode), and on the shape lock files have."""

from __future__ import annotations

import random
from typing import Any

import pytest
import yaml

from flowrunner.recipe import yaml_text
from flowrunner.recipe.yaml_text import dump_nested, dump_yaml

TRICKY = ["yes", "No", "on", "OFF", "null", "~", "true", "False", "0x1F", "0o17", "017",
          "1_000", "1:30", "2024-01-01", "2024-01-01 10:00:00", ".inf", "-.inf", ".nan",
          "=", "<<", "1e3", "1.5", "-3", "+4", "0", "", " ", "a ", " a", "a: b", "a #b",
          "a#b", "#x", "-x", "- x", "?x", ":x", "x:", "[x]", "{x}", "x[y]", "&a", "*a", "!t",
          "|", ">", "'q'", '"q"', "%x", "@x", "`x", "a,b", "a\tb", "line\nbreak", "é", "日本",
          "http://a.b/c?d=1", "img[i=0]", "1024x1024", "recraftv3", "a  b", "---", "...",
          "x" * 120, "y" * 130, "z a" * 40, "word " * 30, "word " * 25 + "end", "a/b/c.png",
          "_x", "/abs", "(p)", "a=b", "a+b@c"]


def _string(rng: random.Random, tricky: float) -> str:
    """A string: one of TRICKY, or random characters (indicators among them), or (most
    of the time when ``tricky`` is low) one lock files are made of."""
    roll = rng.random()
    if roll < tricky / 2:
        return rng.choice(TRICKY)
    if roll < tricky:
        alphabet = "ab09 _-.:/#[]{}()=@,+'\"!&*?|>%`\té"
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
    return rng.choice("aynoft1_/") + "".join(rng.choice("abyn019 _-./[]=")
                                            for _ in range(rng.randint(0, 12)))


def _value(rng: random.Random, depth: int, tricky: float) -> Any:
    roll = rng.random()
    if depth <= 0 or roll < 0.45:
        return rng.choice([_string(rng, tricky), _string(rng, tricky), rng.randint(-10**6, 10**6),
                           rng.choice([0.5, 40.0, -2.25, 3.0, 1e20]
                                      + [1e-05, float("inf")] * (rng.random() < tricky)),
                           True, False, None])
    if roll < 0.75:
        return {_string(rng, tricky): _value(rng, depth - 1, tricky)
                for _ in range(rng.randint(0, 4))}
    return [_value(rng, depth - 1, tricky) for _ in range(rng.randint(0, 4))]


def _pyyaml(data: Any) -> str:
    # what the lock file was written with before: PyYAML, libyaml's emitter, same options
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(yaml_text._whole_floats(data), Dumper=dumper, sort_keys=True,
                     default_flow_style=False, allow_unicode=True, width=100)


@pytest.mark.parametrize("tricky", [1.0, 0.2, 0.02])
@pytest.mark.parametrize("seed", range(2))
def test_random_data_is_written_as_pyyaml_writes_it(seed: int, tricky: float) -> None:
    rng = random.Random(seed)
    for _ in range(500):
        data = {_string(rng, tricky): _value(rng, 4, tricky) for _ in range(rng.randint(1, 5))}
        assert dump_yaml(data) == _pyyaml(data), data
        assert dump_nested(data, "instances") == _pyyaml({"instances": data}), data


def test_a_lock_files_entries_are_written_without_pyyaml(
        monkeypatch: pytest.MonkeyPatch) -> None:
    entries = {f"img[i={n}]": {
        "step": "img", "endpoint": "recraft.generate_image", "key": "d9b5" * 16, "credits": 1,
        "outputs": {}, "params": {"prompt": f"bench {n}", "size": "1024x1024", "n": 1},
        "artifacts": [{"bytes": 16698, "path": f"assets/img-{n}.png", "sha256": "a1" * 32}]}
        for n in range(20)}
    entries["odd"] = {"params": {"prompt": "a fox: yes"}}  # PyYAML's to quote
    expected = _pyyaml({"instances": entries})
    calls: list[Any] = []
    real = yaml_text._pyyaml
    monkeypatch.setattr(yaml_text, "_pyyaml", _recording(calls, real))
    assert dump_nested(entries, "instances") == expected
    assert calls == [{"instances": {"odd": entries["odd"]}}]  # only the one it must


@pytest.mark.slow
@pytest.mark.parametrize("length", range(84, 132, 3))
def test_lines_near_the_width_fold_as_pyyaml_folds_them(length: int) -> None:
    text = ("word " * 30)[:length].strip()
    for data in ({"k": text}, {"a": {"b": {"c": text}}}, {"l": [text]}, {"l": [{"m": text}]},
                 {text.replace(" ", "_"): 1}, {"k": [text.replace(" ", "_")]}):
        assert dump_yaml(data) == _pyyaml(data), data
        assert dump_nested(data, "instances") == _pyyaml({"instances": data}), data


def _recording(calls: list[Any], real: Any) -> Any:
    def dump(data: Any) -> Any:
        calls.append(data)
        return real(data)
    return dump
