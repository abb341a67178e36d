"""YAML text that flowrunner writes (lock files): block style, sorted keys, whole floats as
integers; byte for byte what PyYAML's `safe_dump` writes, several times faster.

A lock file of 512 instances took 60 ms in PyYAML's representer (Python) and libyaml's
emitter: a tenth of a fast batch's own CPU, all in the main thread (issue 16). Lock data is
plain: mappings with string keys, lists, short ASCII strings, numbers. Those are written
here directly; whatever this module is not certain to write exactly as PyYAML would (a
string PyYAML quotes or folds, a nested list, an unusual type) is left to PyYAML, for the
smallest part of the document that holds it (one instance of the lock file).
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

WIDTH = 100  # PyYAML's `width`: longer plain lines may be folded, so they are left to it

# the characters of a string that PyYAML writes plain in block context, whatever their
# order (no indicator at the start, no ": " or " #", nothing it escapes): conservative
_PLAIN = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9 _./@+=,()\[\]-]*")
_STR_TAG = "tag:yaml.org,2002:str"
_RESOLVERS = yaml.resolver.Resolver.yaml_implicit_resolvers
_PLAIN_SEEN: dict[str, bool] = {}  # by `_plain`: its answers, bounded


class _Unsure(Exception):
    """A value this module does not write itself: PyYAML does."""


def dump_yaml(data: Any) -> str:
    """``data`` as block-style YAML with sorted keys: deterministic, diff-friendly text.

    Floats that are whole are written as integers, so `40.0` credits read as `40`. A
    mapping's values that cannot be written here are written by PyYAML (libyaml's emitter
    when present), each on its own.
    """
    if not isinstance(data, dict) or not data:
        return _pyyaml(data)
    lines: list[str] = []
    for key in _sorted_keys(data):
        try:
            part: list[str] = []
            _Writer(part).entry(key, data[key], 0)
        except _Unsure:
            # the whole entry through PyYAML, as part of a one-key mapping of this level
            lines.append(_pyyaml({key: data[key]}))
            continue
        lines.extend(part)
    return "".join(lines)


def dump_nested(data: dict[str, Any], name: str) -> str:
    """``{name: data}`` as `dump_yaml` writes it, an instance of ``data`` at a time: one that
    must go through PyYAML does not take the others with it (lock files: `instances`)."""
    if not data:
        return dump_yaml({name: data})
    out = [_key(name, 0) + ":\n"]
    for key in _sorted_keys(data):
        try:
            part: list[str] = []
            _Writer(part).entry(key, data[key], 2)
        except _Unsure:
            text = _pyyaml({name: {key: data[key]}})
            out.append(text.split("\n", 1)[1])  # the same text at the same column
            continue
        out.extend(part)
    return "".join(out)


def _pyyaml(data: Any) -> str:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(_whole_floats(data), Dumper=dumper, sort_keys=True,
                     default_flow_style=False, allow_unicode=True, width=WIDTH)


def _whole_floats(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_floats(v) for v in value]
    return value


def _sorted_keys(mapping: dict[Any, Any]) -> list[str]:
    keys = list(mapping)
    if not all(type(k) is str for k in keys):
        raise _Unsure
    keys.sort()
    return keys


def _plain(text: str) -> bool:
    """Whether PyYAML writes ``text`` as it is (a plain scalar that reads back as this
    string), as far as this module can tell without its emitter."""
    known = _PLAIN_SEEN.get(text)
    if known is not None:  # a lock file repeats its keys and many values
        return known
    plain = _PLAIN.fullmatch(text) is not None and not text.endswith(" ")
    if plain:
        for tag, pattern in [*_RESOLVERS.get(text[0], ()), *_RESOLVERS.get(None, ())]:
            if pattern.match(text):  # `yes`, `1_000`, `2024-01-01`, …: PyYAML quotes them
                plain = tag == _STR_TAG
                break
    if len(_PLAIN_SEEN) >= 4096:
        _PLAIN_SEEN.clear()
    _PLAIN_SEEN[text] = plain
    return plain


def _key(key: str, indent: int) -> str:
    if len(key) + indent > WIDTH - 4 or not _plain(key):
        raise _Unsure
    return " " * indent + key


def _scalar(value: Any) -> str | None:
    """The text of a scalar, or None when ``value`` is not one."""
    kind = type(value)
    if kind is str:
        if not _plain(value):
            raise _Unsure
        return value
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        if not math.isfinite(value):
            raise _Unsure
        if value.is_integer():
            return str(int(value))
        text = repr(value)
        if "e" in text:  # PyYAML writes 1e-05 as 1.0e-05
            raise _Unsure
        return text
    if value is None:
        return "null"
    return None


class _Writer:
    """Appends the lines of block-style YAML to a list; raises `_Unsure` on anything it
    cannot write exactly as PyYAML does."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def entry(self, key: str, value: Any, indent: int, *, prefix: str | None = None) -> None:
        """``key: value`` at ``indent``; ``prefix`` replaces the indent (a list item's
        first key, after its `- `)."""
        head = _key(key, indent) if prefix is None else prefix + _key(key, 0)
        text = _scalar(value)
        if text is not None:
            if len(head) + 2 + len(text) > WIDTH:
                raise _Unsure
            self.lines.append(f"{head}: {text}\n")
        elif type(value) is dict:
            if not value:
                self.lines.append(head + ": {}\n")
                return
            self.lines.append(head + ":\n")
            for sub in _sorted_keys(value):
                self.entry(sub, value[sub], indent + 2)
        elif type(value) is list:
            if not value:
                self.lines.append(head + ": []\n")
                return
            self.lines.append(head + ":\n")
            for item in value:  # PyYAML indents no sequence inside a mapping
                self.item(item, indent)
        else:
            raise _Unsure

    def item(self, value: Any, indent: int) -> None:
        """``- value`` at ``indent``."""
        text = _scalar(value)
        dash = " " * indent + "- "
        if text is not None:
            if len(dash) + len(text) > WIDTH:
                raise _Unsure
            self.lines.append(dash + text + "\n")
        elif type(value) is dict and value:
            keys = _sorted_keys(value)
            self.entry(keys[0], value[keys[0]], indent + 2, prefix=dash)
            for sub in keys[1:]:
                self.entry(sub, value[sub], indent + 2)
        else:
            raise _Unsure  # lists in lists, empty mappings in lists: PyYAML's to write
