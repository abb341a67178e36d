"""Reads a recipe file into plain data plus a SourceMap of FILE:LINE:COL for every key and value.

The only module that reads YAML (`yaml_text` writes it). Safe loading only; duplicate keys,
alias bombs and absurd nesting are refused here, before anything else sees the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import Issue, Location, SpecSyntaxError

try:  # libyaml is several times faster; the pure-Python loader behaves the same
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader

PathKey = tuple[str | int, ...]

MAX_DEPTH = 64
MAX_NODES = 1_000_000  # after alias expansion; a "billion laughs" document hits this first

_INT = "tag:yaml.org,2002:int"
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_COLLECTION_TAGS = {"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"}
_PLAIN_TAGS = {
    "tag:yaml.org,2002:null", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float", _STR,
}


def dotted(path: PathKey) -> str:
    """A path as recipes read it: ``steps.logo.save[0]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass(slots=True)
class SourceMap:
    """Where each part of a document came from.

    ``values[path]`` is the location of the value at ``path`` (a tuple of mapping keys and
    list indexes, ``()`` for the document), ``keys[path]`` the location of the mapping key that
    introduced it. Lookups fall back to the nearest enclosing path, so every path has a place.
    """

    path: str
    # Locations, or the parser's marks until someone asks (most are never printed)
    values: dict[PathKey, Any] = field(default_factory=dict)
    keys: dict[PathKey, Any] = field(default_factory=dict)

    def _location(self, found: Any) -> Location:
        if isinstance(found, Location):
            return found
        return Location(self.path, found.line + 1, found.column + 1)  # a YAML mark, 0-based

    def at(self, path: PathKey) -> Location:
        """The value's location, or the nearest enclosing one's."""
        while path not in self.values and path:
            path = path[:-1]
        found = self.values.get(path)
        return self._location(found) if found is not None else Location(self.path, 1, 1)

    def key_at(self, path: PathKey) -> Location:
        """The location of the key that introduced ``path`` (the value's when it has no key)."""
        found = self.keys.get(path)
        return self._location(found) if found is not None else self.at(path)


@dataclass(frozen=True, slots=True)
class Source:
    """A parsed document: its data, where each part came from, and the file it was read from."""

    path: Path
    data: dict[str, Any]
    map: SourceMap
    digest: str


def _loc(display: str, node: yaml.Node) -> Location:
    mark = node.start_mark
    return Location(display, mark.line + 1, mark.column + 1)


class _Builder:
    """Turns a composed node graph into plain data, recording locations on the way."""

    def __init__(self, display: str) -> None:
        self.display = display
        self.smap = SourceMap(display)
        self.nodes = 0
        self.issues: list[Issue] = []
        self._constructor = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, path: PathKey, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise SpecSyntaxError([Issue(
                _loc(self.display, node),
                f"document expands to more than {MAX_NODES:,} values (alias bomb?)",
                "recipes do not need YAML aliases that nest; write the values out")])
        if depth > MAX_DEPTH:
            raise SpecSyntaxError([Issue(
                _loc(self.display, node), f"document nests deeper than {MAX_DEPTH} levels",
                "flatten the structure; recipes need only a few levels")])
        self.smap.values[path] = node.start_mark
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _COLLECTION_TAGS:
            self.issues.append(Issue(_loc(self.display, node), f"unsupported YAML tag {node.tag!r}",
                                     "use plain strings, numbers, lists and mappings"))
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        if node.tag == _STR:
            return node.value
        if node.tag == _INT:  # plain decimals directly (a matrix of 100,000 numbers)
            value = node.value
            if value.isascii() and value.isdigit() and (value[0] != "0" or value == "0"):
                return int(value)
        if node.tag in _PLAIN_TAGS:
            return self._constructor.construct_object(node)
        if node.tag == "tag:yaml.org,2002:timestamp":
            return node.value  # dates stay text: a recipe renders the same everywhere
        self.issues.append(Issue(_loc(self.display, node), f"unsupported YAML tag {node.tag!r}",
                                 "use plain strings, numbers, lists and mappings"))
        return node.value

    def _mapping(self, node: yaml.MappingNode, path: PathKey, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        seen: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged = self.build(value_node, path, depth + 1)
                for part in merged if isinstance(merged, list) else [merged]:
                    if isinstance(part, dict):
                        for k, v in part.items():
                            out.setdefault(k, v)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.issues.append(Issue(_loc(self.display, key_node),
                                         "mapping keys must be plain strings"))
                continue
            key = key_node.value if key_node.tag == _STR else self._scalar(key_node)
            key = key if isinstance(key, str) else str(key_node.value)
            if key in seen:
                first = _loc(self.display, seen[key])
                self.issues.append(Issue(
                    _loc(self.display, key_node),
                    f"duplicate key {key!r} (first defined at {first})",
                    "YAML keeps only one of them; remove or rename one"))
                continue
            seen[key] = key_node
            child = (*path, key)
            self.smap.keys[child] = key_node.start_mark
            out[key] = self.build(value_node, child, depth + 1)
        return out


def _decode(raw: bytes, display: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise SpecSyntaxError([Issue(
            Location(display, line, col),
            f"file is not UTF-8 text (byte 0x{raw[exc.start]:02x})",
            "save the recipe as UTF-8")]) from None


def parse_text(text: str, display: str) -> tuple[Any, SourceMap]:
    """Parse YAML text into (data, SourceMap).

    Raises:
        SpecSyntaxError: the YAML cannot be parsed, has duplicate keys, unsupported tags,
            several documents, or expands beyond MAX_NODES / MAX_DEPTH.
    """
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(display, mark.line + 1, mark.column + 1) if mark \
            else Location(display, 1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        hint = None
        if "\t" in text and "tab" in problem:
            hint = "YAML indents with spaces, never tabs"
        elif exc.context and exc.problem:
            hint = exc.context
            if exc.context_mark is not None and exc.context_mark is not mark:
                started = exc.context_mark
                hint += f" that started at {started.line + 1}:{started.column + 1}"
        raise SpecSyntaxError([Issue(where, f"invalid YAML: {problem}", hint)]) from None
    except yaml.YAMLError as exc:
        raise SpecSyntaxError([Issue(Location(display, 1, 1), f"invalid YAML: {exc}")]) from None
    if node is None:
        raise SpecSyntaxError([Issue(Location(display, 1, 1), "the file is empty",
                                     "a recipe starts with `version: 1` and has `steps:`")])
    builder = _Builder(display)
    data = builder.build(node, (), 0)
    if builder.issues:
        raise SpecSyntaxError(builder.issues)
    return data, builder.smap


def load_source(path: Path, display: str | None = None) -> Source:
    """Read a recipe file: bytes → UTF-8 → YAML nodes → (data, SourceMap).

    Raises:
        SpecSyntaxError: unreadable, not UTF-8, empty, not YAML, or not a mapping at the top.
    """
    import hashlib

    display = display or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecSyntaxError([Issue(Location(display, 1, 1),
                                     f"cannot read recipe: {exc.strerror or exc}",
                                     "check the path; paths on the command line are relative "
                                     "to the working directory")]) from None
    text = _decode(raw, display)
    data, smap = parse_text(text, display)
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "a single value"
        raise SpecSyntaxError([Issue(smap.at(()),
                                     f"a recipe must be a mapping at the top, not {kind}",
                                     "start with `version: 1`, then `steps:`")])
    return Source(path=path, data=data, map=smap, digest=hashlib.sha256(raw).hexdigest())


def load_plain_yaml(text: str) -> Any:
    """Plain data from YAML text that flowrunner wrote itself (lock files): libyaml's loader
    when present, no positions kept; many times faster than `parse_text` on large files.

    Raises:
        ValueError: the text is not YAML.
    """
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        raise ValueError(f"invalid YAML: {exc}") from None

